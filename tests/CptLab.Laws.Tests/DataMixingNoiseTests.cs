using CptLab.Laws.Registry;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>
/// Ye et al.'s CPT critical proportion (see LawRegistryTests) at 0.1% noise on log L, seeds 1–20, δ = 1e-3.
/// Measured: Ye et al.'s 4 proportions: median |error| 0.0075, within 0.005 in 4/20, largest 0.0191;
/// 12 proportions 0.05–0.60: median 0.0055, within 0.005 in 8/20, largest 0.0115. The brief's target (within
/// 0.005) is NOT met at this noise: near r* the loss falls only 0.24 per unit r, so 0.1% of L ≈ 0.003 moves r* by
/// ~0.01. The assertions pin what holds, so a regression still fails.
/// </summary>
public class DataMixingNoiseTests(ITestOutputHelper output)
{
    const double C = 2.810340812703942, K = -3.7397, B = -1.6938, Original = 2.8733675921404798;

    double[] Errors(double[] r, string label)
    {
        var truth = (Math.Log(Original - C) - B) / K;
        var errors = new List<double>();
        for (var seed = 1; seed <= 20; seed++)
        {
            var rng = new Random(seed);
            var table = LawTable.FromColumns("dml", new Dictionary<string, double[]>
            {
                ["r"] = r, ["loss"] = r.Select(v => (C + Math.Exp(K * v + B)) * Math.Exp(0.001 * LawFixtures.Normal(rng))).ToArray(),
            });
            var fit = LawTableFitter.Fit(table, LawRegistry.Get("data_mixing_law"), new LawFitOptions { HuberDelta = 1e-3 });
            errors.Add((fit.InputAt("r", Original, 0, 1) ?? double.NaN) - truth);
        }
        var abs = errors.Select(Math.Abs).OrderBy(v => v).ToArray();
        output.WriteLine($"{label}: median |error| {abs[abs.Length / 2]:0.0000}, within 0.005 in {abs.Count(v => v <= 0.005)}/20, largest {abs[^1]:0.0000}, mean error {errors.Average():+0.0000;-0.0000}");
        return abs;
    }

    [Fact]
    public void Critical_proportion_at_01_percent_noise()
    {
        var ye = Errors([0.125, 0.25, 0.375, 0.5], "Ye et al.'s 4 proportions");
        var dense = Errors(Enumerable.Range(0, 12).Select(i => 0.05 + 0.05 * i).ToArray(), "12 proportions 0.05–0.60");
        Assert.InRange(ye[ye.Length / 2], 0, 0.010);
        Assert.InRange(dense[dense.Length / 2], 0, 0.006);
        Assert.InRange(dense[^1], 0, 0.015);
    }
}
