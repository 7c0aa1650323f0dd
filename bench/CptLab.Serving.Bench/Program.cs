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
//       [--max-tokens 64] [--flavor cpu-7m] [--threads 0] [--model DIR]
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
string flavor = Arg("--flavor", "cpu-7m");
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
string Load() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
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
