using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Chat;
using CptLab.Data.Tokenization;
using CptLab.Eval;
using CptLab.Eval.Backends;
using CptLab.Eval.Results;
using CptLab.Eval.Tasks;
using CptLab.Export;
using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Serving;
using CptLab.Training;
using CptLab.Training.PostTraining;

namespace CptLab.Demo;

/// <summary>
/// The demo after continual pre-training, each stage a thin call into the library a CLI verb calls too:
/// post-train-sets (`cptlab data post-train-sets`, then the first N records of each set) → sft (`cptlab sft` from the
/// chosen CPT model) → dpo (`cptlab dpo` from the SFT model) → chat-samples → evaluate-harness (`cptlab eval` over
/// base-large, cpt-naive, cpt-chosen, sft, dpo) → gguf (`cptlab export gguf`, then llama.cpp through LLamaSharp answers
/// one prompt) → serve (the OpenAI-compatible server on a free port, one chat completion over HTTP, stopped).
/// Every stage leaves its records in the run folder; the report reads only those.
/// </summary>
public static class DemoPostStages
{
    public const string AnswerFile = "answer.json";
    public const string ReplyFile = "reply.json";
    public const string ChatSamplesFile = "chat_samples.json";
    public const string EngineLlamaCpp = "llama.cpp";

    /// <summary>The harness's tasks: bpb per language, knowledge, emotional intelligence, math, code.</summary>
    public const string HarnessTasks = "bpb_en,bpb_en_docs,bpb_zh,bpb_zh_docs,cmmlu,emobench,eq_bench,gsm8k,humaneval";

    /// <summary>The prompts of the chat samples, the GGUF answer and the served reply (the first one).</summary>
    public static readonly IReadOnlyList<string> ChatPrompts =
    [
        "Translate the following text into Chinese:\n\nOpen file",
        "请把下面的中文翻译成英文：\n\n保存文件",
    ];

    /// <summary>The models the harness scores, in the order of the report's rows.</summary>
    public static IReadOnlyList<(string Name, string Dir)> HarnessModels(DemoPipeline.Paths p) =>
    [
        ("base-large", p.BaseLargeModel),
        ("cpt-naive", Path.Combine(p.CptNaive, "run", Trainer.FinalDir)),
        ("cpt-chosen", Path.Combine(p.CptChosen, "run", Trainer.FinalDir)),
        ("sft", p.SftModel),
        ("dpo", p.DpoModel),
    ];

    // ---- post-train-sets ----

    /// <summary>The full sets from GSM8K and the zh_CN catalogs, then the first N records of each file (as the CLI test slices them).</summary>
    public static void BuildSets(DemoOptions o, DemoPipeline.Paths p, PostTrainingScale s, IDemoUi ui)
    {
        var full = Path.Combine(p.PostSets, "full");
        Directory.CreateDirectory(full);
        var gsm8k = Path.Combine(o.SharedDataDir, "gsm8k", "train.jsonl");
        if (!File.Exists(gsm8k)) throw new CptLabException($"GSM8K's train.jsonl is not at {gsm8k}; give the shared data folder (../shared/data of the checkout) or fetch it (docs/post-training-data.md)");
        if (!Directory.Exists(o.LocaleDir)) throw new CptLabException($"no zh_CN gettext catalogs in {o.LocaleDir}; install Debian packages with zh_CN translations or give another locale folder");
        var manifest = PostTrainSets.Build(new PostTrainSetOptions { OutputDir = full, Gsm8kFile = gsm8k, LocaleDir = o.LocaleDir });
        foreach (var (name, c) in manifest.Sets) ui.Line($"{name}: {c.Train:N0} training and {c.Validation:N0} held-out records");
        Slice(full, p.PostSets, "gsm8k_sft", s.SftGsm8k, s.SftValidation);
        Slice(full, p.PostSets, "translation_sft", s.SftTranslation, s.SftValidation);
        Slice(full, p.PostSets, "gsm8k_dpo", s.DpoGsm8k, s.DpoValidation);
        Slice(full, p.PostSets, "translation_dpo", s.DpoTranslation, s.DpoValidation);
        ui.Line($"used: SFT {s.SftGsm8k} GSM8K + {s.SftTranslation} translation conversations, DPO {s.DpoGsm8k} + {s.DpoTranslation} pairs; {s.SftValidation} / {s.DpoValidation} held out per set");
    }

