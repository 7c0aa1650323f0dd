using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Serving;
using static TorchSharp.torch;

// Load benchmark of `cptlab serve` on loopback: N concurrent streaming chat clients for a fixed time, each
// sending its next request as soon as the previous reply ends, against one client alone for the same time.
// Reports 5xx/other failures, time to first token (p50/p99), and aggregate generated tokens/s; the ratio
// of the two throughputs is what continuous batching buys on this machine.
//
//   dotnet run -c Release --project bench/CptLab.Serving.Bench -- [--clients 32] [--seconds 60] [--single-seconds 60]
//       [--max-tokens 64] [--flavor cpu-20m] [--threads 0] [--model DIR]
//   ... -- --scenario memory [--hold-tokens 32]        resident memory with 32 chats without max_tokens on an 8k context
//   ... -- --scenario long-prompt [--prompt-tokens 2000] [--streams 16] [--repeats 10]   TTFT of a long prompt while streams decode
// Without --model it builds a servable model: an 8k byte-level BPE trained on generated text and a randomly
// initialised flavor (cpu-7m by default) sized to it. Replies use ignore_eos, so every request costs exactly
// --max-tokens tokens, as serving benchmarks usually fix output length.

var inv = CultureInfo.InvariantCulture;
string Arg(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
int clients = int.Parse(Arg("--clients", "32"), inv);
int seconds = int.Parse(Arg("--seconds", "60"), inv);
int singleSeconds = int.Parse(Arg("--single-seconds", Arg("--seconds", "60")), inv);
int maxTokens = int.Parse(Arg("--max-tokens", "64"), inv);
int threads = int.Parse(Arg("--threads", "0"), inv);
string flavor = Arg("--flavor", "cpu-20m");
string scenario = Arg("--scenario", "throughput");
string Load() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
Console.WriteLine($"cpu: {(File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() : "?")}; load average {Load()}");
if (scenario == "sampling") return Sampling();
if (scenario == "memory") return await Memory(BuildModel(flavor, 8192), threads, int.Parse(Arg("--hold-tokens", "32"), inv));
if (scenario == "long-prompt") return await LongPrompt(BuildModel(flavor, 8192), threads, int.Parse(Arg("--prompt-tokens", "2000"), inv), int.Parse(Arg("--streams", "16"), inv), int.Parse(Arg("--repeats", "10"), inv));
string modelDir = Arg("--model", "") is { Length: > 0 } m ? m : BuildModel(flavor);

await using var server = await ChatServer.StartAsync(new ServerOptions
{
    ModelDir = modelDir, Port = 0,
    Scheduler = new SchedulerOptions { MaxConcurrentSequences = Math.Max(clients, 1), MaxBatchedTokens = 4096, MaxWaiting = 1024, Threads = threads },
});
await server.Scheduler.Loaded;
var config = server.Scheduler.Model.Model.Config;
Console.WriteLine($"model {modelDir}: {ModelMath.ParameterCount(config):N0} parameters, vocab {config.VocabSize}; {Environment.ProcessorCount} cores; {maxTokens} tokens per reply");

using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(5) };
await Run(http, 1, 5, maxTokens); // warm-up: JIT, LibTorch kernels
// Other work on the machine skews both runs; the load average makes that visible in the report.
Console.WriteLine($"load average before: {Load()}");
var single = await Run(http, 1, singleSeconds, maxTokens);
var many = await Run(http, clients, seconds, maxTokens);
Console.WriteLine($"load average after: {Load()}");
Report("1 client", single);
Report($"{clients} clients", many);
Console.WriteLine($"batching gain (aggregate tokens/s, {clients} clients / 1 client): {many.TokensPerSecond / single.TokensPerSecond:F2}x");
return many.ServerErrors == 0 ? 0 : 1;

