namespace CptLab.Laws;

/// <summary>
/// The optimum's distribution under the Gaussian-process surfaces of both languages: each joint posterior draw of
/// the two log-loss surfaces on a grid over the box gives one objective surface and one argmin (refined between
/// grid nodes by a parabola through the neighbours on each axis). Its percentiles are an interval that does not
/// depend on any law's form.
/// </summary>
internal static class NonparametricOptimum
{
    internal sealed record Result(
        GaussianProcessSurface Target, GaussianProcessSurface Original,
        double[] Almr, double[] Log10Lr, int Infeasible, double MeanAlmr, double MeanLog10Lr);

    /// <summary>Null when either language has too few runs for the process.</summary>
    public static Result? Compute(Obs[] target, Obs[] original, Objective objective, double originalBase,
        Interval almrRange, Interval xRange, int draws, int seed, GpKernel kernel = GpKernel.Matern52, int almrNodes = 31, int lrNodes = 21)
    {
        if (GaussianProcessSurface.Fit(target, almrRange, xRange, kernel) is not { } gt
            || GaussianProcessSurface.Fit(original, almrRange, xRange, kernel) is not { } go) return null;
        if (almrRange.Width <= 0) almrNodes = 1;
        if (xRange.Width <= 0) lrNodes = 1;
        var rs = Enumerable.Range(0, almrNodes).Select(i => almrRange.Lo + almrRange.Width * i / Math.Max(1, almrNodes - 1)).ToArray();
        var xs = Enumerable.Range(0, lrNodes).Select(j => xRange.Lo + xRange.Width * j / Math.Max(1, lrNodes - 1)).ToArray();
        var points = (from r in rs from x in xs select (r, x)).ToArray();
        var rng = new Random(unchecked(seed * 7_368_787 + 101));
        var st = gt.Sample(points, draws, rng);
        var so = go.Sample(points, draws, rng);
        var almr = new List<double>();
        var lr = new List<double>();
        var infeasible = 0;
        var f = new double[points.Length];
        for (var d = 0; d < draws; d++)
        {
            for (var k = 0; k < points.Length; k++) f[k] = objective.Evaluate(Math.Exp(st[d][k]), Math.Exp(so[d][k]), originalBase);
            if (Argmin(f, rs, xs) is not { } opt) { infeasible++; continue; }
            almr.Add(opt.R);
            lr.Add(opt.X);
        }
        var mean = new double[points.Length];
        for (var k = 0; k < points.Length; k++)
            mean[k] = objective.Evaluate(Math.Exp(gt.Mean(points[k].r, points[k].x)), Math.Exp(go.Mean(points[k].r, points[k].x)), originalBase);
        var m = Argmin(mean, rs, xs);
        return new Result(gt, go, almr.ToArray(), lr.ToArray(), infeasible, m?.R ?? double.NaN, m?.X ?? double.NaN);
    }

    static (double R, double X)? Argmin(double[] f, double[] rs, double[] xs)
    {
        var nx = xs.Length;
        var best = -1;
        for (var k = 0; k < f.Length; k++)
            if (double.IsFinite(f[k]) && (best < 0 || f[k] < f[best])) best = k;
        if (best < 0) return null;
        var (i, j) = (best / nx, best % nx);
        double At(int a, int b) => f[a * nx + b];
        var r = rs[i] + Shift(i > 0 ? At(i - 1, j) : double.NaN, At(i, j), i + 1 < rs.Length ? At(i + 1, j) : double.NaN) * (rs.Length > 1 ? rs[1] - rs[0] : 0);
        var x = xs[j] + Shift(j > 0 ? At(i, j - 1) : double.NaN, At(i, j), j + 1 < nx ? At(i, j + 1) : double.NaN) * (nx > 1 ? xs[1] - xs[0] : 0);
        return (r, x);
    }

    /// <summary>The vertex of the parabola through three equally spaced values, in node spacings from the middle one (0 at an edge).</summary>
    static double Shift(double left, double mid, double right)
    {
        if (!double.IsFinite(left) || !double.IsFinite(right)) return 0;
        var curvature = left - 2 * mid + right;
        if (curvature <= 0) return 0;
        return Math.Clamp(0.5 * (left - right) / curvature, -0.5, 0.5);
    }
}
