using System.Net.Http.Json;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Serving;
using static TorchSharp.torch;

namespace CptLab.Serving.Tests;

/// <summary>
/// A small servable model directory, made once per test run: a byte-level BPE tokenizer trained on a few
/// paragraphs (tokenizer.json, with Llama-3's specials), tokenizer_config.json with a Llama-3 chat template,
/// and a debug-size Llama whose random weights are large (std 0.3) so that greedy choices are far from ties.
/// </summary>
public static class TestModelDir
{
    static readonly Lazy<string> _dir = new(Create);
    public static string Path => _dir.Value;

    const string Text =
        "The quick brown fox jumps over the lazy dog. A language model predicts the next token from the ones before it. " +
        "Continual pre-training adds a new language to a model that already knows English. 你好，世界！今天天气很好。 " +
        "Servers answer requests; clients stream replies token by token. The cat sat on the mat, and the dog sat on the log. " +
        "Numbers like 12345 and 2024 appear in text, as do emoji 😀 and accents: café, naïve, über.";

    static string Create()
    {
        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cptlab-serving-tests", $"model-{Environment.ProcessId}", "tiny-chat");
        Directory.CreateDirectory(dir);
        var bpe = BpeTrainer.Train(Enumerable.Repeat(Text, 4), new BpeTrainerOptions { VocabSize = 256 + 200 + Llama3Format.SpecialTokenCount });
        bpe.Save(System.IO.Path.Combine(dir, "tokenizer.json"));
        var tok = TextTokenizer.Load(dir);
        AtomicFile.WriteAllText(System.IO.Path.Combine(dir, ChatTemplate.ConfigFile), JsonSerializer.Serialize(new
        {
            bos_token = Llama3Format.BeginOfText,
            eos_token = Llama3Format.EotId,
            chat_template = "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
        }));
        var config = Flavors.Get("debug") with
        {
            VocabSize = tok.VocabSize, MaxPositionEmbeddings = 4096, BosTokenId = tok.BosId, EosTokenIds = [tok.EosId, tok.EotId!.Value],
        };
        TorchRuntime.Initialise();
        using var model = TestKit.RandomWeights.Fill(new LlamaForCausalLM(config, ScalarType.Float32), seed: 11);
        HfCheckpoint.Save(model, dir);
        return dir;
    }
}

/// <summary>A running server on a free loopback port, with an HttpClient pointed at it.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    public ChatServer Server { get; }
    public HttpClient Http { get; }

    RunningServer(ChatServer server)
    {
        Server = server;
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri Address => Server.Address;
    public BatchScheduler Scheduler => Server.Scheduler;
    public ServedModel Model => Server.Scheduler.Model;

    public static async Task<RunningServer> StartAsync(Func<ServerOptions, ServerOptions>? configure = null, Func<ServedModel>? load = null)
    {
        // float32 as asked, not auto: the tests compare with the library's float32 numbers on every CPU.
        var options = new ServerOptions { ModelDir = TestModelDir.Path, Port = 0, Dtype = ScalarType.Float32, Scheduler = new SchedulerOptions { Threads = 1 } };
        if (configure is not null) options = configure(options);
        var server = load is null ? await ChatServer.StartAsync(options) : await ChatServer.StartAsync(options, load);
        if (load is null) await server.Scheduler.Loaded.WaitAsync(TimeSpan.FromSeconds(60));
        return new RunningServer(server);
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, string json, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        if (apiKey is not null) request.Headers.Authorization = new("Bearer", apiKey);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    public async Task<string> MetricsAsync() => await Http.GetStringAsync("metrics");

    /// <summary>Waits until <paramref name="condition"/> holds, polling; fails the test after the timeout.</summary>
    public static async Task Eventually(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>One server shared by the tests that do not need a special configuration.</summary>
public sealed class SharedServer : IAsyncLifetime
{
    public RunningServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await RunningServer.StartAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition("server")]
public sealed class ServerCollection : ICollectionFixture<SharedServer>;

/// <summary>The library's reference: greedy generation for the same prompt, as text.</summary>
public static class Reference
{
    public static (string Text, int Tokens, string Finish) Greedy(ServedModel served, IReadOnlyList<int> prompt, int maxTokens)
    {
        // A separate copy of the model, on this thread, so the reference shares nothing with the server.
        using var model = HfCheckpoint.Load(TestModelDir.Path);
        var request = new GenerationRequest(prompt, maxTokens, SamplingOptions.Greedy) { StopIds = served.StopIds.ToHashSet() };
        var tokens = Generation.Generate(model, request).ToList();
        var ids = tokens.Where(t => t.Finish != FinishReason.Stop).Select(t => t.Id).ToList();
        return (served.DecodeText(ids), tokens.Count, tokens[^1].Finish == FinishReason.Stop ? "stop" : "length");
    }
}