void Report(string label, Result r)
{
    var ttft = r.Ttft.OrderBy(x => x).ToArray();
    double P(double q) => ttft.Length == 0 ? double.NaN : ttft[Math.Min(ttft.Length - 1, (int)Math.Ceiling(q * ttft.Length) - 1)];
    Console.WriteLine(string.Create(inv, $"{label,-11}: {r.Requests} requests, {r.ServerErrors} 5xx, {r.OtherErrors} other errors; TTFT p50 {P(0.5) * 1000:F0} ms, p99 {P(0.99) * 1000:F0} ms; {r.Tokens} tokens in {r.Seconds:F1} s, {r.TokensPerSecond:F1} tokens/s"));
}

static async Task<Result> Run(HttpClient http, int clients, int seconds, int maxTokens)
{
    var result = new Result();
    var deadline = Stopwatch.StartNew();
    var prompts = new[] { "Tell me about the fox.", "What is continual pre-training?", "你好，请介绍一下你自己。", "Write a short poem about servers.", "How do tokens stream?" };
    async Task Client(int c)
    {
        for (int i = 0; deadline.Elapsed.TotalSeconds < seconds; i++)
        {
            var body = JsonSerializer.Serialize(new
            {
                messages = new[] { new { role = "user", content = prompts[(c + i) % prompts.Length] } },
                max_tokens = maxTokens, stream = true, ignore_eos = true, temperature = 0.8, seed = c * 100_000 + i,
                stream_options = new { include_usage = true },
            });
            var sent = Stopwatch.StartNew();
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                if ((int)response.StatusCode >= 500) { Interlocked.Increment(ref result.ServerErrors); continue; }
                if (!response.IsSuccessStatusCode) { Interlocked.Increment(ref result.OtherErrors); continue; }
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                bool first = true;
                int tokens = 0;
                while (await reader.ReadLineAsync() is { } line)
                {
                    if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
                    using var chunk = JsonDocument.Parse(line.AsMemory(6));
                    if (chunk.RootElement.TryGetProperty("error", out _)) { Interlocked.Increment(ref result.ServerErrors); break; }
                    var choices = chunk.RootElement.GetProperty("choices");
                    if (first && choices.GetArrayLength() > 0 && choices[0].GetProperty("delta").TryGetProperty("content", out var c0) && c0.GetString()!.Length > 0)
                    {
                        first = false;
                        lock (result.Ttft) result.Ttft.Add(sent.Elapsed.TotalSeconds);
                    }
                    if (chunk.RootElement.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) tokens = u.GetProperty("completion_tokens").GetInt32();
                }
                Interlocked.Add(ref result.Tokens, tokens);
                Interlocked.Increment(ref result.Requests);
            }
            catch (HttpRequestException) { Interlocked.Increment(ref result.OtherErrors); }
        }
    }
    // No request starts after the deadline; those running finish, and the rate divides every token by the
    // whole wall time, drain included (which slightly favours the single client, whose drain is shorter).
    await Task.WhenAll(Enumerable.Range(0, clients).Select(Client));
    result.Seconds = deadline.Elapsed.TotalSeconds;
    return result;
}

// Cost of filtering one logits row (TokenSampler.Probabilities) at Llama-3's and cpu-20m's vocabulary sizes, against the
// full sort by (logit desc, id asc) it used before (the peer, reimplemented here), on rows from a peaked distribution.
static int Sampling()
{
    foreach (int n in new[] { 8192, 128256 })
        foreach (var o in new[] { new SamplingOptions { TopP = 0.9 }, new SamplingOptions { TopK = 40 }, new SamplingOptions { MinP = 0.05 }, new SamplingOptions { TopP = 0.95, TopK = 50, Temperature = 0.7 } })
        {
            var rng = new Random(1);
            var rows = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, n).Select(_ => (float)(-Math.Log(rng.NextDouble()) * 3 - Math.Log(-Math.Log(rng.NextDouble())))).ToArray()).ToArray();
            double Time(Action<float[]> f)
            {
                foreach (var r in rows) f(r);
                var sw = Stopwatch.StartNew();
                int reps = 0;
                while (sw.Elapsed.TotalSeconds < 1) { foreach (var r in rows) f(r); reps += rows.Length; }
                return sw.Elapsed.TotalMilliseconds / reps;
            }
            double now = Time(r => TokenSampler.Probabilities(r, o));
            double fullSort = Time(r =>
            {
                var scaled = r.Select(x => x / o.Temperature).ToArray();
                var order = Enumerable.Range(0, n).ToArray();
                Array.Sort(order, (a, b) => scaled[b].CompareTo(scaled[a]) is var c && c != 0 ? c : a.CompareTo(b));
            });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"vocab {n,6}, top_k {o.TopK,2}, top_p {o.TopP:0.00}, min_p {o.MinP:0.00}, T {o.Temperature:0.0}: {now:F3} ms per row; the full sort alone {fullSort:F3} ms ({fullSort / now:F1}x)"));
        }
    return 0;
}

