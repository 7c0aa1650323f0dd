using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Laws;
using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Model.Parallelism;
using CptLab.Sweep.ScaleOut;
using CptLab.Training;

namespace CptLab.Sweep;

public sealed record PlanOptions
{
    /// <summary>The full-size model: a flavor name (Llama-3-70B), a Hugging Face checkpoint folder, or a config.json.</summary>
    public required string Target { get; init; }
    /// <summary>Token budget of the full-size run.</summary>
    public required long Tokens { get; init; }
    /// <summary>Default: the sweep's sequence length.</summary>
    public int? SeqLen { get; init; }
    /// <summary>Sequences per optimizer step. Default: the sweep's global batch (its tokens / sequence length).</summary>
    public int? GlobalBatchSize { get; init; }
    /// <summary>cosine, WSD or constant: the schedules both `cptlab train` and Megatron-LM run.</summary>
    public string DecayStyle { get; init; } = "cosine";
    public double WarmupFraction { get; init; } = 0.01;
    /// <summary>Default: the sweep's schedule.min_lr_ratio, else 0.1.</summary>
    public double? MinLrRatio { get; init; }
    /// <summary>Fitted sweeps of other proxy sizes: with them the LR rule η* ∝ N^-α is fitted instead of assumed.</summary>
    public IReadOnlyList<string> OtherSweeps { get; init; } = [];
    /// <summary>Where the plan files go (default: SWEEP_DIR/plan).</summary>
    public string? OutDir { get; init; }
    /// <summary>The cluster to lay the run out on (tensor, pipeline, data parallel sizes); none: no parallel layout.</summary>
    public ClusterSpec? Cluster { get; init; }
}

public sealed record SweepPlanResult(TrainingPlan Plan, LrScalingRule Rule, double TargetParameters, string Description,
    string PlanPath, string BlendPath, string TrainConfigPath, ParallelismPlan? Parallelism, MegatronArguments Megatron, IReadOnlyList<string> LauncherPaths);

/// <summary>
/// `cptlab sweep plan`: the full-size run from the fitted sweep. Keeps the optimum's ALMR, scales its LR to the
/// target size by η* ∝ N^-α (α fitted over this and other proxy sweeps, or the stated default with one), and
/// writes: <c>plan.json</c>; <c>blend.json</c>, the blend at that ALMR for the full budget; <c>train.json</c>, the
/// `cptlab train` config of the run, the one source of truth; and the Megatron-LM hand-off generated from it
/// (<see cref="MegatronLauncher"/>: convert in, train with torchrun or Slurm, convert out, and a README), laid out on
/// <see cref="PlanOptions.Cluster"/> by <see cref="ParallelismPlanner"/> when one is given. Shards in another tokenizer's
/// ids than the target's are refused before anything is written (<see cref="TokenizerMatch"/>).
/// </summary>
public static class SweepPlan
{
    public const string DefaultDir = "plan";
    public const string PlanFileName = "plan.json";

