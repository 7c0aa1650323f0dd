using CptLab.Laws;

namespace CptLab.Laws.Tests;

/// <summary>A truth a synthetic sweep is drawn from: each language's log-loss at (r, x = log10 lr).</summary>
internal sealed record Truth(string Name, Func<double, double, double> LogZh, Func<double, double, double> LogEn);

/// <summary>
/// A known sweep surface: log-losses quadratic in x = log10 lr with coefficients quadratic in ALMR r, written in
/// the interpretable form log L = A(r) + κ·(x − x*(r))². The target ("zh") improves with r and prefers a
/// larger LR as r grows; the original ("en") forgets more as r grows and prefers a small LR. This surface is in
/// the response_surface_quadratic family (<see cref="InFamily"/>); <see cref="OutOfFamily"/> is in none.
/// </summary>
internal sealed class Synthetic
{
    public const string Zh = "zh";
    public const string En = "en";
    public const double EnBase = 2.0;

    // Target: A = 1.10 − 0.50 r + 0.20 r², x* = −3.8 + 0.4 r, κ = 0.08.
    // Original: A = 0.70 + 0.02 r + 0.25 r², x* = −4.2, κ = 0.05.
    public static double LogZh(double r, double x) => 1.10 - 0.50 * r + 0.20 * r * r + 0.08 * Sq(x - (-3.8 + 0.4 * r));
    public static double LogEn(double r, double x) => 0.70 + 0.02 * r + 0.25 * r * r + 0.05 * Sq(x + 4.2);
    static double Sq(double v) => v * v;

    /// <summary>
    /// A smooth surface outside every law family, for measuring what the intervals do when the law is wrong:
    /// zh: L = 1.6 + 1.4·e^(−3r) + 0.12·(10^(0.8z) + 10^(−0.5z) − 2), z = x − (−3.8 + 0.4r) (too large an LR
    /// hurts faster than too small a one); en: L = 2 + 0.3·r^1.5·10^(0.3(x + 4.2)) + 0.05·(10^(0.5e) + 10^(−0.5e) − 2),
    /// e = x + 4.2 (forgetting grows as r^1.5 and with the LR). Neither log L is a polynomial in r or x. The true
    /// optimum of <see cref="Weighted"/> over r ∈ [0, 0.9], x ∈ [−4.75, −3.25], by dense grid, is interior
    /// (r* ≈ 0.564, x* ≈ −4.155).
    /// </summary>
    public static double OutOfFamilyLogZh(double r, double x)
    {
        var z = x - (-3.8 + 0.4 * r);
        return Math.Log(1.6 + 1.4 * Math.Exp(-3 * r) + 0.12 * (Math.Pow(10, 0.8 * z) + Math.Pow(10, -0.5 * z) - 2));
    }

    public static double OutOfFamilyLogEn(double r, double x)
    {
        var e = x + 4.2;
        return Math.Log(EnBase + 0.3 * Math.Pow(r, 1.5) * Math.Pow(10, 0.3 * e) + 0.05 * (Math.Pow(10, 0.5 * e) + Math.Pow(10, -0.5 * e) - 2));
    }

    /// <summary>
    /// A second surface outside every family: a saturating target gain in ALMR, an optimal LR that moves as √r, and
    /// an asymmetric LR response. zh: L = 1.7 + 1.2/(1 + 4r) + 0.1·(10^(0.6z) + 10^(−0.4z) − 2), z = x − (−3.9 + 0.5√r);
    /// en: L = 2 + 0.25·r²·(1 + 0.5·tanh(2(x + 4))) + 0.06·(10^(0.6e) + 10^(−0.4e) − 2), e = x + 4.3. True optimum of
    /// <see cref="Weighted"/> by dense grid: r* ≈ 0.567, x* ≈ −4.335.
    /// </summary>
    public static double SaturatingLogZh(double r, double x)
    {
        var z = x - (-3.9 + 0.5 * Math.Sqrt(r));
        return Math.Log(1.7 + 1.2 / (1 + 4 * r) + 0.1 * (Math.Pow(10, 0.6 * z) + Math.Pow(10, -0.4 * z) - 2));
    }

    public static double SaturatingLogEn(double r, double x)
    {
        var e = x + 4.3;
        return Math.Log(EnBase + 0.25 * r * r * (1 + 0.5 * Math.Tanh(2 * (x + 4))) + 0.06 * (Math.Pow(10, 0.6 * e) + Math.Pow(10, -0.4 * e) - 2));
    }

