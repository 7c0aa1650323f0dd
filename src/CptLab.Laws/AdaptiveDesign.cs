using CptLab.Core;

namespace CptLab.Laws;

/// <summary>
/// How the adaptive design chooses and when it stops. The default rule needs no law: a Gaussian-process surrogate
/// of each language's log-loss (<see cref="GaussianProcessSurface"/>) proposes cells by expected improvement and
/// says when no unrun cell is still likely to beat the best run.
/// </summary>
public sealed record AdaptiveOptions
{
    /// <summary>The objective, the seed, and the fit that <see cref="AdaptiveDesign.Run"/> reports at the end (and the law-interval stop, if on).</summary>
    public FitOptions Fit { get; init; } = new() { Bootstrap = 60 };
    /// <summary>Half-width of the law's ALMR interval for the law-interval stop (<see cref="StopOnLawInterval"/>).</summary>
    public double AlmrTolerance { get; init; } = 0.05;
    /// <summary>Half-width of the law's log10 LR interval for the law-interval stop.</summary>
    public double Log10LrTolerance { get; init; } = 0.1;
    /// <summary>Stop after this many runs even if the stopping rule has not fired (default: the whole grid).</summary>
    public int? MaxRuns { get; init; }
    /// <summary>For the law-interval stop: trust the law's interval only with at least this many residual degrees of freedom.</summary>
    public int MinResidualDof { get; init; } = 5;
    /// <summary>
    /// Also stop when the law's bootstrap interval of the optimum is within the tolerances (the rule before the
    /// surrogate; it refits the law after every batch). Off by default: out of family the law's interval is
    /// centred on a biased optimum (docs/sweeps.md), so it stopped late or in the wrong place.
    /// </summary>
    public bool StopOnLawInterval { get; init; }
    /// <summary>Joint posterior draws of the two surrogates over the grid per decision.</summary>
    public int Draws { get; init; } = 256;
    /// <summary>An unrun cell counts as better only if it beats the best run by this fraction of the objective (0.001: 0.1%).</summary>
    public double StopMargin { get; init; } = 0.001;
    /// <summary>Stop when the posterior probability that some unrun cell is better (by <see cref="StopMargin"/>) falls below this.</summary>
    public double StopProbability { get; init; } = 0.05;
    /// <summary>
    /// The surrogate's stop is not trusted before this many runs (the 3×3 start is 9). Measured on 54-cell grids out of
    /// family (docs/sweeps.md): the probability falls under 0.05 by about 12 runs, but the run cell the surrogate
    /// rates best is still wrong (more than 1% above the best cell) in 5 of 30 seeds at 15 runs, 2 of 30 at 18.
    /// </summary>
    public int MinRuns { get; init; } = 18;
    /// <summary>
    /// The surrogate's kernel. Squared-exponential, unlike the fit's intervals (Matérn 5/2): the design picks the run
    /// cell with the best posterior mean, and the smoother process averages the noise better. Measured on the
    /// V-shaped surface, 30 seeds (docs/sweeps.md): the chosen cell was within 1% of the best in 28/30 with the squared
    /// exponential and 25/30 with Matérn 5/2; the runs to land near the best cell were the same.
    /// </summary>
    public GpKernel SurrogateKernel { get; init; } = GpKernel.SquaredExponential;
}

public sealed record GridCell(double Almr, double Lr)
{
    public override string ToString() => $"(ALMR={Almr:0.###}, lr={Lr:0.###e0})";
}

/// <summary>
/// One step's answer: stop, or run <see cref="Next"/> (at most the batch size asked for). <see cref="Best"/> is the
/// run cell the surrogate rates best, and <see cref="ProbabilityBetter"/> the posterior probability that an unrun
/// cell beats it by the stop margin (both null before the surrogate can be fitted).
/// </summary>
public sealed record AdaptiveDecision(bool Done, string Reason, IReadOnlyList<GridCell> Next, LawFit? Fit, int RunsUsed, int GridSize)
{
    public GridCell? Best { get; init; }
    public double? ProbabilityBetter { get; init; }
}

/// <summary>The loop's outcome: the law fitted to every run, the runs in order, and the surrogate's best run cell at the stop.</summary>
public sealed record AdaptiveResult(LawFit Fit, IReadOnlyList<SweepPoint> Runs, int GridSize, string StopReason)
{
    public int RunsUsed => Runs.Count;
    public GridCell? Best { get; init; }
}

