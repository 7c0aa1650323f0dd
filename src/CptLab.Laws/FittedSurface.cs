namespace CptLab.Laws;

/// <summary>
/// A fitted law for the target and original languages over the swept box, with the objective on top: what the
/// plots draw, what the optimum and the adaptive design search.
/// </summary>
public sealed class FittedSurface
{
    internal FittedSurface(LawKind law, LanguageLaw target, LanguageLaw original, Objective objective,
        double originalBase, string targetLanguage, string originalLanguage, Interval almrRange, Interval log10LrRange)
    {
        Law = law;
        Target = target;
        Original = original;
        Objective = objective;
        OriginalBase = originalBase;
        TargetLanguage = targetLanguage;
        OriginalLanguage = originalLanguage;
        AlmrRange = almrRange;
        Log10LrRange = log10LrRange;
    }

    public LawKind Law { get; }
    public Objective Objective { get; }
    public double OriginalBase { get; }
    public string TargetLanguage { get; }
    public string OriginalLanguage { get; }
    public Interval AlmrRange { get; }
    public Interval Log10LrRange { get; }
    internal LanguageLaw Target { get; }
    internal LanguageLaw Original { get; }

    public double PredictLoss(string language, double almr, double lr) => PredictLossLog10(language, almr, Math.Log10(lr));

    public double PredictLossLog10(string language, double almr, double log10Lr)
    {
        if (language == TargetLanguage) return Math.Exp(Target.PredictLog(almr, log10Lr));
        if (language == OriginalLanguage) return Math.Exp(Original.PredictLog(almr, log10Lr));
        throw new ArgumentException($"the law was fitted for '{TargetLanguage}' and '{OriginalLanguage}', not '{language}'", nameof(language));
    }

    public double ObjectiveAt(double almr, double lr) => ObjectiveLog10(almr, Math.Log10(lr));

    public double ObjectiveLog10(double almr, double log10Lr) =>
        Objective.Evaluate(Math.Exp(Target.PredictLog(almr, log10Lr)), Math.Exp(Original.PredictLog(almr, log10Lr)), OriginalBase);

    /// <summary>The objective's minimum over the swept box, or null when no point is feasible.</summary>
    public (double Almr, double Log10Lr, double Value)? Optimum() =>
        SurfaceSearch.Minimize2D(ObjectiveLog10, AlmrRange.Lo, AlmrRange.Hi, Log10LrRange.Lo, Log10LrRange.Hi);

    /// <summary>η*(r) as log10 of the LR, or null when no swept LR is feasible at this ALMR.</summary>
    public double? OptimalLog10Lr(double almr) =>
        SurfaceSearch.Minimize1D(x => ObjectiveLog10(almr, x), Log10LrRange.Lo, Log10LrRange.Hi)?.X;

    /// <summary>Original-language forgetting at its most favourable LR in the swept range.</summary>
    public double MinForgetting(double almr) =>
        SurfaceSearch.Minimize1D(x => Math.Exp(Original.PredictLog(almr, x)) - OriginalBase, Log10LrRange.Lo, Log10LrRange.Hi)?.Value ?? double.NaN;

    /// <summary>See <see cref="CriticalAlmrSummary"/>.</summary>
    public (double? Almr, string Status) CriticalAlmr(double maxForgetting)
    {
        const int steps = 50;
        var (lo, hi) = (AlmrRange.Lo, AlmrRange.Hi);
        if (MinForgetting(lo) > maxForgetting) return (null, "exceeded_at_min");
        var prev = lo;
        for (var i = 1; i <= steps; i++)
        {
            var r = lo + (hi - lo) * i / steps;
            if (MinForgetting(r) > maxForgetting)
            {
                var (a, b) = (prev, r);
                for (var k = 0; k < 30; k++)
                {
                    var m = 0.5 * (a + b);
                    if (MinForgetting(m) > maxForgetting) b = m; else a = m;
                }
                return (0.5 * (a + b), "crossed");
            }
            prev = r;
        }
        return (hi, "not_reached");
    }
}