    /// <summary>
    /// A third: Data Mixing Laws' exponential form in ALMR for both languages and a V-shaped (pseudo-Huber) response
    /// in log LR, far from a quadratic. zh: L = 1.55 + 0.9·e^(−2.5r) + 0.08·(√(1 + (z/0.25)²) − 1), z = x − (−3.7 + 0.3r);
    /// en: L = 2 + 0.25·(e^(1.2r) − 1)·10^(0.2(x + 4.2)) + 0.04·(√(1 + (e/0.25)²) − 1), e = x + 4.3. True optimum
    /// r* ≈ 0.324, x* ≈ −4.135.
    /// </summary>
    public static double VShapedLogZh(double r, double x)
    {
        var z = x - (-3.7 + 0.3 * r);
        return Math.Log(1.55 + 0.9 * Math.Exp(-2.5 * r) + 0.08 * (Math.Sqrt(1 + z * z / 0.0625) - 1));
    }

    public static double VShapedLogEn(double r, double x)
    {
        var e = x + 4.3;
        return Math.Log(EnBase + 0.25 * (Math.Exp(1.2 * r) - 1) * Math.Pow(10, 0.2 * (x + 4.2)) + 0.04 * (Math.Sqrt(1 + e * e / 0.0625) - 1));
    }

    public static readonly Truth InFamily = new("quadratic response surface (in the family)", LogZh, LogEn);
    public static readonly Truth OutOfFamily = new("exp/power surface (outside every family)", OutOfFamilyLogZh, OutOfFamilyLogEn);
    public static readonly Truth Saturating = new("saturating gain, sqrt-r LR shift (outside every family)", SaturatingLogZh, SaturatingLogEn);
    public static readonly Truth VShaped = new("exponential in ALMR, V-shaped in LR (outside every family)", VShapedLogZh, VShapedLogEn);

    /// <summary>
    /// The same truth as centred response-surface coefficients a0..a2, b0..b2, c0..c2:
    /// log L = a(u) + b(u)·z + c(u)·z², u = r − r0, z = x − x0, derived by hand from the forms above.
    /// </summary>
    public static double[] ZhCoefficients(double r0, double x0)
    {
        // A(r) = 1.10 − 0.50r + 0.20r² around r0; x − x*(r) = z + d − 0.4u with d = x0 + 3.8 − 0.4r0.
        const double k = 0.08;
        var d = x0 + 3.8 - 0.4 * r0;
        return [1.10 - 0.50 * r0 + 0.20 * r0 * r0 + k * d * d, -0.50 + 0.40 * r0 - 0.8 * k * d, 0.20 + 0.16 * k,
                2 * k * d, -0.8 * k, 0, k, 0, 0];
    }

    public static double[] EnCoefficients(double r0, double x0)
    {
        const double k = 0.05;
        var e = x0 + 4.2;
        return [0.70 + 0.02 * r0 + 0.25 * r0 * r0 + k * e * e, 0.02 + 0.50 * r0, 0.25, 2 * k * e, 0, 0, k, 0, 0];
    }

    public static readonly Objective Weighted = Objective.Weighted(1, 2);

    public static double TrueObjective(Objective objective, double r, double x, Truth? truth = null)
    {
        truth ??= InFamily;
        return objective.Evaluate(Math.Exp(truth.LogZh(r, x)), Math.Exp(truth.LogEn(r, x)), EnBase);
    }

    /// <summary>The true optimum by brute force on a dense grid (independent of the library's search).</summary>
    public static (double R, double X) TrueOptimum(Objective objective, double r0, double r1, double x0, double x1, int n = 601, Truth? truth = null)
    {
        var best = (R: 0.0, X: 0.0, V: double.PositiveInfinity);
        for (var i = 0; i < n; i++)
        for (var j = 0; j < n; j++)
        {
            var r = r0 + (r1 - r0) * i / (n - 1);
            var x = x0 + (x1 - x0) * j / (n - 1);
            var v = TrueObjective(objective, r, x, truth);
            if (v < best.V) best = (r, x, v);
        }
        return (best.R, best.X);
    }

    public static double[] Grid(double lo, double hi, int n) => Enumerable.Range(0, n).Select(i => lo + (hi - lo) * i / (n - 1)).ToArray();

    public static SweepPoint Run(double r, double x, int seed, Random rng, double noise, Truth? truth = null)
    {
        truth ??= InFamily;
        var zh = Math.Exp(truth.LogZh(r, x) + noise * Gauss(rng));
        var en = Math.Exp(truth.LogEn(r, x) + noise * Gauss(rng));
        return new SweepPoint(r, Math.Pow(10, x), seed, new Dictionary<string, double> { [Zh] = zh, [En] = en }, []);
    }

    public static SweepResults Sweep(IEnumerable<double> rs, IEnumerable<double> xs, double noise, int seed, int seeds = 1, Truth? truth = null)
    {
        var rng = new Random(seed);
        var points = (from r in rs from x in xs from s in Enumerable.Range(0, seeds) select Run(r, x, s, rng, noise, truth)).ToList();
        return Wrap(points);
    }

    public static SweepResults Wrap(IReadOnlyList<SweepPoint> points) =>
        new(points, new Dictionary<string, double> { [Zh] = 3.3, [En] = EnBase }, Zh, En);

    public static double Gauss(Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