// Resident memory of the server process (this process: the clients are in it too, and hold little) with 32 streaming chats
// without max_tokens on an 8,192-token-context model, each read until it has produced --hold-tokens tokens: before the
// paged cache each reserved its whole remaining context at admission. Written against the API both versions share.
static async Task<int> Memory(string modelDir, int threads, int holdTokens)
{
    await using var server = await ChatServer.StartAsync(new ServerOptions
    {
        ModelDir = modelDir, Port = 0,
        Scheduler = new SchedulerOptions { MaxConcurrentSequences = 32, MaxBatchedTokens = 4096, MaxWaiting = 1024, Threads = threads },
    });
    await server.Scheduler.Loaded;
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(10) };
    await Run(http, 1, 2, 16); // warm-up
    GC.Collect();
    long before = Rss();
    var streams = new List<(HttpResponseMessage, StreamReader)>();
    for (int i = 0; i < 32; i++)
    {
        var body = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"Tell me about servers, number {i}." } }, stream = true, ignore_eos = true, temperature = 0.8, seed = i });
        var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") }, HttpCompletionOption.ResponseHeadersRead);
        streams.Add((response, new StreamReader(await response.Content.ReadAsStreamAsync())));
    }
    foreach (var (_, reader) in streams)
        for (int events = 0; events < holdTokens + 1;)
            if ((await reader.ReadLineAsync())!.StartsWith("data: ", StringComparison.Ordinal)) events++;
    long during = Rss();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"32 chats without max_tokens, 8,192 context, each ≥ {holdTokens} tokens in: RSS {before / 1048576.0:F0} MiB before → {during / 1048576.0:F0} MiB (+{(during - before) / 1048576.0:F0} MiB)"));
    foreach (var (response, reader) in streams) { reader.Dispose(); response.Dispose(); }
    return 0;
}

static long Rss()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    return 0;
}