    static void Slice(string from, string to, string set, int train, int validation)
    {
        AtomicFile.WriteAllText(Path.Combine(to, set + ".jsonl"), string.Concat(File.ReadLines(Path.Combine(from, set + ".jsonl")).Take(train).Select(l => l + "\n")));
        AtomicFile.WriteAllText(Path.Combine(to, set + ".val.jsonl"), string.Concat(File.ReadLines(Path.Combine(from, set + ".val.jsonl")).Take(validation).Select(l => l + "\n")));
    }

    // ---- sft, dpo ----

    /// <summary>SFT of <paramref name="from"/> (or DPO, <paramref name="dpo"/>) on the sliced sets, resumable from its checkpoint.</summary>
    public static void PostTrain(DemoPipeline.Paths p, DemoScale scale, bool dpo, string from, string runDir, int threads, IDemoUi ui, CancellationToken ct)
    {
        if (File.Exists(Path.Combine(runDir, Trainer.FinalDir, HfCheckpoint.ConfigFile))) return;
        var s = scale.Post;
        string[] sets = dpo ? ["gsm8k_dpo", "translation_dpo"] : ["gsm8k_sft", "translation_sft"];
        var post = new PostTrainOptions
        {
            Stage = dpo ? PostTrainStage.Dpo : PostTrainStage.Sft,
            Train = [.. sets.Select(x => Path.Combine(p.PostSets, x + ".jsonl"))],
            Validation = [.. sets.Select(x => Path.Combine(p.PostSets, x + ".val.jsonl"))],
            Epochs = dpo ? s.DpoEpochs : s.SftEpochs,
            Beta = s.DpoBeta,
        };
        long rowsPerStep = s.GlobalBatchRows;
        var config = new TrainConfig
        {
            InitFrom = from, ComputeDtype = ComputePrecision.Auto, SeqLen = scale.SeqLen, MicroBatchSize = s.MicroBatch,
            GlobalBatchTokens = rowsPerStep * scale.SeqLen, Lr = dpo ? s.DpoLr : s.SftLr, Schedule = ScheduleKind.Cosine, MinLrRatio = 0.1,
            WarmupTokens = rowsPerStep * scale.SeqLen, WeightDecay = 0, EvalEverySteps = 10, CheckpointEverySteps = 20, KeepLast = 1, KeepBest = false,
            Threads = threads, MeasurePeakFlops = false, Seed = 1, Post = post,
        };
        bool resume = Directory.Exists(Path.Combine(runDir, Trainer.CheckpointsDir));
        // The steps are known only once the data is tokenized and packed; the bar's total is the unpacked upper bound.
        long records = dpo ? 2L * (s.DpoGsm8k + s.DpoTranslation) : s.SftGsm8k + s.SftTranslation;
        long estimate = Math.Max(1, (long)(post.Epochs * records / rowsPerStep));
        var label = dpo ? "dpo" : "sft";
        var result = ui.Train(label, estimate, progress => PostTrainer.Run(config, runDir, resume, new TrainerHooks { Progress = progress, Log = ui.Line }, ct));
        foreach (var (name, v) in result.Validation)
            ui.Line($"{label}: held-out {name} loss {v.Loss:F4}" + string.Concat((v.Metrics ?? new Dictionary<string, double>()).Where(kv => kv.Key.StartsWith("rewards/", StringComparison.Ordinal)).Select(kv => $", {kv.Key} {kv.Value:F4}")));
    }

    // ---- chat-samples ----

    /// <summary>Greedy replies of the chosen CPT model (before post-training), the SFT and the DPO model to <see cref="ChatPrompts"/>, each rendered with the model folder's chat template.</summary>
    public static void ChatSamples(DemoPipeline.Paths p, DemoScale scale, int threads)
    {
        TorchRuntime.Initialise(threads);
        var samples = new JsonArray();
        foreach (var (name, dir) in HarnessModels(p).Where(m => m.Name is "cpt-chosen" or "sft" or "dpo"))
        {
            using var model = HfCheckpoint.Load(dir, TorchSharp.torch.ScalarType.Float32);
            var tokenizer = TextTokenizer.Load(dir);
            var template = ChatTemplate.ForModel(dir);
            foreach (var prompt in ChatPrompts)
                samples.Add(new JsonObject { ["model"] = name, ["template"] = template.Name, ["prompt"] = prompt, ["reply"] = Reply(model, tokenizer, template, dir, prompt, scale) });
        }
        AtomicFile.WriteAllText(Path.Combine(p.Out, ChatSamplesFile), samples.ToJsonString(Json.Indented) + "\n");
    }