    public static SweepPlanResult Run(string sweepDir, PlanOptions options)
    {
        sweepDir = Path.GetFullPath(sweepDir);
        var schedule = ScheduleFor(options.DecayStyle)
            ?? throw new CptLabException($"--decay-style '{options.DecayStyle}': the plan is one train config that `cptlab train` and Megatron-LM both run, so its schedule is cosine, WSD or constant");
        var (spec, fit) = Fitted(sweepDir);
        var proxies = new List<ProxyOptimum> { new(ProxyParameters(spec), fit.Optimum.Lr, fit.Optimum.LrInterval) };
        foreach (var other in options.OtherSweeps)
        {
            var (s, f) = Fitted(Path.GetFullPath(other));
            proxies.Add(new ProxyOptimum(ProxyParameters(s), f.Optimum.Lr, f.Optimum.LrInterval));
        }
        var rule = LrScalingRule.Fit(proxies);

        var (targetConfig, modelNode, targetNote, targetFolder) = Target(options.Target);
        var targetParameters = (double)ModelMath.ParameterCount(targetConfig);
        var seqLen = options.SeqLen ?? spec.SeqLen;
        var template = ProxyConfig(sweepDir, spec);
        var globalBatch = options.GlobalBatchSize ?? (int)Math.Max(1, template.GlobalBatchTokens / template.SeqLen);
        var manifest = PrepareManifest.Load(spec.DataDir);
        TokenizerMatch.Ensure(manifest, spec.DataDir, options.Target, targetConfig, targetFolder);
        var parallelism = options.Cluster is { } cluster ? ParallelismPlanner.Plan(targetConfig, cluster, seqLen, globalBatch, options.Tokens) : null;
        var sources = spec.Components.Select(c =>
        {
            var acc = manifest.Source(c.Source);
            var role = c.Group switch { SourceGroup.Additional => BlendRole.Target, SourceGroup.Original => BlendRole.Original, _ => BlendRole.Domain };
            // Within a language, sources share by their NAME:WEIGHT, as the proxies' blends did (BlendManifest.Create).
            return new Laws.ShardSource(Path.Combine(spec.DataDir, acc.TrainPrefix), role, acc.TokensTrain, c.Weight);
        }).ToList();
        var plan = TransferPlanner.Plan(new PlanRequest
        {
            Almr = fit.Optimum.Almr, ProxyLr = fit.Optimum.Lr, ProxyLrInterval = fit.Optimum.LrInterval, ProxyParameters = proxies[0].Parameters, TargetParameters = targetParameters,
            TokenBudget = options.Tokens, SeqLength = seqLen, GlobalBatchSize = globalBatch, Sources = sources, Rule = rule,
            DomainShare = spec.DomainShare, MinLrRatio = options.MinLrRatio ?? template.MinLrRatio, WarmupFraction = options.WarmupFraction,
            DecayStyle = options.DecayStyle,
        });
        if (targetNote is not null) plan = plan with { Assumptions = [.. plan.Assumptions, targetNote] };
        plan = plan with { Assumptions = [.. plan.Assumptions, OptimizerNote(template)] };
        if (options.SeqLen is null || options.GlobalBatchSize is null)
        {
            var taken = options.SeqLen is null && options.GlobalBatchSize is null ? "sequence length and global batch are"
                : options.SeqLen is null ? "sequence length is" : "global batch is";
            var note = string.Create(CultureInfo.InvariantCulture,
                $"the {taken} the proxies' own (sequence length {seqLen:N0}, global batch {globalBatch:N0} sequences, {(long)seqLen * globalBatch:N0} tokens per step): the LR was tuned at this geometry");
            if ((long)seqLen * globalBatch < 1_000_000 && targetParameters > 1e9)
                note += string.Create(CultureInfo.InvariantCulture, $"; for a {targetParameters / 1e9:0.#}B model that is a very small step (Llama-3 pre-training used 4M–16M tokens per step): pass --seq-len and --global-batch for the full-size run");
            plan = plan with { Assumptions = [.. plan.Assumptions, note] };
        }
        if (fit.Optimum.AlmrInterval is { } ri && fit.Optimum.LrInterval is { } li)
            plan = plan with { Assumptions = [.. plan.Assumptions, string.Create(CultureInfo.InvariantCulture,
                $"proxy optimum ALMR {fit.Optimum.Almr:0.###} [{ri.Lo:0.###}, {ri.Hi:0.###}], lr {fit.Optimum.Lr:0.###e0} [{li.Lo:0.###e0}, {li.Hi:0.###e0}] ({(fit.Bootstrap?.Confidence ?? 0.95) * 100:0}% intervals, {fit.Law} law, objective: {fit.ObjectiveDescription})")] };

        var outDir = Path.GetFullPath(options.OutDir ?? Path.Combine(sweepDir, DefaultDir));
        Directory.CreateDirectory(outDir);
        var blendPath = Path.Combine(outDir, "blend.json");
        var blend = BlendManifest.Create(spec.Mix(plan.Almr, spec.Seeds[0]) with { TokenBudget = plan.TrainIters * plan.TokensPerIter, SeqLen = seqLen });
        blend.Save(blendPath);

        var trainPath = Path.Combine(outDir, "train.json");
        AtomicFile.WriteAllText(trainPath, TrainConfigFor(plan, spec, template, modelNode, blendPath, schedule, outDir, parallelism?.TokensPerSecond).ToJsonString(Json.Indented) + "\n");

        // The Megatron-LM arguments come from train.json as `cptlab train` reads it: one run, two launchers.
        var config = TrainConfig.Load(trainPath);
        var megatron = MegatronMapping.Build(config, trainPath, blend, manifest, parallelism);
        var launchers = MegatronLauncher.Write(outDir, new LauncherInputs(TargetName(options.Target), targetConfig, config, blend, megatron, parallelism, plan.Assumptions, plan.LrInterval));
        var planPath = Path.Combine(outDir, PlanFileName);
        AtomicFile.WriteAllText(planPath, JsonSerializer.Serialize(new PlanFile(plan, rule, targetParameters, options.Target, parallelism), Json.SnakeCase) + "\n");
        var description = Describe(plan, options.Target, targetParameters) + (parallelism is null ? "" : ParallelismPlanner.Describe(parallelism));
        return new SweepPlanResult(plan, rule, targetParameters, description, planPath, blendPath, trainPath, parallelism, megatron, launchers);
    }

