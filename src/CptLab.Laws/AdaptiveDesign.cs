using CptLab.Core;

namespace CptLab.Laws;

/// <summary>When the adaptive design stops. Tolerances are half-widths of the optimum's bootstrap interval.</summary>
public sealed record AdaptiveOptions
{
    /// <summary>The fit after each batch. The stopping rule reads the law's own interval: the design turns the Gaussian-process check off (it widens the interval, and the stopping rule was tuned without it).</summary>
    public FitOptions Fit { get; init; } = new() { Bootstrap = 60 };
    public double AlmrTolerance { get; init; } = 0.05;
    public double Log10LrTolerance { get; init; } = 0.1;
    /// <summary>Stop after this many runs even if the interval is still wide (default: the whole grid).</summary>
    public int? MaxRuns { get; init; }
    /// <summary>
    /// Trust the interval only when the law leaves at least this many residual degrees of freedom (runs minus
    /// parameters per language): with fewer, the bootstrap resamples a handful of shrunken residuals and its
    /// interval is too narrow to stop on.
    /// </summary>
    public int MinResidualDof { get; init; } = 5;
}

public sealed record GridCell(double Almr, double Lr)
{
    public override string ToString() => $"(ALMR={Almr:0.###}, lr={Lr:0.###e0})";
}

/// <summary>One step's answer: stop, or run <see cref="Next"/> (at most the batch size asked for).</summary>
public sealed record AdaptiveDecision(bool Done, string Reason, IReadOnlyList<GridCell> Next, LawFit? Fit, int RunsUsed, int GridSize);

public sealed record AdaptiveResult(LawFit Fit, IReadOnlyList<SweepPoint> Runs, int GridSize, string StopReason)
{
    public int RunsUsed => Runs.Count;
}

/// <summary>
/// Sequential design over an ALMR × LR grid. Starts with a coarse 3×3 (both ends and the middle of each axis);
/// after each batch it refits the law and proposes the unrun cells with the largest expected improvement over
/// the best run so far, computed over the bootstrap replicates of the law (so it goes where the law expects a
/// better objective, or where it is uncertain enough that it might be); when no cell is expected to improve, the
/// cell where the replicates disagree most. It stops when the optimum's interval is within tolerance, or the
/// grid (or MaxRuns) is used up. The sweep runner calls <see cref="InitialDesign"/> and then
/// <see cref="Decide"/> with everything finished so far; <see cref="Run"/> is that loop for a synchronous runner.
/// </summary>
public sealed class AdaptiveDesign
{
    readonly double[] _almrs;
    readonly double[] _lrs;
    readonly AdaptiveOptions _options;

    public AdaptiveDesign(IReadOnlyList<double> almrGrid, IReadOnlyList<double> lrGrid, AdaptiveOptions? options = null)
    {
        _almrs = almrGrid.Distinct().OrderBy(v => v).ToArray();
        _lrs = lrGrid.Distinct().OrderBy(v => v).ToArray();
        _options = options ?? new AdaptiveOptions();
        if (_almrs.Length < 3 || _lrs.Length < 3)
            throw new CptLabException($"adaptive design needs a grid of at least 3 ALMR values × 3 LRs, got {_almrs.Length} × {_lrs.Length}");
    }

    public int GridSize => _almrs.Length * _lrs.Length;

    public IReadOnlyList<GridCell> Grid => (from r in _almrs from lr in _lrs select new GridCell(r, lr)).ToArray();

    public IReadOnlyList<GridCell> InitialDesign()
    {
        int[] Three(int n) => [0, (n - 1) / 2, n - 1];
        return (from i in Three(_almrs.Length) from j in Three(_lrs.Length) select new GridCell(_almrs[i], _lrs[j])).ToArray();
    }

