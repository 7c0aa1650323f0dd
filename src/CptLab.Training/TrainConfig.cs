using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Hardware;

namespace CptLab.Training;

/// <summary>
/// Everything a training run needs, read from YAML or JSON (`cptlab train --config FILE`). Sizes are in
/// tokens (global batch, warmup, budget; "64K" and "50M" are read too) and converted to steps here, printed at
/// start-up. Unknown keys are errors, so a typo never silently falls back to a default. Each key of the file is listed
/// once, in <see cref="TrainConfigKeys"/>, which both reads and writes it: a new property needs its row there (a test
/// round-trips every property and fails on one without).
/// </summary>
public sealed record TrainConfig
{
    // model
    public string? Flavor { get; init; }
    public string? ModelConfigPath { get; init; }
    /// <summary>A Hugging Face checkpoint to continue from (continual pre-training).</summary>
    public string? InitFrom { get; init; }
    /// <summary>Compute precision: "auto" (the faster of float32 and bfloat16 on this machine, see ComputePrecision), "float32" or "bfloat16".</summary>
    public string ComputeDtype { get; init; } = ComputePrecision.Auto;
    /// <summary>
    /// Dtype of the final model's weights: "auto" (the dtype of the model the run started from — the base checkpoint's
    /// torch_dtype, bf16 for a Hub Llama-3 — or the flavor's / config file's), "float32", "bfloat16" or "float16".
    /// Checkpoints always keep the float32 master weights, which exact resume needs.
    /// </summary>
    public string SaveDtype { get; init; } = ComputePrecision.Auto;
    /// <summary>
    /// The tokenizer copied into every model folder the run writes (a tokenizer.json, tokenizer.model or a folder);
    /// default: the base checkpoint's, else the one the training data was tokenized with.
    /// </summary>
    public string? Tokenizer { get; init; }

    // data
    public string? Data { get; init; }
    public int SeqLen { get; init; } = 256;

