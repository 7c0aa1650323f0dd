using CptLab.Laws;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>
/// On synthetic surfaces the adaptive design reaches the grid optimum within tolerance with fewer runs than the grid.
/// Against random order out of family: <see cref="AdaptiveVersusRandomTests"/>.
/// </summary>
public class AdaptiveDesignTests(ITestOutputHelper output)
{
    static readonly double[] Rs = Synthetic.Grid(0, 0.9, 7);
    static readonly double[] Lrs = Synthetic.Grid(-4.75, -3.25, 7).Select(x => Math.Pow(10, x)).ToArray();

    public static TheoryData<string> Objectives => ["weighted 1:2", "weighted 1:5", "constrained 0.15"];

    static Objective Parse(string name) => name switch
    {
        "weighted 1:2" => Objective.Weighted(1, 2),
        "weighted 1:5" => Objective.Weighted(1, 5),
        _ => Objective.Constrained(0.15),
    };

    [Theory]
    [MemberData(nameof(Objectives))]
    public void ReachesTheFullGridOptimumWithFewerRuns(string objectiveName) => Reaches(objectiveName, lawIntervalStop: false);

    /// <summary>The earlier stopping rule (the law's interval within tolerance), still available as an option.</summary>
    [Fact]
    public void TheLawIntervalStopStillStopsWithinTolerance() => Reaches("weighted 1:2", lawIntervalStop: true);

    void Reaches(string objectiveName, bool lawIntervalStop)
    {
        const double noise = 0.005, tolR = 0.04, tolX = 0.08;
        var objective = Parse(objectiveName);
        var fitOptions = new FitOptions { Objective = objective, Bootstrap = 60, Seed = 3 };
        var rng = new Random(77);
        var design = new AdaptiveDesign(Rs, Lrs, new AdaptiveOptions { Fit = fitOptions, AlmrTolerance = tolR, Log10LrTolerance = tolX, StopOnLawInterval = lawIntervalStop });
        Assert.Equal(9, design.InitialDesign().Count);
        var result = design.Run(c => Synthetic.Run(c.Almr, Math.Log10(c.Lr), 0, rng, noise),
            new Dictionary<string, double> { ["zh"] = 3.3, ["en"] = Synthetic.EnBase }, Synthetic.Zh, Synthetic.En);

        // The full grid, every cell run once with the same noise level, fitted the same way.
        var full = LawFitter.Fit(Synthetic.Sweep(Rs, Lrs.Select(Math.Log10), noise, seed: 78), fitOptions).Summary.Optimum;
        var a = result.Fit.Summary.Optimum;
        var truth = Synthetic.TrueOptimum(objective, 0, 0.9, -4.75, -3.25);
        output.WriteLine($"{objectiveName}: adaptive: {result.RunsUsed}/{result.GridSize} runs, stop: {result.StopReason}");
        output.WriteLine($"adaptive r*={a.Almr:0.0000} x*={a.Log10Lr:0.0000}; full grid r*={full.Almr:0.0000} x*={full.Log10Lr:0.0000}; truth r*={truth.R:0.0000} x*={truth.X:0.0000}");

        Assert.True(result.RunsUsed < result.GridSize, $"used {result.RunsUsed} of {result.GridSize} runs");
        Assert.StartsWith(lawIntervalStop ? "optimum interval within tolerance" : "no unrun cell is likely to beat the best run", result.StopReason);
        // The surrogate's best run cell is within 1% of the best grid cell's true objective (NaN: the constraint fails there).
        double True(GridCell c) => Synthetic.TrueObjective(objective, c.Almr, Math.Log10(c.Lr)) is var v && double.IsFinite(v) ? v : double.PositiveInfinity;
        var bestCell = design.Grid.Min(True);
        Assert.NotNull(result.Best);
        output.WriteLine($"best run cell {result.Best}: true objective {True(result.Best):0.0000}, best grid cell {bestCell:0.0000}");
        Assert.True(True(result.Best) <= bestCell * 1.01, $"best run cell {result.Best} is {True(result.Best) / bestCell - 1:P2} above the best grid cell");
        Assert.InRange(a.Almr - full.Almr, -tolR, tolR);
        Assert.InRange(a.Log10Lr - full.Log10Lr, -tolX, tolX);
        Assert.InRange(a.Almr - truth.R, -tolR, tolR);
        Assert.InRange(a.Log10Lr - truth.X, -tolX, tolX);
        // No cell is run twice.
        Assert.Equal(result.RunsUsed, result.Runs.Select(p => (p.Almr, p.Lr)).Distinct().Count());
    }

    [Fact]
    public void DecideStartsWithTheCoarseDesignAndNeverRepeatsACell()
    {
        var design = new AdaptiveDesign(Rs, Lrs, new AdaptiveOptions { Fit = new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 20 } });
        var empty = new SweepResults([], new Dictionary<string, double> { ["en"] = 2.0 }, "zh", "en");
        var first = design.Decide(empty, batch: 4);
        Assert.False(first.Done);
        Assert.Equal(9, first.Next.Count);
        Assert.Equal(new[] { 0.0, 0.45, 0.9 }, first.Next.Select(c => Math.Round(c.Almr, 9)).Distinct().OrderBy(v => v));

