using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Laws;
using CptLab.Training;

namespace CptLab.Sweep;

/// <summary>
/// What a proxy sweep is: the base checkpoint every run continues from, the data and how each ALMR's blend is
/// made, which validation sources make up each language, the (ALMR × LR × seed) grid, the token budget of one
/// run, the rest of each run's `cptlab train` config, the objective, and how the runner and the fit behave.
/// Read from YAML or JSON (<see cref="Load"/>, <see cref="SweepSpecReader"/>); every relative path is taken relative
/// to the spec file. The resolved spec (absolute paths, languages filled in) is kept in the sweep's database as
/// <see cref="ToJson"/> (<see cref="SweepSpecWriter"/>), which reads back to the same spec.
/// <code>
/// base_checkpoint: models/base          # HF folder of the proxy model; every run starts from it
/// data:
///   dir: data/prepared                  # written by `cptlab data prepare`
///   seq_len: 256
///   seed: 1234                          # blend (document order) seed; run seed s uses seed + s
///   original: [en-web]                  # NAME or NAME:WEIGHT within the group
///   additional: [zh-web]                # the added language; its share of tokens is the ALMR
///   domain: []                          # optional, with domain_share
///   domain_share: 0
/// languages:                            # optional: language → validation sources (default: the sources' tags)
///   zh: [zh-web]
///   en: [en-web]
/// target_language: zh                   # default: the additional sources' tag
/// original_language: en                 # default: the original sources' tag
/// grid:
///   almr: [0.1, 0.3, 0.5]               # or {min: 0.1, max: 0.5, count: 3}
///   lr: {min: 1e-4, max: 1e-3, count: 4} # log grid (4 significant digits), or a list
///   seeds: [0]
/// tokens_per_run: 20M
/// train:                                # a `cptlab train` config without model, data, lr, budget, seed, threads
///   batch: {micro_batch_size: 8, global_batch_tokens: 65536}
///   schedule: {kind: cosine, warmup_tokens: 1M, min_lr_ratio: 0.1}
///   eval: {every_steps: 50, max_sequences: 64}
///   checkpoint: {every_steps: 50, keep_last: 2}
/// objective: {kind: weighted, target_weight: 1, forgetting_weight: 2}  # or target_loss, forgetting, {kind: constrained, max_forgetting: 0.05}
/// workers: 2                            # runs at a time; the cores are split between them
/// cores: 0                              # 0: the cores free when the sweep starts (never more workers than cores)
/// max_attempts: 3                       # a run killed by a signal is resumed this many times in all
/// keep_models: false                    # keep each run's checkpoints and final model once recorded
/// adaptive: {enabled: false, min_runs: 18, stop_probability: 0.05, max_runs: 0,
///            law_interval_stop: false, almr_tolerance: 0.05, log10_lr_tolerance: 0.1, min_residual_dof: 5,
///            gp_kernel: squared_exponential}
/// fit: {bootstrap: 200, seed: 0, starts: 12, max_forgetting: 0.05, extrapolate_to_tokens: 0, gp_kernel: matern52}
/// </code>
/// </summary>
public sealed record SweepSpec
{
    public required string Source { get; init; }
    public required string BaseCheckpoint { get; init; }
    /// <summary>Parameter count of the proxy, for the LR transfer rule (default: counted from the base checkpoint's config).</summary>
    public double? ProxyParameters { get; init; }

    public required string DataDir { get; init; }
    public required int SeqLen { get; init; }
    public ulong DataSeed { get; init; } = 1234;
    public required IReadOnlyList<MixComponent> Components { get; init; }
    public double DomainShare { get; init; }

    /// <summary>Language name → the validation sources whose token-weighted mean loss is that language's loss.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Languages { get; init; }
    public required string TargetLanguage { get; init; }
    public required string OriginalLanguage { get; init; }

    public required IReadOnlyList<double> Almrs { get; init; }
    public required IReadOnlyList<double> Lrs { get; init; }
    public required IReadOnlyList<long> Seeds { get; init; }
    public required long TokensPerRun { get; init; }
    /// <summary>The `train:` section: each run's config before the sweep fills in model, data, lr, budget, seed and threads.</summary>
    public required JsonObject Train { get; init; }

    public Objective Objective { get; init; } = Objective.TargetLoss();
    public int Workers { get; init; } = 1;
    /// <summary>Cores the runner splits between its workers; 0 = all.</summary>
    public int Cores { get; init; }
    public int MaxAttempts { get; init; } = 3;
    /// <summary>Keep each run's checkpoints and final model after its result is recorded (default: delete them).</summary>
    public bool KeepModels { get; init; }

