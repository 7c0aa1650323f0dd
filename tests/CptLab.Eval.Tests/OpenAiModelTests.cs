using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Tokenization;
using CptLab.Eval.Backends;
using CptLab.Eval.Results;
using CptLab.Eval.Tasks;
using CptLab.Model;
using CptLab.Serving;
using CptLab.TestKit;
using static TorchSharp.torch;

namespace CptLab.Eval.Tests;

/// <summary>
/// The OpenAI-API backend: the same documents evaluated in-process and through <c>cptlab serve</c> (started in this
/// process on a free port, with an API key) give the same log-likelihoods, is_greedy flags, token counts, greedy
/// generations and metrics; a 500 is retried, a 401 stops the run with the URL and what to do; the reply's logprobs
/// are read at the positions of the tokens sent, whatever the server appends.
/// </summary>
public class OpenAiModelTests
{
    const string Key = "sk-eval-test";

    [Fact]
    public async Task Cptlab_serve_gives_the_in_process_loglikelihoods_generations_and_accuracy()
    {
        var registry = new TaskRegistry(TaskRegistry.DefaultFolder);
        var (cmmlu, subjects) = registry.Select("cmmlu_agronomy");
        var gsm8k = registry.Select("gsm8k").Tasks.Select(t => t with { MaxGenToks = 12 }).ToArray();
        var dir = ModelDir(cmmlu[0], gsm8k[0]);
        var options = new EvalOptions { DataDir = RepoPaths.SharedData };

        using var local = LocalModel.Open(dir, "float32", batchSize: 4);
        var localMc = Evaluator.Run(local, cmmlu, options with { Limit = 4 }, subjects: subjects);
        var localGen = Evaluator.Run(local, gsm8k, options with { Limit = 2 });

        await using var server = await ChatServer.StartAsync(new ServerOptions
        {
            ModelDir = dir, Port = 0, ApiKey = Key, Dtype = ScalarType.Float32, Scheduler = new SchedulerOptions { Threads = 1 },
        });
        await server.Scheduler.Loaded.WaitAsync(TimeSpan.FromSeconds(60));
        var tokenizer = TextTokenizer.Load(dir);
        using var api = OpenAiModel.Connect(new OpenAiModelOptions { BaseUrl = server.Address.ToString(), ApiKey = Key, Tokenizer = tokenizer, PromptsPerRequest = 3 });
        Assert.Equal(Path.GetFileName(dir), api.Name);                      // the server's /v1/models entry
        var apiMc = Evaluator.Run(api, cmmlu, options with { Limit = 4 }, subjects: subjects);
        var apiGen = Evaluator.Run(api, gsm8k, options with { Limit = 2 });

        // Multiple choice: 4 docs x 4 options, every log-likelihood within 1e-4, the same acc and acc_norm.
        Assert.Equal(4, localMc.Samples.Count);
        var a = localMc.Samples.SelectMany(s => s.LogLikelihoods!).ToArray();
        var b = apiMc.Samples.SelectMany(s => s.LogLikelihoods!).ToArray();
        Assert.Equal(16, a.Length);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 1e-4, $"option {i}: in-process {a[i]}, API {b[i]}");
        Assert.True(a.Distinct().Count() > 8, "the options' log-likelihoods should differ, or the comparison shows nothing");
        Assert.Equal(Metrics(localMc), Metrics(apiMc));

        // Generation: identical greedy text, and something was generated.
        var gl = localGen.Samples.Select(s => s.Generation!).ToArray();
        var ga = apiGen.Samples.Select(s => s.Generation!).ToArray();
        Assert.Equal(2, gl.Length);
        Assert.Equal(gl, ga);
        Assert.All(gl, g => Assert.NotEqual("", g));
        Assert.Equal(Metrics(localGen), Metrics(apiGen));

        // is_greedy and token counts: the options (not greedy for a random model) and each context's own greedy next token.
        var docs = localMc.Samples.Take(2).ToArray();
        var next = local.GenerateUntil(docs.Select(d => new GenerateUntilRequest(d.Prompt, [], 1)).ToArray());
        var requests = docs.SelectMany(d => d.Choices!.Select(c => new LoglikelihoodRequest(d.Prompt, " " + c)))
            .Concat(docs.Select((d, i) => new LoglikelihoodRequest(d.Prompt, next[i])).Where(r => r.Continuation.Length > 0)).ToArray();
        var rl = local.Loglikelihood(requests);
        var ra = api.Loglikelihood(requests);
        Assert.Equal(rl.Select(r => (r.IsGreedy, r.Tokens)), ra.Select(r => (r.IsGreedy, r.Tokens)));
        Assert.Contains(rl, r => r.IsGreedy);
        Assert.Contains(rl, r => !r.IsGreedy);
        for (int i = 0; i < rl.Count; i++) Assert.True(Math.Abs(rl[i].LogLikelihood - ra[i].LogLikelihood) < 1e-4, $"request {i}");

