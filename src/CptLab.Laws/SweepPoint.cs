namespace CptLab.Laws;

/// <summary>
/// One finished (or failed) proxy run of the ALMR × LR sweep, as the sweep runner records it.
/// <see cref="FinalLoss"/> and each <see cref="CurvePoint.Loss"/> map a language name ("zh", "en", ...) to its
/// validation loss (nats per token). A run that crashed or diverged carries an <see cref="Error"/> and is left
/// out of every fit; a run without one must have finite, positive losses.
/// </summary>
public sealed record SweepPoint(
    double Almr,
    double Lr,
    int Seed,
    IReadOnlyDictionary<string, double> FinalLoss,
    IReadOnlyList<CurvePoint> Curve,
    string? Error = null)
{
    public bool Failed => Error is not null;

    public override string ToString() => $"run (ALMR={Almr:0.###}, lr={Lr:0.###e0}, seed {Seed})";
}

/// <summary>An intermediate validation point of a run: losses per language after <see cref="Tokens"/> training tokens.</summary>
public sealed record CurvePoint(long Tokens, IReadOnlyDictionary<string, double> Loss);

/// <summary>
/// Everything the laws need from a sweep: the runs, the base model's validation loss per language (before any
/// CPT), and which language is the one being added (target) and which is the one to keep (original).
/// </summary>
public sealed record SweepResults(
    IReadOnlyList<SweepPoint> Points,
    IReadOnlyDictionary<string, double> BaseLoss,
    string TargetLanguage,
    string OriginalLanguage)
{
    public IEnumerable<SweepPoint> Succeeded => Points.Where(p => !p.Failed);
}
