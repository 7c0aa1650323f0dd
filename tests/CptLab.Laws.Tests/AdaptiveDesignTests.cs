using CptLab.Laws;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>On synthetic surfaces the adaptive design reaches the grid optimum within tolerance with fewer runs than the grid.</summary>
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
    public void ReachesTheFullGridOptimumWithFewerRuns(string objectiveName)
    {
        const double noise = 0.005, tolR = 0.04, tolX = 0.08;
        var objective = Parse(objectiveName);
        var fitOptions = new FitOptions { Objective = objective, Bootstrap = 60, Seed = 3 };
        var rng = new Random(77);
        var design = new AdaptiveDesign(Rs, Lrs, new AdaptiveOptions { Fit = fitOptions, AlmrTolerance = tolR, Log10LrTolerance = tolX });
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
        Assert.StartsWith("optimum interval within tolerance", result.StopReason);
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
    }
}