    public AdaptiveDecision Decide(SweepResults soFar, int batch = 1)
    {
        var done = soFar.Points.Select(p => Key(p.Almr, p.Lr)).ToHashSet();
        var remaining = Grid.Where(c => !done.Contains(Key(c.Almr, c.Lr))).ToList();
        var used = soFar.Points.Count;
        var missingStart = InitialDesign().Where(c => !done.Contains(Key(c.Almr, c.Lr))).ToList();
        if (missingStart.Count > 0) return new AdaptiveDecision(false, "initial 3×3 design", missingStart, null, used, GridSize);
        if (remaining.Count == 0) return Stop("the whole grid has been run", null, used);
        if (_options.MaxRuns is { } max && used >= max) return Stop($"reached the run budget ({max})", null, used);

        LawFit fit;
        try { fit = LawFitter.Fit(soFar, _options.Fit with { Nonparametric = false }); }
        catch (CptLabException e)
        {
            // Not enough for a law yet (or every fit infeasible): fill the grid where runs are sparsest.
            return new AdaptiveDecision(false, $"no law yet ({e.Message}); filling the grid", SpaceFilling(remaining, soFar, batch), null, used, GridSize);
        }

        var opt = fit.Summary.Optimum;
        var dof = fit.Summary.Runs - fit.Summary.Candidates.Single(c => c.Law == fit.Summary.Law).ParametersPerLanguage;
        if (dof >= _options.MinResidualDof && opt.AlmrInterval is { } ri && opt.Log10LrInterval is { } xi
            && ri.Width / 2 <= _options.AlmrTolerance && xi.Width / 2 <= _options.Log10LrTolerance)
            return Stop($"optimum interval within tolerance: ALMR ±{ri.Width / 2:0.###}, log10 lr ±{xi.Width / 2:0.###} ({fit.Summary.Law}, {dof} residual degrees of freedom)", fit, used);

        var next = Acquire(fit, soFar, remaining, batch);
        return new AdaptiveDecision(false, "expected improvement", next, fit, used, GridSize);
    }

    /// <summary>The whole loop for a runner that runs one cell at a time and returns its result.</summary>
    public AdaptiveResult Run(Func<GridCell, SweepPoint> runOne, IReadOnlyDictionary<string, double> baseLoss, string target, string original, int batch = 1)
    {
        var runs = new List<SweepPoint>();
        while (true)
        {
            var sweep = new SweepResults(runs, baseLoss, target, original);
            var decision = Decide(sweep, batch);
            if (decision.Done)
            {
                var fit = decision.Fit ?? LawFitter.Fit(sweep, _options.Fit with { Nonparametric = false });
                return new AdaptiveResult(fit, runs, GridSize, decision.Reason);
            }
            runs.AddRange(decision.Next.Select(runOne));
        }
    }

    AdaptiveDecision Stop(string reason, LawFit? fit, int used) => new(true, reason, [], fit, used, GridSize);

    static (double, double) Key(double r, double lr) => (Math.Round(r, 9), Math.Round(Math.Log10(lr), 9));

    IReadOnlyList<GridCell> Acquire(LawFit fit, SweepResults soFar, List<GridCell> remaining, int batch)
    {
        var surface = fit.Surface;
        var observed = soFar.Succeeded.Select(p => surface.ObjectiveAt(p.Almr, p.Lr)).Where(double.IsFinite).ToList();
        var best = observed.Count > 0 ? observed.Min() : double.PositiveInfinity;
        var reps = fit.Replicates;
        var scored = remaining.Select(c =>
        {
            var values = reps.Select(s => s.ObjectiveAt(c.Almr, c.Lr)).ToArray();
            var ei = values.Length == 0 ? 0 : values.Sum(v => double.IsFinite(v) ? Math.Max(0, best - v) : 0) / values.Length;
            var finite = values.Where(double.IsFinite).ToArray();
            var variance = finite.Length > 1 ? finite.Sum(v => (v - finite.Average()) * (v - finite.Average())) / (finite.Length - 1) : 0;
            return (Cell: c, Ei: ei, Var: variance);
        }).ToList();
        return scored.OrderByDescending(s => s.Ei).ThenByDescending(s => s.Var).Take(batch).Select(s => s.Cell).ToArray();
    }

    /// <summary>The unrun cells farthest (in grid-index distance) from every run so far.</summary>
    IReadOnlyList<GridCell> SpaceFilling(List<GridCell> remaining, SweepResults soFar, int batch)
    {
        var picked = new List<GridCell>();
        var taken = soFar.Points.Select(p => Index(p.Almr, p.Lr)).ToList();
        for (var k = 0; k < batch && picked.Count < remaining.Count; k++)
        {
            var next = remaining.Where(c => !picked.Contains(c))
                .MaxBy(c => taken.Count == 0 ? 0 : taken.Min(t => Dist(Index(c.Almr, c.Lr), t)))!;
            picked.Add(next);
            taken.Add(Index(next.Almr, next.Lr));
        }
        return picked;
    }

    (double I, double J) Index(double r, double lr) =>
        (Array.FindIndex(_almrs, v => Math.Abs(v - r) < 1e-9), Array.FindIndex(_lrs, v => Math.Abs(Math.Log10(v) - Math.Log10(lr)) < 1e-9));

    static double Dist((double I, double J) a, (double I, double J) b) => Math.Sqrt((a.I - b.I) * (a.I - b.I) + (a.J - b.J) * (a.J - b.J));
}