    static string Reply(LlamaForCausalLM model, TextTokenizer tokenizer, ChatTemplate template, string dir, string prompt, DemoScale scale)
    {
        var ids = template.Encode(tokenizer, [new ChatMessage("user", prompt)]);
        int room = Math.Min(scale.Post.ReplyTokens, scale.SeqLen - ids.Length);
        if (room <= 0) return "";
        var stops = new HashSet<int>(template.TurnEndIds(tokenizer)) { tokenizer.EosId };
        foreach (var id in GenerationConfig.TryLoad(dir)?.EosTokenIds ?? []) stops.Add(id);
        var generated = Generation.Generate(model, new GenerationRequest(ids, room, SamplingOptions.Greedy) { StopIds = stops })
            .Select(t => t.Id).Where(id => !stops.Contains(id)).ToArray();
        return tokenizer.Decode(generated);
    }

    // ---- evaluate-harness ----

    /// <summary>The harness over every model: results.json, samples.jsonl and results.md per model, as `cptlab eval` writes them. A model already scored is kept.</summary>
    public static void Harness(DemoOptions o, DemoPipeline.Paths p, DemoScale scale, int threads, IDemoUi ui, CancellationToken ct)
    {
        TorchRuntime.Initialise(threads);
        var registry = new TaskRegistry(TaskRegistry.DefaultFolder);
        var (specs, subjects) = registry.Select(HarnessTasks);
        // Zero shots: the models' contexts are SeqLen tokens (64 quick, 128 default), shorter than one 5-shot CMMLU prompt.
        var options = new EvalOptions
        {
            // The run's own folder last: bpb_*_docs read the extraction in it (debian-docs/).
            DataDir = string.Join(Path.PathSeparator, o.SharedDataDir, o.CorporaDir, p.Out), Limit = scale.Post.EvalLimit, NumFewshot = 0, AllowCodeExecution = true,
        };
        Evaluator.Check(specs, options);
        foreach (var (name, dir) in HarnessModels(p))
        {
            var outDir = Path.Combine(p.Eval, name);
            if (File.Exists(Path.Combine(outDir, ResultsWriter.ResultsFile))) { ui.Line($"{name}: scored before ({Path.Combine(outDir, ResultsWriter.ResultsFile)})"); continue; }
            using var backend = LocalModel.Open(dir, "float32", scale.MicroBatch, ui.Line);
            string last = "";
            var run = Evaluator.Run(backend, specs, options, new SyncProgress<EvalProgress>(e =>
            {
                if (e.Done == e.Total && e.Stage != last) { last = e.Stage; ui.Line($"{name}: {e.Stage} {e.Done}/{e.Total}"); }
            }), ct, subjects);
            ResultsWriter.Write(run, outDir);
            ui.Line($"{name}: {run.Samples.Count} documents in {run.WallSeconds:F0} s → {Path.Combine(outDir, ResultsWriter.ResultsFile)}");
        }
    }

    // ---- gguf ----

    /// <summary>The DPO model exported to GGUF (f32), loaded by llama.cpp (LLamaSharp) and answering the first chat prompt greedily; answer.json records it.</summary>
    public static void Gguf(DemoPipeline.Paths p, DemoScale scale, int threads, IDemoUi ui)
    {
        Directory.CreateDirectory(p.Gguf);
        var file = Path.Combine(p.Gguf, "model.gguf");
        var export = GgufExport.Export(p.DpoModel, file, GgufWeightType.F32, force: true);
        ui.Line($"wrote {export.Path}: {export.Bytes:N0} bytes, {export.TensorCount} tensors, vocabulary {export.VocabSize:N0}");
        var tokenizer = TextTokenizer.Load(p.DpoModel);
        var template = ChatTemplate.ForModel(p.DpoModel);
        var prompt = ChatPrompts[0];
        var promptText = template.Render(tokenizer, [new ChatMessage("user", prompt)]);
        var answer = LlamaCppAnswer.Greedy(file, promptText, scale.Post.ReplyTokens, (uint)scale.SeqLen, threads);
        var record = new JsonObject
        {
            ["engine"] = EngineLlamaCpp,
            ["llama_cpp_library"] = answer.Library,
            ["llama_cpp_system_info"] = answer.SystemInfo,
            ["gguf"] = Path.GetRelativePath(p.Out, file),
            ["gguf_bytes"] = export.Bytes,
            ["type"] = export.Type.ToString().ToLowerInvariant(),
            ["prompt"] = prompt,
            ["prompt_text"] = promptText,
            ["prompt_ids"] = new JsonArray(answer.PromptIds.Select(i => (JsonNode)i).ToArray()),
            ["max_new_tokens"] = answer.MaxNewTokens,
            ["answer_ids"] = new JsonArray(answer.AnswerIds.Select(i => (JsonNode)i).ToArray()),
            ["answer"] = answer.Text,
        };
        AtomicFile.WriteAllText(Path.Combine(p.Gguf, AnswerFile), record.ToJsonString(Json.Indented) + "\n");
        ui.Line($"llama.cpp: {Quote(answer.Text)}");
    }