        // results.json names the server and the model, never the key.
        var json = ResultsWriter.ResultsJson(apiMc);
        Assert.Equal(server.Address.ToString().TrimEnd('/') + "/v1", json["api_base"]!.GetValue<string>());
        Assert.Equal(api.Name, json["model"]!.GetValue<string>());
        Assert.DoesNotContain(Key, json.ToJsonString());

        // Without the key, the server's 401 stops the run at once, naming the URL and the fix.
        var e = Assert.Throws<CptLabException>(() => OpenAiModel.Connect(new OpenAiModelOptions { BaseUrl = server.Address.ToString() }));
        Assert.Contains(server.Address.ToString().TrimEnd('/') + "/v1/models", e.Message);
        Assert.Contains("401", e.Message);
        Assert.Contains("--api-key", e.Message);
    }

    [Fact]
    public void A_500_is_retried_and_only_four_stop_strings_are_sent_the_rest_cut_here()
    {
        var stub = new StubServer((_, n) => n == 0
            ? (HttpStatusCode.InternalServerError, """{"error": {"message": "engine hiccup"}}""")
            : (HttpStatusCode.OK, """{"choices": [{"index": 0, "text": "42 and then E5 more"}]}"""));
        using var api = OpenAiModel.Connect(Options("http://stub:1234/v1/completions"), stub);
        var output = api.GenerateUntil([new GenerateUntilRequest("Q: 6*7?\nA:", ["S1", "S2", "S3", "S4", "E5"], 32)]);
        Assert.Equal(["42 and then "], output);
        Assert.Equal(1, api.Retries);
        Assert.Equal(2, stub.Bodies.Count);
        Assert.All(stub.Urls, u => Assert.Equal("http://stub:1234/v1/completions", u));
        var body = JsonNode.Parse(stub.Bodies[1])!;
        Assert.Equal(["S1", "S2", "S3", "S4"], body["stop"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal(0, body["temperature"]!.GetValue<int>());
        Assert.Equal(32, body["max_tokens"]!.GetValue<int>());
        Assert.Equal("Q: 6*7?\nA:", body["prompt"]!.GetValue<string>());   // text without a tokenizer
    }

    [Fact]
    public void Retries_are_bounded_and_a_401_is_not_retried()
    {
        var busy = new StubServer((_, _) => (HttpStatusCode.ServiceUnavailable, "upstream busy"));
        using (var api = OpenAiModel.Connect(Options("http://stub:1234"), busy))
        {
            var e = Assert.Throws<CptLabException>(() => api.GenerateUntil([new GenerateUntilRequest("x", [], 4)]));
            Assert.Contains("http://stub:1234/v1/completions failed 3 times", e.Message);
            Assert.Contains("503", e.Message);
            Assert.Contains("upstream busy", e.Message);
            Assert.Equal(3, busy.Bodies.Count);
        }
        var denied = new StubServer((_, _) => (HttpStatusCode.Unauthorized, """{"error": {"message": "Incorrect API key provided."}}"""));
        using (var api = OpenAiModel.Connect(Options("http://stub:1234/v1"), denied))
        {
            var e = Assert.Throws<CptLabException>(() => api.GenerateUntil([new GenerateUntilRequest("x", [], 4)]));
            Assert.Equal("POST http://stub:1234/v1/completions failed with HTTP 401 Unauthorized: Incorrect API key provided. (the server wants an API key: pass --api-key KEY or set OPENAI_API_KEY)", e.Message);
            Assert.Single(denied.Bodies);
        }
    }

    [Fact]
    public void Logprobs_are_read_at_the_positions_of_the_tokens_sent()
    {
        var tok = TinyModels.Llama3Tokenizer;
        var pair = PairEncoding.EncodePair(tok, "The capital of France is", " Paris");
        int n = pair.Context.Count + pair.Continuation.Count;
        Assert.True(pair.Continuation.Count >= 1 && pair.Context.Count >= 2);
        // The echoed prompt (first token unscored), then one generated token that must not count.
        var lps = Enumerable.Range(0, n).Select(i => i == 0 ? "null" : $"-{i}.25").Append("-99.0");
        static string Num(double x) => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        string Top(int i, double best) => i == 0 ? "null" : "{\"a\": " + Num(best) + ", \"b\": -50}";
        string Reply(Func<int, double> best) =>
            "{\"choices\": [{\"index\": 0, \"text\": \"\", \"logprobs\": {\"tokens\": [], \"token_logprobs\": [" + string.Join(",", lps)
            + "], \"top_logprobs\": [" + string.Join(",", Enumerable.Range(0, n + 1).Select(i => Top(i, best(i)))) + "]}}]}";
        double expected = Enumerable.Range(pair.Context.Count, pair.Continuation.Count).Sum(i => -(i + 0.25));

        var greedy = new StubServer((_, _) => (HttpStatusCode.OK, Reply(i => -(i + 0.25))));   // each token is its top alternative
        using (var api = OpenAiModel.Connect(Options("http://stub/v1") with { Tokenizer = tok }, greedy))
        {
            var r = api.Loglikelihood([new LoglikelihoodRequest("The capital of France is", " Paris")]).Single();
            Assert.Equal(expected, r.LogLikelihood, 12);
            Assert.True(r.IsGreedy);
            Assert.Equal(pair.Continuation.Count, r.Tokens);
            var body = JsonNode.Parse(greedy.Bodies[0])!;
            Assert.Equal(pair.Context.Concat(pair.Continuation), body["prompt"]![0]!.AsArray().Select(x => x!.GetValue<int>()));
            Assert.True(body["echo"]!.GetValue<bool>());
            Assert.Equal(1, body["logprobs"]!.GetValue<int>());
        }
        int last = n - 1;
        var beaten = new StubServer((_, _) => (HttpStatusCode.OK, Reply(i => i == last ? -0.5 : -(i + 0.25))));   // another token beats the last one
        using (var api = OpenAiModel.Connect(Options("http://stub/v1") with { Tokenizer = tok }, beaten))
            Assert.False(api.Loglikelihood([new LoglikelihoodRequest("The capital of France is", " Paris")]).Single().IsGreedy);

        using (var chat = OpenAiModel.Connect(Options("http://stub/v1") with { Tokenizer = tok, Chat = true }, beaten))
            Assert.Contains("without --chat", Assert.Throws<CptLabException>(() => chat.Loglikelihood([new LoglikelihoodRequest("a", " b")])).Message);
        using (var noTokenizer = OpenAiModel.Connect(Options("http://stub/v1"), beaten))
            Assert.Contains("--tokenizer DIR", Assert.Throws<CptLabException>(() => noTokenizer.Loglikelihood([new LoglikelihoodRequest("a", " b")])).Message);
    }

    static OpenAiModelOptions Options(string url) => new()
    {
        BaseUrl = url, ModelName = "stub-model", MaxRetries = 2, FirstBackoff = TimeSpan.FromMilliseconds(5), MaxBackoff = TimeSpan.FromMilliseconds(20),
    };

    static string[] Metrics(EvalRun run) =>
        run.Tasks.SelectMany(t => t.Units.SelectMany(u => u.Metrics.Select(m => $"{u.Name} {m.Metric} {m.Value:R} {m.N}"))).ToArray();

    /// <summary>
    /// A servable model folder: a byte-level BPE tokenizer trained on the tasks' first prompts and a debug-size Llama
    /// with large random weights (std 0.3), so that greedy choices are far from ties.
    /// </summary>
    static string ModelDir(TaskSpec cmmlu, TaskSpec gsm8k)
    {
        var dir = Path.Combine(Temp.Dir(), "tiny-api");
        Directory.CreateDirectory(dir);
        var text = TaskData.Load(cmmlu, RepoPaths.SharedData, 5, 4, subjects: ["agronomy"]).SelectMany(u => u.Docs).Select(d => d.Prompt + " A B C D")
            .Concat(TaskData.Load(gsm8k, RepoPaths.SharedData, 5, 2).SelectMany(u => u.Docs).Select(d => d.Prompt));
        BpeTrainer.Train(text, new BpeTrainerOptions { VocabSize = 256 + 300 + Llama3Format.SpecialTokenCount }).Save(Path.Combine(dir, "tokenizer.json"));
        var tok = TextTokenizer.Load(dir);
        TorchRuntime.Initialise();
        var config = Flavors.Get("debug") with { VocabSize = tok.VocabSize, MaxPositionEmbeddings = 4096, BosTokenId = tok.BosId, EosTokenIds = [tok.EosId, tok.EotId!.Value] };
        using var model = RandomWeights.Fill(new LlamaForCausalLM(config, ScalarType.Float32), seed: 5);
        HfCheckpoint.Save(model, dir);
        return dir;
    }

    /// <summary>An in-memory HTTP server: answer(url, attempt) gives each reply; the URLs and bodies it was sent are kept.</summary>
    sealed class StubServer(Func<string, int, (HttpStatusCode Status, string Body)> answer) : HttpMessageHandler
    {
        public List<string> Urls { get; } = [];
        public List<string> Bodies { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
            int attempt;
            lock (Bodies)
            {
                attempt = Bodies.Count;
                Urls.Add(request.RequestUri!.ToString());
                Bodies.Add(body);
            }
            var (status, text) = answer(request.RequestUri!.ToString(), attempt);
            return new HttpResponseMessage(status) { Content = new StringContent(text, Encoding.UTF8, "application/json"), RequestMessage = request };
        }
    }
}