        var rng = new Random(1);
        var runs = first.Next.Select(c => Synthetic.Run(c.Almr, Math.Log10(c.Lr), 0, rng, 0.005)).ToList();
        var second = design.Decide(Synthetic.Wrap(runs), batch: 3);
        Assert.False(second.Done);
        Assert.Equal(3, second.Next.Count);
        Assert.DoesNotContain(second.Next, c => runs.Any(p => p.Almr == c.Almr && p.Lr == c.Lr));
        Assert.Equal(3, second.Next.Distinct().Count());

        // With 12 runs the surrogate proposes: a batch of distinct unrun cells, and the same batch again for the same history.
        runs.AddRange(second.Next.Select(c => Synthetic.Run(c.Almr, Math.Log10(c.Lr), 0, rng, 0.005)));
        var third = design.Decide(Synthetic.Wrap(runs), batch: 3);
        Assert.Equal("expected improvement", third.Reason);
        Assert.Equal(3, third.Next.Distinct().Count());
        Assert.DoesNotContain(third.Next, c => runs.Any(p => p.Almr == c.Almr && p.Lr == c.Lr));
        Assert.NotNull(third.ProbabilityBetter);
        Assert.Equal(third.Next, design.Decide(Synthetic.Wrap(runs), batch: 3).Next);
    }

    [Fact]
    public void Starts_from_one_lr_or_one_almr_and_answers_that_axis()
    {
        var fit = new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 20 };
        // ALMR values at one LR: 4 along the axis first, then the surrogate's picks; the fit answers the ALMR question there.
        const double x = -4.0;
        var rs = Synthetic.Grid(0, 0.9, 10);
        var oneLr = new AdaptiveDesign(rs, [Math.Pow(10, x)], new AdaptiveOptions { Fit = fit });
        Assert.Equal(4, oneLr.InitialDesign().Count);
        Assert.Equal([0, 0.3, 0.6, 0.9], oneLr.InitialDesign().Select(c => Math.Round(c.Almr, 9)));
        var rng = new Random(41);
        var a = oneLr.Run(c => Synthetic.Run(c.Almr, Math.Log10(c.Lr), 0, rng, 0.005), Synthetic.Wrap([]).BaseLoss, Synthetic.Zh, Synthetic.En);
        var truthR = Synthetic.TrueOptimum(Synthetic.Weighted, 0, 0.9, x, x, n: 2001).R;
        var bestR = rs.MinBy(r => Synthetic.TrueObjective(Synthetic.Weighted, r, x));
        output.WriteLine($"one LR: {a.RunsUsed}/{a.GridSize} runs, {a.StopReason}; fit r* {a.Fit.Summary.Optimum.Almr:0.000} (truth {truthR:0.000}), best cell {a.Best}");
        Assert.Equal("single_lr", a.Fit.Summary.Design);
        Assert.True(a.RunsUsed < a.GridSize, $"ran the whole one-LR grid: {a.StopReason}");
        Assert.InRange(a.Fit.Summary.Optimum.Almr, truthR - 0.1, truthR + 0.1);
        Assert.InRange(a.Best!.Almr, bestR - 0.1 - 1e-9, bestR + 0.1 + 1e-9);

        // LRs at one ALMR.
        const double r = 0.3;
        var xs = Synthetic.Grid(-5, -3, 9);
        var oneAlmr = new AdaptiveDesign([r], xs.Select(v => Math.Pow(10, v)).ToArray(), new AdaptiveOptions { Fit = fit });
        Assert.Equal(3, oneAlmr.InitialDesign().Count);
        var b = oneAlmr.Run(c => Synthetic.Run(c.Almr, Math.Log10(c.Lr), 0, rng, 0.005), Synthetic.Wrap([]).BaseLoss, Synthetic.Zh, Synthetic.En);
        var truthX = Synthetic.TrueOptimum(Synthetic.Weighted, r, r, -5, -3, n: 2001).X;
        output.WriteLine($"one ALMR: {b.RunsUsed}/{b.GridSize} runs, {b.StopReason}; fit x* {b.Fit.Summary.Optimum.Log10Lr:0.000} (truth {truthX:0.000})");
        Assert.Equal("single_almr", b.Fit.Summary.Design);
        Assert.True(b.RunsUsed < b.GridSize, $"ran the whole one-ALMR grid: {b.StopReason}");
        Assert.InRange(b.Fit.Summary.Optimum.Log10Lr, truthX - 0.2, truthX + 0.2);
        // Two ALMR values at one LR are neither a grid nor an axis.
        Assert.Throws<Core.CptLabException>(() => new AdaptiveDesign([0.1, 0.5], [1e-4]));
    }
}
