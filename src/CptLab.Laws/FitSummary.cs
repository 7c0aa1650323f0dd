namespace CptLab.Laws;

/// <summary>How a sweep is fitted. Defaults suit a real sweep; tests shrink <see cref="Bootstrap"/> for speed.</summary>
public sealed record FitOptions
{
    public Objective Objective { get; init; } = Objective.TargetLoss();
    /// <summary>Law families to consider; null means all. With several, the one with the lowest leave-one-out error wins.</summary>
    public IReadOnlyList<LawKind>? Laws { get; init; }
    /// <summary>Starts per nonlinear fit (grid starts first, then seeded random ones).</summary>
    public int Starts { get; init; } = 12;
    /// <summary>Bootstrap replicates for the intervals; 0 skips them.</summary>
    public int Bootstrap { get; init; } = 200;
    public double Confidence { get; init; } = 0.95;
    public int Seed { get; init; }
    /// <summary>Compute the leave-one-out error even when only one law is eligible (it is always computed to choose between several).</summary>
    public bool CrossValidate { get; init; } = true;
    /// <summary>T for the critical ALMR; defaults to a constrained objective's own threshold.</summary>
    public double? MaxForgetting { get; init; }
    /// <summary>When set, each run's final loss is replaced by its token law L(D) = E + B·D^-β evaluated at this many tokens.</summary>
    public long? ExtrapolateToTokens { get; init; }
    /// <summary>Number of ALMR values at which the optimal-LR curve η*(r) is reported.</summary>
    public int CurvePoints { get; init; } = 21;
    /// <summary>
    /// Also fit the Gaussian-process surface (no assumed form) and widen the optimum's intervals to include its
    /// posterior interval, so that they hold when the law is wrong (docs/laws.md). Only with a bootstrap.
    /// </summary>
    public bool Nonparametric { get; init; } = true;
    /// <summary>Posterior draws of the Gaussian-process surfaces for the nonparametric interval.</summary>
    public int NonparametricDraws { get; init; } = 400;
    /// <summary>The kernel of the Gaussian process behind the nonparametric interval (the adaptive design's surrogate has its own, <see cref="AdaptiveOptions.SurrogateKernel"/>).</summary>
    public GpKernel GaussianProcessKernel { get; init; } = GpKernel.Matern52;
}

public sealed record Interval(double Lo, double Hi)
{
    [System.Text.Json.Serialization.JsonIgnore] public double Width => Hi - Lo;
    public bool Contains(double v) => v >= Lo && v <= Hi;
}

public sealed record LawCandidate(string Law, string Formula, int ParametersPerLanguage, double? CvError, string? Skipped);

public sealed record LanguageParameters(IReadOnlyDictionary<string, double> Values, double HuberDelta, double RmsResidual, IReadOnlyDictionary<string, double>? Constants = null);

/// <summary>
/// The optimum of the objective over the swept box (the chosen law's), with its intervals (null without a bootstrap).
/// <see cref="AlmrInterval"/>, <see cref="LrInterval"/> and <see cref="Log10LrInterval"/> are the reported ones: the
/// law's bootstrap interval widened to include the nonparametric one where they disagree (their union's hull);
/// <see cref="LawAlmrInterval"/> and <see cref="LawLog10LrInterval"/> are the law's alone, <see cref="Nonparametric"/>
/// the Gaussian-process surface's.
/// </summary>
public sealed record OptimumSummary(
    double Almr, double Lr, double Log10Lr, double Objective,
    double PredictedTargetLoss, double PredictedOriginalLoss,
    Interval? AlmrInterval, Interval? LrInterval, Interval? Log10LrInterval,
    Interval? LawAlmrInterval = null, Interval? LawLog10LrInterval = null, NonparametricSummary? Nonparametric = null);

/// <summary>
/// The Gaussian-process check (<see cref="FitOptions.Nonparametric"/>): the optimum of its posterior mean surface,
/// the percentile intervals of the optimum over its posterior draws, and each language's hyper-parameters
/// (signal and noise standard deviations of the log-loss, length-scales as fractions of the swept ranges, the kernel; null in a fit.json written before the kernel was recorded, when it was squared_exponential).
/// </summary>
public sealed record NonparametricSummary(
    double Almr, double Log10Lr, Interval? AlmrInterval, Interval? Log10LrInterval, int Draws, int InfeasibleDraws,
    IReadOnlyDictionary<string, GaussianProcessParameters> Languages);

public sealed record GaussianProcessParameters(double SignalSd, double NoiseSd, double LengthAlmr, double LengthLog10Lr, string? Kernel = null);

/// <summary>How the reported intervals were made, and which models contributed to them.</summary>
public sealed record UncertaintySummary(string Method, IReadOnlyList<string> Contributors, bool AlmrWidened, bool LrWidened);

/// <summary>η*(r): the objective's best LR at one ALMR, with its interval. Null LR: no feasible LR at this ALMR.</summary>
public sealed record OptimalLrPoint(double Almr, double? Lr, double? LrLo, double? LrHi);

/// <summary>
/// The ALMR at which original-language forgetting, even at its most favourable swept LR, reaches T. Below it
/// the original language stays within T of the base model. Status: "crossed" (found inside the sweep),
/// "not_reached" (forgetting stays within T everywhere: Almr is the largest swept ALMR), or
/// "exceeded_at_min" (already above T at the smallest ALMR: Almr is null).
/// </summary>
public sealed record CriticalAlmrSummary(double MaxForgetting, double? Almr, Interval? Interval, string Status);

public sealed record BootstrapSummary(int Replicates, int Failed, double Confidence, string Method);

/// <summary>Everything fit.json holds: the chosen law and its parameters, the optimum and its uncertainty.</summary>
/// <summary>What the sweep can answer: the ALMR × LR question (a grid), the ALMR question at one LR, or the LR question at one ALMR.</summary>
public enum SweepDesign { Grid, SingleLr, SingleAlmr }

public sealed record FitSummary(
    string Law,
    string Formula,
    Objective Objective,
    string ObjectiveDescription,
    string TargetLanguage,
    string OriginalLanguage,
    IReadOnlyDictionary<string, double> BaseLoss,
    int Runs,
    int FailedRuns,
    double? CvError,
    IReadOnlyList<LawCandidate> Candidates,
    IReadOnlyDictionary<string, LanguageParameters> Parameters,
    OptimumSummary Optimum,
    IReadOnlyList<OptimalLrPoint> OptimalLrCurve,
    CriticalAlmrSummary? CriticalAlmr,
    BootstrapSummary? Bootstrap,
    Interval AlmrRange,
    Interval LrRange,
    long? ExtrapolatedToTokens,
    int Seed,
    UncertaintySummary? Uncertainty = null,
    string Design = "grid",
    string? DesignNote = null);
