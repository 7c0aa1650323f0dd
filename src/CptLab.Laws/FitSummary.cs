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
}

public sealed record Interval(double Lo, double Hi)
{
    [System.Text.Json.Serialization.JsonIgnore] public double Width => Hi - Lo;
    public bool Contains(double v) => v >= Lo && v <= Hi;
}

public sealed record LawCandidate(string Law, string Formula, int ParametersPerLanguage, double? CvError, string? Skipped);

public sealed record LanguageParameters(IReadOnlyDictionary<string, double> Values, double HuberDelta, double RmsResidual, IReadOnlyDictionary<string, double>? Constants = null);

/// <summary>The optimum of the objective over the swept box, with bootstrap percentile intervals (null without a bootstrap).</summary>
public sealed record OptimumSummary(
    double Almr, double Lr, double Log10Lr, double Objective,
    double PredictedTargetLoss, double PredictedOriginalLoss,
    Interval? AlmrInterval, Interval? LrInterval, Interval? Log10LrInterval);

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
    int Seed);