    public bool Adaptive { get; init; }
    public double AlmrTolerance { get; init; } = 0.05;
    public double Log10LrTolerance { get; init; } = 0.1;
    public int? AdaptiveMaxRuns { get; init; }
    public int MinResidualDof { get; init; } = 5;
    /// <summary>The surrogate's stop: not before this many runs, and when P(an unrun cell beats the best run) is below StopProbability.</summary>
    public int AdaptiveMinRuns { get; init; } = 18;
    public double AdaptiveStopProbability { get; init; } = 0.05;
    /// <summary>Also stop when the law's optimum interval is within the tolerances (the rule before the surrogate).</summary>
    public bool LawIntervalStop { get; init; }

    public int FitBootstrap { get; init; } = 200;
    public int FitSeed { get; init; }
    public int FitStarts { get; init; } = 12;
    /// <summary>The Gaussian process's kernel for the widened intervals and the adaptive design (fit.gp_kernel).</summary>
    public GpKernel GaussianProcessKernel { get; init; } = GpKernel.Matern52;
    /// <summary>The adaptive design's surrogate kernel (adaptive.gp_kernel).</summary>
    public GpKernel SurrogateKernel { get; init; } = GpKernel.SquaredExponential;
    public double? MaxForgetting { get; init; }
    /// <summary>fit.laws: the registry's sweep families to compete (null: all of them).</summary>
    public IReadOnlyList<LawKind>? FitLaws { get; init; }
    public long? ExtrapolateToTokens { get; init; }

    public int GridSize => Almrs.Count * Lrs.Count * Seeds.Count;

    public static SweepSpec Load(string path)
    {
        if (!File.Exists(path)) throw new CptLabException($"{path}: sweep spec not found");
        var full = Path.GetFullPath(path);
        return FromJson(ConfigFile.Read(full), full, Path.GetDirectoryName(full)!);
    }

    /// <param name="checkFiles">Check the base checkpoint, the prepared data and each run's config (off when a
    /// stored spec is read back for fitting or reporting, possibly where the data is not).</param>
    public static SweepSpec FromJson(JsonObject root, string source, string baseDir, bool checkFiles = true) =>
        SweepSpecReader.Read(root, source, baseDir, checkFiles);

    /// <summary>The resolved spec, absolute paths and languages filled in; <see cref="FromJson"/> reads it back.</summary>
    public JsonObject ToJson() => SweepSpecWriter.Write(this);

    /// <summary>What decides a run's result, hashed: a sweep resumes only under the same fingerprint (<see cref="SweepFingerprint"/>).</summary>
    public string Fingerprint() => SweepFingerprint.Of(this);

    /// <summary>The `cptlab train` config of one run (<see cref="SweepTrainTemplate.RunConfig"/>).</summary>
    /// <param name="dtype">The sweep's compute dtype (chosen once for all runs); null: the spec's own setting.</param>
    public TrainConfig RunConfig(double almr, double lr, long seed, string blendPath, int threads, string? dtype = null) =>
        SweepTrainTemplate.RunConfig(this, lr, seed, blendPath, threads, dtype);

    /// <summary>Blend seed of a run seed: replicate seeds see the data in different orders.</summary>
    public ulong BlendSeed(long runSeed) => DataSeed + (ulong)runSeed;

    public MixSpec Mix(double almr, long runSeed) => new()
    {
        DataDir = DataDir, Components = Components, Almr = almr, DomainShare = DomainShare,
        TokenBudget = TokensPerRun, SeqLen = SeqLen, Seed = BlendSeed(runSeed),
    };

    public FitOptions FitOptions(int? bootstrap = null) => new()
    {
        Objective = Objective, Bootstrap = bootstrap ?? FitBootstrap, Seed = FitSeed, Starts = FitStarts,
        MaxForgetting = MaxForgetting, ExtrapolateToTokens = ExtrapolateToTokens, Laws = FitLaws, GaussianProcessKernel = GaussianProcessKernel,
    };

    public AdaptiveOptions AdaptiveOptions() => new()
    {
        Fit = FitOptions(bootstrap: Math.Min(FitBootstrap, 60)), AlmrTolerance = AlmrTolerance, Log10LrTolerance = Log10LrTolerance,
        MaxRuns = AdaptiveMaxRuns, MinResidualDof = MinResidualDof,
        MinRuns = AdaptiveMinRuns, StopProbability = AdaptiveStopProbability, StopOnLawInterval = LawIntervalStop,
        SurrogateKernel = SurrogateKernel,
    };
}