    public static TrainingPlan ReadPlan(string path)
    {
        using var doc = Json.ParseFile(path);
        try
        {
            return doc.Deserialize<PlanFile>(Json.SnakeCase)?.Plan ?? throw new CorruptFileException(path, "empty plan");
        }
        catch (JsonException e) { throw new CorruptFileException(path, $"not a CptLab plan.json: {e.Message}"); }
    }

    sealed record PlanFile(TrainingPlan Plan, LrScalingRule Rule, double TargetParameters, string Target, ParallelismPlan? Parallelism = null);

    /// <summary>The plan as printed: the numbers, then every assumption behind them.</summary>
    public static string Describe(TrainingPlan p, string target, double targetParameters)
    {
        var ci = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            string.Create(ci, $"full-size run for {target} ({targetParameters:0.###e0} parameters):"),
            string.Create(ci, $"  ALMR            {p.Almr:0.####}"),
            string.Create(ci, $"  lr / min-lr     {p.Lr:0.###e0} / {p.MinLr:0.###e0} ({p.DecayStyle}, warmup {p.WarmupIters} iterations)"),
            p.LrInterval is { } li
                ? string.Create(ci, $"  lr interval     [{li.Lo:0.###e0}, {li.Hi:0.###e0}] (proxy's interval × α in [{p.AlphaInterval!.Lo:0.###}, {p.AlphaInterval.Hi:0.###}])")
                : "  lr interval     none (see the assumptions)",
            string.Create(ci, $"  iterations      {p.TrainIters:N0} × {p.GlobalBatchSize} sequences × {p.SeqLength} tokens = {p.TrainIters * p.TokensPerIter:N0} tokens"),
        };
        lines.AddRange(p.Blend.Select(b => string.Create(ci, $"  blend           {b.Weight:0.######} {b.PathPrefix} ({b.Role.ToString().ToLowerInvariant()})")));
        lines.Add("assumptions:");
        lines.AddRange(p.Assumptions.Select(a => "  - " + a));
        return string.Join('\n', lines) + "\n";
    }

    static (SweepSpec Spec, FitSummary Fit) Fitted(string sweepDir)
    {
        using var store = SweepStore.Open(sweepDir, create: false);
        var spec = SweepData.Spec(store);
        var fitPath = Path.Combine(sweepDir, SweepFit.FitFileName);
        if (!File.Exists(fitPath)) throw new CptLabException($"{sweepDir} has no {SweepFit.FitFileName}; run `cptlab sweep fit --dir {sweepDir}` first");
        return (spec, FitJson.Read(fitPath));
    }

    /// <summary>
    /// The `cptlab train` config the proxies were trained with, as the store recorded it for a run (so a default
    /// that changed since the sweep ran does not slip into the plan); the spec's, made now, for a sweep with none.
    /// </summary>
    static TrainConfig ProxyConfig(string sweepDir, SweepSpec spec)
    {
        using var store = SweepStore.Open(sweepDir, create: false);
        if (RunConfigCheck.Earlier(store) is { } run && JsonNode.Parse(run.Config) is JsonObject recorded)
            return TrainConfig.FromJson(recorded, $"{SweepStore.FileName}: run {run.Id}'s config", sweepDir);
        return spec.RunConfig(spec.Almrs[0], spec.Lrs[0], spec.Seeds[0], Path.Combine(sweepDir, "blend.json"), 1);
    }

    /// <summary>The proxies' optimizer, which train.json repeats and Megatron-LM's defaults do not.</summary>
    static string OptimizerNote(TrainConfig proxy)
    {
        static string N(double v) => v.ToString("G6", CultureInfo.InvariantCulture).ToLowerInvariant();
        return
            $"optimizer as in the proxy runs: AdamW β1 {N(proxy.Beta1)}, β2 {N(proxy.Beta2)}, ε {N(proxy.Eps)}, weight decay {N(proxy.WeightDecay)} on every weight matrix " +
            $"{(proxy.DecayEmbeddings ? "(embeddings and LM head included)" : "except the token embeddings")}, none on norms; gradient clip {N(proxy.GradClip)}. " +
            $"train.json sets each, and megatron_args.sh passes each (--weight-decay {N(proxy.WeightDecay)} --adam-beta1 {N(proxy.Beta1)} --adam-beta2 {N(proxy.Beta2)} " +
            $"--adam-eps {N(proxy.Eps)} --clip-grad {N(proxy.GradClip)}), since Megatron-LM's defaults differ (weight decay 0.01, β2 0.999)";
    }

    static double ProxyParameters(SweepSpec spec)
    {
        if (spec.ProxyParameters is { } p) return p;
        var config = Path.Combine(spec.BaseCheckpoint, HfCheckpoint.ConfigFile);
        if (!File.Exists(config)) throw new CptLabException($"{config} not found: the proxy's parameter count comes from it; set proxy_parameters in the sweep spec");
        return ModelMath.ParameterCount(LlamaConfig.Load(config));
    }

    /// <summary>
    /// The target's architecture, the model section of its train config, a note when it is not a checkpoint, and the
    /// folder holding its tokenizer (a checkpoint folder) when there is one.
    /// </summary>
    static (LlamaConfig Config, JsonObject Model, string? Note, string? Folder) Target(string target)
    {
        if (Directory.Exists(target))
        {
            var dir = Path.GetFullPath(target);
            return (LlamaConfig.Load(Path.Combine(dir, HfCheckpoint.ConfigFile)), new JsonObject { ["init_from"] = dir }, null, dir);
        }
        if (File.Exists(target))
        {
            var file = Path.GetFullPath(target);
            return (LlamaConfig.Load(file), new JsonObject { ["config"] = file },
                $"the train config builds {file}'s architecture from random weights; for continual pre-training set model.init_from to the checkpoint", null);
        }
        if (Flavors.All.ContainsKey(target))
            return (Flavors.Get(target), new JsonObject { ["flavor"] = target },
                $"the train config names flavor {target} (random weights); for continual pre-training replace it with model.init_from: the {target} checkpoint folder (the Megatron-LM launchers convert the base named by HF_BASE)", null);
        throw new CptLabException($"--target '{target}' is neither a model folder, a config.json nor a flavor ({string.Join(", ", Flavors.All.Keys)})");
    }

    /// <summary>The target as the launchers name it: a flavor, or a folder's or file's own name (never a planning-machine path).</summary>
    static string TargetName(string target) =>
        Directory.Exists(target) ? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(target)))
        : File.Exists(target) ? Path.GetFileName(target) : target;

    static string? ScheduleFor(string decayStyle) => decayStyle switch
    {
        "cosine" => "cosine",
        "WSD" => "wsd",
        "constant" => "constant",
        _ => null,
    };

    /// <summary>At least this many validation points and checkpoints over a full-size run, whatever the proxies did.</summary>
    public const int MinEvaluationsPerRun = 20;
    /// <summary>With a throughput estimate, a checkpoint at least this often: a failed node then costs at most this much work.</summary>
    public static readonly TimeSpan MaxCheckpointInterval = TimeSpan.FromHours(2);

    static JsonObject TrainConfigFor(TrainingPlan plan, SweepSpec spec, TrainConfig template, JsonObject model, string blendPath, string scheduleKind, string outDir,
        double? tokensPerSecond)
    {
        var node = (JsonObject)spec.Train.DeepClone();
        model["dtype"] = spec.Train["model"]?["dtype"]?.DeepClone() ?? ComputePrecision.Auto; // the full-size run picks its machine's faster dtype
        node["model"] = model;
        node["data"] = new JsonObject { ["mixture"] = blendPath, ["seq_len"] = plan.SeqLength };
        // Every optimizer setting written out, as the proxies had it: a default that changes later must not change the run.
        node["optimizer"] = new JsonObject
        {
            ["lr"] = plan.Lr, ["beta1"] = template.Beta1, ["beta2"] = template.Beta2, ["eps"] = template.Eps,
            ["weight_decay"] = template.WeightDecay, ["decay_embeddings"] = template.DecayEmbeddings, ["grad_clip"] = template.GradClip,
        };
        var schedule = node["schedule"] as JsonObject ?? new JsonObject();
        schedule["kind"] = scheduleKind;
        schedule["warmup_tokens"] = plan.WarmupIters * plan.TokensPerIter;
        schedule["min_lr_ratio"] = plan.Lr > 0 ? plan.MinLr / plan.Lr : 0;
        node["schedule"] = schedule;
        var micro = template.MicroBatchSize;
        if (plan.GlobalBatchSize % micro != 0) micro = 1;
        node["batch"] = new JsonObject { ["micro_batch_size"] = micro, ["global_batch_tokens"] = plan.TokensPerIter };
        node["budget_tokens"] = plan.TrainIters * plan.TokensPerIter;
        // As many evaluations and checkpoints per run as the proxies had (not the proxies' step counts), but at least
        // MinEvaluationsPerRun of each, and a checkpoint every MaxCheckpointInterval of the estimated wall time.
        var scale = (double)plan.TrainIters / Math.Max(1, template.TotalSteps);
        var atLeast = Math.Max(1, (plan.TrainIters + MinEvaluationsPerRun - 1) / MinEvaluationsPerRun);
        var evalEvery = Math.Min(atLeast, Math.Max(1, (long)Math.Round(template.EvalEverySteps * scale)));
        var checkpointEvery = Math.Min(atLeast, Math.Max(1, (long)Math.Round(template.CheckpointEverySteps * scale)));
        if (tokensPerSecond is > 0 and var tps)
            checkpointEvery = Math.Min(checkpointEvery, Math.Max(1, (long)(tps * MaxCheckpointInterval.TotalSeconds / plan.TokensPerIter)));
        node["eval"] = new JsonObject { ["every_steps"] = evalEvery, ["max_sequences"] = template.EvalMaxSequences };
        var checkpoint = node["checkpoint"] as JsonObject ?? new JsonObject();
        checkpoint["every_steps"] = checkpointEvery;
        node["checkpoint"] = checkpoint;
        node["seed"] = 0;
        node["threads"] = 0;
        node["measure_peak_flops"] = true;
        // Validate what we write: `cptlab train --config` must accept it as it is.
        TrainConfig.FromJson((JsonObject)node.DeepClone(), Path.Combine(outDir, "train.json"), outDir);
        return node;
    }
}