/// <summary>
/// Sequential design over an ALMR × LR grid. Starts with a coarse 3×3 (both ends and the middle of each axis).
/// Then, after each batch, it fits a Gaussian process to each language's log-loss over (ALMR, log10 LR) (the
/// surface of <see cref="GaussianProcessSurface"/>: no assumed form), draws both surfaces jointly over the whole
/// grid, and turns each draw into an objective surface. The incumbent is the run cell with the lowest posterior
/// mean objective. The next cell is the unrun one with the largest expected improvement over the incumbent,
/// averaged over the draws (each draw against its own incumbent value, so the correlation between cells counts);
/// a batch adds cells greedily, each against the best of the incumbent and the cells already picked in that draw
/// (Monte Carlo q-EI). It stops when, after at least <see cref="AdaptiveOptions.MinRuns"/> runs, fewer than
/// <see cref="AdaptiveOptions.StopProbability"/> of the draws have an unrun cell better than the incumbent by
/// <see cref="AdaptiveOptions.StopMargin"/>, or the grid (or MaxRuns) is used up. Deterministic for a given
/// <see cref="FitOptions.Seed"/> and history. The sweep runner calls <see cref="InitialDesign"/> and then
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
        if (GridProblem(_almrs.Length, _lrs.Length) is { } problem) throw new CptLabException(problem);
        if (!(_options.StopProbability >= 0 && _options.StopProbability < 1))
            throw new CptLabException($"adaptive stop probability {_options.StopProbability} must be in [0, 1)");
        if (_options.Draws < 16) throw new CptLabException($"adaptive design needs at least 16 posterior draws, got {_options.Draws}");
    }

    /// <summary>
    /// Why a grid of <paramref name="almrs"/> × <paramref name="lrs"/> distinct values cannot be run adaptively, or null: a
    /// grid of at least 3 × 3, or one axis (the designs LawFitter answers one question on) with room to choose along it.
    /// </summary>
    public static string? GridProblem(int almrs, int lrs) =>
        (lrs == 1 && almrs >= 5) || (almrs == 1 && lrs >= 4) || (almrs >= 3 && lrs >= 3) ? null
        : $"adaptive design needs a grid of at least 3 ALMR values × 3 LRs, or at least 5 ALMR values at one LR, or at least 4 LRs at one ALMR; the grid has {almrs} × {lrs}";

    public int GridSize => _almrs.Length * _lrs.Length;

    public IReadOnlyList<GridCell> Grid => (from r in _almrs from lr in _lrs select new GridCell(r, lr)).ToArray();

    public IReadOnlyList<GridCell> InitialDesign()
    {
        int[] Three(int n) => [0, (n - 1) / 2, n - 1];
        // One axis: as many values as its law needs to be fitted with one to spare (the mixing law 4 ALMRs, the
        // quadratic in log10 lr 3 LRs), spread evenly, ends included.
        int[] Spread(int n, int k) => [.. Enumerable.Range(0, k).Select(i => (int)Math.Round((n - 1) * (double)i / (k - 1))).Distinct()];
        if (_lrs.Length == 1) return [.. Spread(_almrs.Length, 4).Select(i => new GridCell(_almrs[i], _lrs[0]))];
        if (_almrs.Length == 1) return [.. Spread(_lrs.Length, 3).Select(j => new GridCell(_almrs[0], _lrs[j]))];
        return (from i in Three(_almrs.Length) from j in Three(_lrs.Length) select new GridCell(_almrs[i], _lrs[j])).ToArray();
    }

    /// <summary>Runs before the stop may act: the option's, but at most half of a one-axis grid (a few cells at most).</summary>
    int MinRuns => _lrs.Length == 1 || _almrs.Length == 1 ? Math.Min(_options.MinRuns, Math.Max(InitialDesign().Count + 1, GridSize / 2)) : _options.MinRuns;

    public AdaptiveDecision Decide(SweepResults soFar, int batch = 1)
    {
        var done = soFar.Points.Select(p => Key(p.Almr, p.Lr)).ToHashSet();
        var grid = Grid;
        var remaining = grid.Where(c => !done.Contains(Key(c.Almr, c.Lr))).ToList();
        var used = soFar.Points.Count;
        var missingStart = InitialDesign().Where(c => !done.Contains(Key(c.Almr, c.Lr))).ToList();
        if (missingStart.Count > 0)
            return new AdaptiveDecision(false, _almrs.Length > 1 && _lrs.Length > 1 ? "initial 3×3 design" : "initial design along the one swept axis", missingStart, null, used, GridSize);

        var surrogate = Surrogate(soFar, grid, used);
        AdaptiveDecision Stop(string reason, LawFit? fit = null) =>
            new(true, reason, [], fit, used, GridSize) { Best = surrogate?.Best, ProbabilityBetter = surrogate?.ProbabilityBetter };
        if (remaining.Count == 0) return Stop("the whole grid has been run");
        if (_options.MaxRuns is { } max && used >= max) return Stop($"reached the run budget ({max})");

        if (_options.StopOnLawInterval && LawIntervalStop(soFar) is { } lawStop) return Stop(lawStop.Reason, lawStop.Fit);

        if (surrogate is null)
            // Too few successful runs for the surrogate (it needs the quadratic mean's 6 terms plus 4, and 3 values per axis),
            // or its kernel would not factorise: fill the grid where runs are sparsest.
            return new AdaptiveDecision(false, "no surrogate yet (too few successful runs); filling the grid", SpaceFilling(remaining, soFar, batch), null, used, GridSize);

        if (used >= MinRuns && surrogate.ProbabilityBetter < _options.StopProbability)
            return Stop($"no unrun cell is likely to beat the best run {surrogate.Best}: posterior probability {surrogate.ProbabilityBetter:0.###} " +
                        $"that one is better by {_options.StopMargin:0.###%} (threshold {_options.StopProbability:0.###}, {used} runs)");

        var next = Acquire(surrogate, grid, remaining, batch);
        return new AdaptiveDecision(false, "expected improvement", next, null, used, GridSize) { Best = surrogate.Best, ProbabilityBetter = surrogate.ProbabilityBetter };
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
                return new AdaptiveResult(fit, runs, GridSize, decision.Reason) { Best = decision.Best };
            }
            runs.AddRange(decision.Next.Select(runOne));
        }
    }

    /// <summary>
    /// The surrogate's view of the grid: Objective[d][k] is draw d's objective at grid cell k (NaN where a
    /// constraint fails), Best the run cell with the lowest mean objective, ProbabilityBetter the fraction of
    /// draws in which some unrun cell beats Best's value in that draw by the stop margin.
    /// </summary>
    sealed record SurrogateView(double[][] Objective, bool[] IsRun, int BestIndex, GridCell Best, double ProbabilityBetter);

    SurrogateView? Surrogate(SweepResults soFar, IReadOnlyList<GridCell> grid, int used)
    {
        SweepValidation.Prepared data;
        try { data = SweepValidation.Prepare(soFar, _options.Fit); }
        catch (CptLabException) { return null; }
        var almrBox = new Interval(_almrs[0], _almrs[^1]);
        var xBox = new Interval(Math.Log10(_lrs[0]), Math.Log10(_lrs[^1]));
        GaussianProcessSurface? gt, go;
        try
        {
            gt = GaussianProcessSurface.Fit(data.Target, almrBox, xBox, _options.SurrogateKernel);
            go = GaussianProcessSurface.Fit(data.Original, almrBox, xBox, _options.SurrogateKernel);
        }
        // A kernel matrix that will not factorise even after clamping: no surrogate this step (the caller fills the grid).
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ArithmeticException) { return null; }
        if (gt is null || go is null) return null;

        var points = grid.Select(c => (c.Almr, Math.Log10(c.Lr))).ToArray();
        // A fixed seed per (fit seed, runs so far): the same history gives the same proposal.
        var rng = new Random(unchecked(_options.Fit.Seed * 7_368_787 + used * 104_729 + 31));
        var st = gt.Sample(points, _options.Draws, rng);
        var so = go.Sample(points, _options.Draws, rng);
        var objective = _options.Fit.Objective;
        var f = new double[_options.Draws][];
        for (var d = 0; d < f.Length; d++)
        {
            f[d] = new double[points.Length];
            for (var k = 0; k < points.Length; k++) f[d][k] = objective.Evaluate(Math.Exp(st[d][k]), Math.Exp(so[d][k]), data.OriginalBase);
        }

        var succeeded = soFar.Succeeded.Select(p => Key(p.Almr, p.Lr)).ToHashSet();
        var tried = soFar.Points.Select(p => Key(p.Almr, p.Lr)).ToHashSet();
        var isRun = grid.Select(c => tried.Contains(Key(c.Almr, c.Lr))).ToArray();
        // Mean objective over the feasible draws, for a cell feasible in at least half of them (+∞ otherwise): counting an
        // infeasible draw as +∞ would rule out every cell near a constraint's boundary, where a constrained optimum lies.
        double MeanAt(int k)
        {
            var feasible = f.Select(row => row[k]).Where(double.IsFinite).ToArray();
            return feasible.Length * 2 >= f.Length ? feasible.Average() : double.PositiveInfinity;
        }
        var runCells = Enumerable.Range(0, grid.Count).Where(k => succeeded.Contains(Key(grid[k].Almr, grid[k].Lr))).ToArray();
        if (runCells.Length == 0) return null;
        var best = runCells.MinBy(MeanAt);

        var better = 0;
        foreach (var row in f)
        {
            var incumbent = Finite(row[best]);
            var bar = incumbent - _options.StopMargin * Math.Abs(incumbent);
            for (var k = 0; k < row.Length; k++)
                if (!isRun[k] && Finite(row[k]) < bar) { better++; break; }
        }
        return new SurrogateView(f, isRun, best, grid[best], (double)better / f.Length);
    }

    /// <summary>An infeasible value is worse than any feasible one.</summary>
    static double Finite(double v) => double.IsFinite(v) ? v : double.PositiveInfinity;

    /// <summary>Greedy Monte Carlo q-EI: each pick maximises the mean over draws of max(0, min(incumbent, picked so far) − value).</summary>
    static IReadOnlyList<GridCell> Acquire(SurrogateView s, IReadOnlyList<GridCell> grid, List<GridCell> remaining, int batch)
    {
        var index = grid.Select((c, k) => (c, k)).ToDictionary(t => Key(t.c.Almr, t.c.Lr), t => t.k);
        var candidates = remaining.Select(c => index[Key(c.Almr, c.Lr)]).ToList();
        var floor = s.Objective.Select(row => Finite(row[s.BestIndex])).ToArray();
        var picked = new List<GridCell>();
        for (var b = 0; b < batch && candidates.Count > 0; b++)
        {
            var (bestK, bestEi, bestSd) = (-1, double.NegativeInfinity, double.NegativeInfinity);
            foreach (var k in candidates)
            {
                double sum = 0, m = 0, m2 = 0;
                var n = 0;
                for (var d = 0; d < floor.Length; d++)
                {
                    var v = Finite(s.Objective[d][k]);
                    if (double.IsPositiveInfinity(floor[d])) sum += double.IsFinite(v) ? 1 : 0;      // no feasible incumbent in this draw: any feasible value is an improvement
                    else if (v < floor[d]) sum += floor[d] - v;
                    if (double.IsFinite(v)) { n++; var delta = v - m; m += delta / n; m2 += delta * (v - m); }
                }
                var ei = sum / floor.Length;
                var sd = n > 1 ? Math.Sqrt(m2 / (n - 1)) : 0;
                // Ties (EI zero everywhere): the most uncertain cell.
                if (ei > bestEi || (ei == bestEi && sd > bestSd)) (bestK, bestEi, bestSd) = (k, ei, sd);
            }
            picked.Add(grid[bestK]);
            candidates.Remove(bestK);
            for (var d = 0; d < floor.Length; d++) floor[d] = Math.Min(floor[d], Finite(s.Objective[d][bestK]));
        }
        return picked;
    }

    /// <summary>The earlier rule: refit the law and stop if its optimum's interval is within tolerance (null: keep going).</summary>
    (string Reason, LawFit Fit)? LawIntervalStop(SweepResults soFar)
    {
        LawFit fit;
        try { fit = LawFitter.Fit(soFar, _options.Fit with { Nonparametric = false }); }
        catch (CptLabException) { return null; }
        var opt = fit.Summary.Optimum;
        var dof = fit.Summary.Runs - fit.Summary.Candidates.Single(c => c.Law == fit.Summary.Law).ParametersPerLanguage;
        if (dof >= _options.MinResidualDof && opt.AlmrInterval is { } ri && opt.Log10LrInterval is { } xi
            && ri.Width / 2 <= _options.AlmrTolerance && xi.Width / 2 <= _options.Log10LrTolerance)
            return ($"optimum interval within tolerance: ALMR ±{ri.Width / 2:0.###}, log10 lr ±{xi.Width / 2:0.###} ({fit.Summary.Law}, {dof} residual degrees of freedom)", fit);
        return null;
    }

    static (double, double) Key(double r, double lr) => (Math.Round(r, 9), Math.Round(Math.Log10(lr), 9));

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
