using CptLab.Laws;

namespace CptLab.Reports.Tests;

/// <summary>
/// A 5 × 5 sweep over a smooth known surface (log-loss quadratic in log10 lr, the LR optimum moving with ALMR), with
/// six-point training curves and one failed run: enough for every figure to have something to draw.
/// </summary>
internal static class TestSweep
{
    public static SweepResults WithCurves()
    {
        var rng = new Random(11);
        var points = new List<SweepPoint>();
        for (var i = 0; i < 5; i++)
        for (var j = 0; j < 5; j++)
        {
            var (r, x) = (0.9 * i / 4, -4.75 + 1.5 * j / 4);
            double Noise() => 1 + 0.004 * (rng.NextDouble() - 0.5);
            var zh = Math.Exp(1.0 - 0.4 * r + 0.1 * r * r + 0.06 * Math.Pow(x + 3.9 - 0.3 * r, 2)) * Noise();
            var en = Math.Exp(0.7 + 0.2 * r * r + 0.04 * Math.Pow(x + 4.2, 2)) * Noise();
            var curve = Enumerable.Range(1, 6)
                .Select(k => new CurvePoint(k * 20_000_000L, new Dictionary<string, double> { ["zh"] = zh + 0.8 / k, ["en"] = en + 0.5 / k }))
                .ToList();
            points.Add(new SweepPoint(r, Math.Pow(10, x), 0, new Dictionary<string, double> { ["zh"] = zh, ["en"] = en }, curve));
        }
        points.Add(new SweepPoint(0.5, 1e-3, 0, new Dictionary<string, double>(), [], "diverged"));
        return new SweepResults(points, new Dictionary<string, double> { ["zh"] = 3.3, ["en"] = 2.0 }, "zh", "en");
    }
}