    // optimizer
    public double Lr { get; init; } = 1e-3;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double Eps { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.1;
    /// <summary>
    /// Weight decay on the token embeddings too (default), as on every weight matrix: what nanoGPT, the Hugging Face
    /// Trainer and Megatron-LM do (none of them decays norms or biases, nor does this trainer). A proxy tuned with
    /// another setting than the full-size engine's would transfer its optimum to a run configured differently.
    /// </summary>
    public bool DecayEmbeddings { get; init; } = true;
    public double GradClip { get; init; } = 1.0;

    // schedule
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;
    public long WarmupTokens { get; init; }
    public double MinLrRatio { get; init; } = 0.1;
    public double DecayFraction { get; init; } = 0.2;
    public AnnealShape Anneal { get; init; } = AnnealShape.Linear;
    public double WarmupInitLr { get; init; }

    // batch and budget
    public int MicroBatchSize { get; init; } = 8;
    public long GlobalBatchTokens { get; init; } = 8 * 256;
    public long BudgetTokens { get; init; } = 1_000_000;

    // evaluation
    public int EvalEverySteps { get; init; } = 50;
    public int EvalMaxSequences { get; init; } = 32;

    // checkpoints and guards
    public int CheckpointEverySteps { get; init; } = 100;
    public int KeepLast { get; init; } = 2;
    public bool KeepBest { get; init; } = true;
    public int MaxConsecutiveSkips { get; init; } = 3;
    public double RollbackLrFactor { get; init; } = 0.5;

    /// <summary>Supervised fine-tuning or preference optimisation (`cptlab sft`, `cptlab dpo`): the config's `sft:` or `dpo:` section.</summary>
    public PostTraining.PostTrainOptions? Post { get; init; }

    public long Seed { get; init; }
    /// <summary>Intra-op threads; 0: the cores free when the run starts.</summary>
    public int Threads { get; init; }
    public bool MeasurePeakFlops { get; init; } = true;

    /// <summary>
    /// The dtype and threads the run actually computes with, chosen by the trainer when the run starts and kept in
    /// the run's config.json and every checkpoint, so a resumed run computes exactly as before on any machine.
    /// </summary>
    public RunNumerics? Resolved { get; init; }

    /// <summary>
    /// The dotted path of every key of the config file (model.dtype, optimizer.lr, sft.train, …), in table order: what a tool that
    /// translates a config into another trainer's arguments (the Megatron-LM launcher) must account for, key by key.
    /// </summary>
    public static IReadOnlyList<string> KeyPaths { get; } = [.. TrainConfigKeys.All.Select(k => k.Path)];

    public long TokensPerMicroBatch => (long)MicroBatchSize * SeqLen;
    public int AccumulationSteps => (int)(GlobalBatchTokens / TokensPerMicroBatch);
    public long TotalSteps => BudgetTokens / GlobalBatchTokens;
    public long WarmupSteps => (WarmupTokens + GlobalBatchTokens - 1) / GlobalBatchTokens;

    /// <summary>The architecture of the model this config trains: the base checkpoint's, the flavor's or the config file's.</summary>
    public LlamaConfig LoadModelConfig() =>
        InitFrom is { } dir ? LlamaConfig.Load(Path.Combine(dir, HfCheckpoint.ConfigFile)) :
        Flavor is { } f ? Flavors.Get(f) : LlamaConfig.Load(ModelConfigPath!);

    /// <summary>The dtype the final model is stored in (<see cref="SaveDtype"/>; "auto": the starting model's torch_dtype).</summary>
    public TorchSharp.torch.ScalarType FinalDtype() =>
        DtypeNames.Parse(ComputePrecision.IsAuto(SaveDtype) ? LoadModelConfig().TorchDtype : SaveDtype)
        ?? TorchSharp.torch.ScalarType.Float32; // a starting config with another torch_dtype (float64) stores float32

    public LrSchedule BuildSchedule() =>
        new LrSchedule(Schedule, Lr, TotalSteps, WarmupSteps, MinLrRatio, DecayFraction, Anneal, WarmupInitLr).Validate("train config");

    public TrainConfig Validate(string source = "train config")
    {
        int models = (Flavor is null ? 0 : 1) + (ModelConfigPath is null ? 0 : 1) + (InitFrom is null ? 0 : 1);
        if (models != 1) throw new ConfigException(source, "model", "give exactly one of model.flavor, model.config or model.init_from");
        if (!ComputePrecision.IsAuto(ComputeDtype) && DtypeNames.Parse(ComputeDtype) is not (TorchSharp.torch.ScalarType.Float32 or TorchSharp.torch.ScalarType.BFloat16))
            throw new ConfigException(source, "model.dtype", $"'{ComputeDtype}' must be auto, float32 or bfloat16");
        if (!ComputePrecision.IsAuto(SaveDtype) && DtypeNames.Parse(SaveDtype) is null)
            throw new ConfigException(source, "model.save_dtype", $"'{SaveDtype}' must be auto, float32, bfloat16 or float16");
        if (Threads < 0) throw new ConfigException(source, "threads", $"{Threads} must be ≥ 0 (0: the free cores)");
        if (Resolved is { } n)
        {
            if (DtypeNames.Parse(n.Dtype) is not (TorchSharp.torch.ScalarType.Float32 or TorchSharp.torch.ScalarType.BFloat16))
                throw new ConfigException(source, "resolved.dtype", $"'{n.Dtype}' must be float32 or bfloat16");
            if (n.Threads <= 0) throw new ConfigException(source, "resolved.threads", $"{n.Threads} must be positive");
        }
        if (SeqLen <= 1) throw new ConfigException(source, "data.seq_len", $"{SeqLen} must be > 1");
        if (MicroBatchSize <= 0) throw new ConfigException(source, "batch.micro_batch_size", $"{MicroBatchSize} must be positive");
        if (GlobalBatchTokens <= 0 || GlobalBatchTokens % TokensPerMicroBatch != 0)
            throw new ConfigException(source, "batch.global_batch_tokens", $"{GlobalBatchTokens} must be a positive multiple of micro_batch_size × seq_len = {TokensPerMicroBatch}");
        if (BudgetTokens < GlobalBatchTokens)
            throw new ConfigException(source, "budget_tokens", $"{BudgetTokens} is less than one global batch ({GlobalBatchTokens} tokens)");
        if (!(Beta1 is >= 0 and < 1)) throw new ConfigException(source, "optimizer.beta1", $"{Beta1} must be in [0, 1)");
        if (!(Beta2 is >= 0 and < 1)) throw new ConfigException(source, "optimizer.beta2", $"{Beta2} must be in [0, 1)");
        if (!(Eps > 0)) throw new ConfigException(source, "optimizer.eps", $"{Eps} must be positive");
        if (!(WeightDecay >= 0)) throw new ConfigException(source, "optimizer.weight_decay", $"{WeightDecay} must be ≥ 0");
        if (!(GradClip >= 0)) throw new ConfigException(source, "optimizer.grad_clip", $"{GradClip} must be ≥ 0 (0 = off)");
        if (EvalEverySteps <= 0) throw new ConfigException(source, "eval.every_steps", $"{EvalEverySteps} must be positive");
        if (CheckpointEverySteps <= 0) throw new ConfigException(source, "checkpoint.every_steps", $"{CheckpointEverySteps} must be positive");
        if (KeepLast <= 0) throw new ConfigException(source, "checkpoint.keep_last", $"{KeepLast} must be positive");
        if (MaxConsecutiveSkips <= 0) throw new ConfigException(source, "guards.max_consecutive_skips", $"{MaxConsecutiveSkips} must be positive");
        if (!(RollbackLrFactor > 0 && RollbackLrFactor <= 1)) throw new ConfigException(source, "guards.rollback_lr_factor", $"{RollbackLrFactor} must be in (0, 1]");
        if (Post is { } post) ValidatePost(post, source);
        BuildSchedule();
        return this;
    }

    void ValidatePost(PostTraining.PostTrainOptions p, string source)
    {
        var k = p.Section;
        if (p.Train.Count == 0) throw new ConfigException(source, $"{k}.train", "missing: the training files (JSONL, JSON or Parquet)");
        if (Data is not null) throw new ConfigException(source, "data.mixture", $"a {k} run reads {k}.train, not a pre-training mixture; remove data.mixture");
        if (!(p.ValidationFraction is >= 0 and < 1)) throw new ConfigException(source, $"{k}.validation_fraction", $"{p.ValidationFraction} must be in [0, 1)");
        if (p.CutoffLen < 0 || p.CutoffLen > SeqLen) throw new ConfigException(source, $"{k}.cutoff_len", $"{p.CutoffLen} must be in [1, data.seq_len = {SeqLen}] (0: data.seq_len)");
        if (!(p.Epochs >= 0)) throw new ConfigException(source, $"{k}.epochs", $"{p.Epochs} must be ≥ 0 (0: train for budget_tokens)");
        if (p.MaxValidation < 0) throw new ConfigException(source, $"{k}.max_validation", $"{p.MaxValidation} must be ≥ 0");
        if (p.Stage != PostTraining.PostTrainStage.Dpo) return;
        if (MicroBatchSize % 2 != 0) throw new ConfigException(source, "batch.micro_batch_size", $"{MicroBatchSize} must be even for DPO: each pair takes two rows (chosen, rejected)");
        if (!(p.Beta > 0)) throw new ConfigException(source, "dpo.beta", $"{p.Beta} must be positive");
        if (!(p.LabelSmoothing is >= 0 and < 0.5)) throw new ConfigException(source, "dpo.label_smoothing", $"{p.LabelSmoothing} must be in [0, 0.5)");
        if (!(p.RpoAlpha >= 0)) throw new ConfigException(source, "dpo.rpo_alpha", $"{p.RpoAlpha} must be ≥ 0");
    }

    /// <summary>Reads a YAML or JSON config file; relative paths in it are taken relative to the file.</summary>
    public static TrainConfig Load(string path)
    {
        if (!File.Exists(path)) throw new CptLabException($"{path}: config file not found");
        var node = ConfigFile.Read(path);
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return FromJson(node, path, baseDir);
    }

    /// <summary>Reads the config from its file's shape, every key through <see cref="TrainConfigKeys.All"/>; unknown keys are errors.</summary>
    public static TrainConfig FromJson(JsonObject root, string source, string baseDir)
    {
        var r = new ConfigReader(root, source);
        var sections = new Dictionary<string, ConfigReader>();
        var config = new TrainConfig();
        foreach (var key in TrainConfigKeys.All)
        {
            var dot = key.Path.LastIndexOf('.');
            var section = dot < 0 ? r : sections.TryGetValue(key.Path[..dot], out var s) ? s : sections[key.Path[..dot]] = r.Section(key.Path[..dot]);
            config = key.Read(section, key.Path[(dot + 1)..], baseDir, config);
        }
        r.RejectUnknown();
        return config.Validate(source);
    }

    /// <summary>The config as a JSON object in the file's own shape (what the run folder keeps a copy of), key by key in table order.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject();
        foreach (var key in TrainConfigKeys.All)
        {
            if (key.Write(this) is not { } value) continue;
            var parent = json;
            var parts = key.Path.Split('.');
            foreach (var part in parts[..^1]) parent = parent[part] as JsonObject ?? (JsonObject)(parent[part] = new JsonObject());
            parent[parts[^1]] = value;
        }
        return json;
    }

    /// <summary>The derived sizes, printed at start-up (nanoGPT prints tokens per iteration the same way).</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"tokens/step {GlobalBatchTokens:N0} = {MicroBatchSize} seqs × {SeqLen} tokens × {AccumulationSteps} accumulation; " +
        $"{TotalSteps:N0} steps for {BudgetTokens:N0} tokens; warmup {WarmupSteps} steps; peak lr {Lr:G3} ({Schedule.ToString().ToLowerInvariant()})");
}

/// <summary>What a run computes with: the dtype and thread count, each with the reason it was chosen.</summary>
public sealed record RunNumerics(string Dtype, int Threads, string DtypeReason, string ThreadsReason)
{
    public TorchSharp.torch.ScalarType ScalarType => DtypeNames.Parse(Dtype)!.Value;
}