    // ---- serve ----

    /// <summary>The DPO model served on a free port; one chat completion over HTTP; the server stopped. reply.json records the exchange and the server's request log.</summary>
    public static void Serve(DemoPipeline.Paths p, DemoScale scale, IDemoUi ui, CancellationToken ct) =>
        Task.Run(() => ServeAsync(p, scale, ui, ct), ct).GetAwaiter().GetResult();

    static async Task ServeAsync(DemoPipeline.Paths p, DemoScale scale, IDemoUi ui, CancellationToken ct)
    {
        Directory.CreateDirectory(p.Serve);
        var requestLog = new List<string>();
        var clock = Stopwatch.StartNew();
        var server = await ChatServer.StartAsync(new ServerOptions
        {
            ModelDir = p.DpoModel, Port = 0, ServedModelName = "cptlab-demo-dpo", RequestLog = line => { lock (requestLog) requestLog.Add(line); },
        }, ct).ConfigureAwait(false);
        bool stopped = false;
        try
        {
            ui.Line($"serving {p.DpoModel} at {server.Address}");
            using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(2) };
            while ((await http.GetAsync("health", ct).ConfigureAwait(false)).StatusCode != System.Net.HttpStatusCode.OK)
            {
                if (clock.Elapsed > TimeSpan.FromMinutes(2)) throw new CptLabException($"the server at {server.Address} did not load {p.DpoModel} within 2 minutes");
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            double loadSeconds = clock.Elapsed.TotalSeconds;
            // The server refuses prompt + max_tokens beyond the context (64 tokens in quick mode): ask for what fits.
            var prompt = ChatTemplate.ForModel(p.DpoModel).Encode(TextTokenizer.Load(p.DpoModel), [new ChatMessage("user", ChatPrompts[0])]);
            var request = new JsonObject
            {
                ["model"] = "cptlab-demo-dpo",
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = ChatPrompts[0] }),
                ["max_tokens"] = Math.Max(1, Math.Min(scale.Post.ReplyTokens, scale.SeqLen - prompt.Length)), ["temperature"] = 0,
            };
            var sent = Stopwatch.StartNew();
            using var response = await http.PostAsync("v1/chat/completions", new StringContent(request.ToJsonString(), Encoding.UTF8, "application/json"), ct).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            double seconds = sent.Elapsed.TotalSeconds;
            if (!response.IsSuccessStatusCode) throw new CptLabException($"POST {server.Address}v1/chat/completions answered {(int)response.StatusCode}: {body}");
            var reply = JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>();
            await server.DisposeAsync().ConfigureAwait(false);   // stopped before the record says so
            stopped = true;
            string[] log;
            lock (requestLog) log = [.. requestLog];
            var record = new JsonObject
            {
                ["url"] = new Uri(server.Address, "v1/chat/completions").ToString(),
                ["http_version"] = response.Version.ToString(),
                ["status"] = (int)response.StatusCode,
                ["content_type"] = response.Content.Headers.ContentType?.ToString(),
                ["request"] = request,
                ["response_body"] = body,
                ["reply"] = reply,
                ["load_seconds"] = Math.Round(loadSeconds, 2),
                ["request_seconds"] = Math.Round(seconds, 3),
                ["server_request_log"] = new JsonArray(log.Select(l => (JsonNode)l).ToArray()),
                ["stopped"] = true,
            };
            AtomicFile.WriteAllText(Path.Combine(p.Serve, ReplyFile), record.ToJsonString(Json.Indented) + "\n");
            ui.Line($"HTTP {(int)response.StatusCode} in {seconds:F2} s: {Quote(reply)}");
        }
        finally
        {
            if (!stopped) await server.DisposeAsync().ConfigureAwait(false);
        }
    }

    static string Quote(string text) => text.Replace("\n", " ");
}