// Time to first token of a long prompt (token ids, streamed, one token) while --streams chats decode, with the prompt
// prefilled in chunks of 512 and in one piece, side by side; and the longest gap between two tokens of the decoding
// streams meanwhile (what a long prefill costs everyone else).
static async Task<int> LongPrompt(string modelDir, int threads, int promptTokens, int streams, int repeats)
{
    foreach (int chunk in new[] { 512, 1 << 20 })
    {
        await using var server = await ChatServer.StartAsync(new ServerOptions
        {
            ModelDir = modelDir, Port = 0,
            Scheduler = new SchedulerOptions { MaxConcurrentSequences = streams + 1, MaxBatchedTokens = 1 << 20, PrefillChunkTokens = chunk, MaxWaiting = 1024, Threads = threads },
        });
        await server.Scheduler.Loaded;
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(10) };
        await Run(http, 1, 2, 16); // warm-up
        using var stop = new CancellationTokenSource();
        double worstGap = 0;
        async Task Decoder(int i)
        {
            var body = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = $"Stream {i}" } }, max_tokens = 7000, stream = true, ignore_eos = true, temperature = 0.8, seed = i });
            try
            {
                using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") }, HttpCompletionOption.ResponseHeadersRead, stop.Token);
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(stop.Token));
                var gap = Stopwatch.StartNew();
                int seen = 0;
                while (await reader.ReadLineAsync(stop.Token) is { } line)
                {
                    if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                    if (++seen > 3) lock (reader) worstGap = Math.Max(worstGap, gap.Elapsed.TotalSeconds);
                    gap.Restart();
                }
            }
            catch (OperationCanceledException) { }
        }
        var decoders = Enumerable.Range(0, streams).Select(Decoder).ToList();
        await Task.Delay(3000); // all streams decoding
        worstGap = 0;
        var ttft = new List<double>();
        var rng = new Random(7);
        for (int r = 0; r < repeats; r++)
        {
            var ids = Enumerable.Range(0, promptTokens).Select(_ => rng.Next(300, 8000)).ToArray();
            var body = JsonSerializer.Serialize(new { prompt = ids, max_tokens = 1, stream = true, temperature = 0 });
            var sent = Stopwatch.StartNew();
            using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") }, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (await reader.ReadLineAsync() is { } line)
                if (line.StartsWith("data: {", StringComparison.Ordinal)) { ttft.Add(sent.Elapsed.TotalSeconds); break; }
            await reader.ReadToEndAsync();
        }
        double gapDuring = worstGap;
        stop.Cancel();
        await Task.WhenAll(decoders);
        ttft.Sort();
        double P(double q) => ttft[Math.Min(ttft.Count - 1, (int)Math.Ceiling(q * ttft.Count) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"prefill chunk {(chunk > 1 << 19 ? "none (whole prompt)" : chunk.ToString())}: {promptTokens}-token prompt while {streams} streams decode: TTFT p50 {P(0.5) * 1000:F0} ms, p99 {P(0.99) * 1000:F0} ms over {ttft.Count}; longest gap between two tokens of a decoding stream {gapDuring * 1000:F0} ms"));
    }
    return 0;
}

static string BuildModel(string flavor, int? context = null)
{
    var dir = Path.Combine(Path.GetTempPath(), "cptlab-bench", $"serve-{flavor}{(context is { } c ? $"-ctx{c}" : "")}");
    if (File.Exists(Path.Combine(dir, "model.safetensors")) && File.Exists(Path.Combine(dir, "tokenizer.json"))) return dir;
    var tokDir = Path.Combine(Path.GetTempPath(), "cptlab-bench", "serve-tokenizer-8k");
    if (!File.Exists(Path.Combine(tokDir, "tokenizer.json")))
    {
        Directory.CreateDirectory(tokDir);
        // Pseudo-words from syllables (Latin and CJK), varied enough for an 8k vocabulary to fill with merges.
        var rng = new Random(1);
        string[] syllables = ["ka", "to", "ri", "men", "sa", "lo", "ve", "dun", "pri", "ost", "el", "ba", "qu", "zen", "tra", "mo", "训", "练", "模", "型", "数", "据", "语", "言", "世", "界"];
        string Word() => string.Concat(Enumerable.Range(0, 1 + rng.Next(3)).Select(_ => syllables[rng.Next(syllables.Length)]));
        var texts = Enumerable.Range(0, 4000).Select(_ => string.Join(' ', Enumerable.Range(0, 60).Select(_ => Word() + (rng.Next(10) == 0 ? "." : "")))).ToList();
        BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = 8192 }).Save(Path.Combine(tokDir, "tokenizer.json"));
    }
    var tok = TextTokenizer.Load(tokDir);
    var config = Flavors.Get(flavor) with { VocabSize = tok.VocabSize, BosTokenId = tok.BosId, EosTokenIds = [tok.EosId, tok.EotId!.Value] };
    if (context is { } n) config = config with { MaxPositionEmbeddings = n };
    TorchRuntime.Initialise();
    ModelFactory.InitAndSave(config, dir, seed: 1, ScalarType.Float32, ModelFolderContents.For(tokDir, null, config.MaxPositionEmbeddings));
    return dir;
}

sealed class Result
{
    public long Requests, Tokens, ServerErrors, OtherErrors;
    public double Seconds;
    public double TokensPerSecond => Tokens / Seconds;
    public readonly List<double> Ttft = [];
}
