using CptLab.Laws.Registry;

namespace CptLab.Laws.Tests;

/// <summary>
/// Tables generated from published or chosen laws with a fixed seed (System.Random; never HashCode.Combine, which
/// is salted per process). The generating parameters are the reference a fit is judged against.
/// </summary>
static class LawFixtures
{
    /// <summary>Epoch AI's fit of Hoffmann et al.'s data (Besiroglu et al. 2024): E, A, B, α, β.</summary>
    public static readonly double[] Epoch = [1.8172, 482.01, 2085.43, 0.3478, 0.3658];

    /// <summary>
    /// An approximation of the (N, D) design of Epoch AI's reconstruction of Hoffmann et al.'s Figure 4 (their
    /// data carries no licence, so it is not used): Hoffmann et al.'s nine isoFLOP budgets 6e18 … 3e21 FLOPs,
    /// each with 40 model sizes log-spaced over 57M–16B, D = C / 6N, kept where 0.04 ≤ D/N ≤ 340 — 244 points
    /// with 0.046–308 tokens per parameter (Epoch: 245 points, 0.04–340).
    /// </summary>
    public static (double N, double D)[] ChinchillaDesign()
    {
        double[] budgets = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21];
        const int sizes = 40;
        var points = new List<(double, double)>();
        foreach (var c in budgets)
            for (var i = 0; i < sizes; i++)
            {
                var n = Math.Exp(Math.Log(5.7e7) + (Math.Log(1.6e10) - Math.Log(5.7e7)) * i / (sizes - 1));
                var d = c / (6 * n);
                if (d / n is >= 0.04 and <= 340) points.Add((n, d));
            }
        return points.ToArray();
    }

    /// <summary>L = E + A/N^α + B/D^β on the design, times exp(σ·z) with z standard normal (noise of σ on log L).</summary>
    public static LawTable Chinchilla(double sigma, int seed, double[]? truth = null)
    {
        var t = truth ?? Epoch;
        var design = ChinchillaDesign();
        var rng = new Random(seed);
        var loss = design.Select(p => (t[0] + t[1] * Math.Pow(p.N, -t[3]) + t[2] * Math.Pow(p.D, -t[4])) * Math.Exp(sigma * Normal(rng))).ToArray();
        return LawTable.FromColumns($"chinchilla fixture (σ {sigma}, seed {seed})", new Dictionary<string, double[]>
        {
            ["n"] = design.Select(p => p.N).ToArray(),
            ["d"] = design.Select(p => p.D).ToArray(),
            ["loss"] = loss,
        });
    }

    /// <summary>A standard normal draw (Box–Muller), from the generator's own sequence.</summary>
    public static double Normal(Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
