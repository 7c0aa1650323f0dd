namespace CptLab.Laws;

/// <summary>
/// Minimisation of a predicted objective over the swept box: a coarse grid (robust to the NaN holes of a
/// constrained objective and to several local minima), then rounds of finer grids around the best cell.
/// Search never leaves the box: a law is only trusted where the sweep measured.
/// </summary>
internal static class SurfaceSearch
{
    public static (double R, double X, double Value)? Minimize2D(Func<double, double, double> f, double r0, double r1, double x0, double x1, int coarse = 41)
    {
        (double R, double X, double V)? best = null;
        var (lr0, lr1, lx0, lx1) = (r0, r1, x0, x1);
        var n = coarse;
        for (var round = 0; round < 4; round++)
        {
            var dr = (lr1 - lr0) / (n - 1);
            var dx = (lx1 - lx0) / (n - 1);
            for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
            {
                var r = lr0 + i * dr;
                var x = lx0 + j * dx;
                var v = f(r, x);
                if (double.IsFinite(v) && (best is null || v < best.Value.V)) best = (r, x, v);
            }
            if (best is null) return null;
            (lr0, lr1) = (Math.Max(r0, best.Value.R - dr), Math.Min(r1, best.Value.R + dr));
            (lx0, lx1) = (Math.Max(x0, best.Value.X - dx), Math.Min(x1, best.Value.X + dx));
            n = 11;
        }
        return best is { } b ? (b.R, b.X, b.V) : null;
    }

    public static (double X, double Value)? Minimize1D(Func<double, double> f, double x0, double x1, int coarse = 41)
    {
        (double X, double V)? best = null;
        var (lo, hi) = (x0, x1);
        var n = coarse;
        for (var round = 0; round < 4; round++)
        {
            var dx = (hi - lo) / (n - 1);
            for (var j = 0; j < n; j++)
            {
                var x = lo + j * dx;
                var v = f(x);
                if (double.IsFinite(v) && (best is null || v < best.Value.V)) best = (x, v);
            }
            if (best is null) return null;
            (lo, hi) = (Math.Max(x0, best.Value.X - dx), Math.Min(x1, best.Value.X + dx));
            n = 11;
        }
        return best is { } b ? (b.X, b.V) : null;
    }

    /// <summary>The q-quantile (0..1) by linear interpolation between order statistics.</summary>
    public static double Quantile(IReadOnlyList<double> values, double q)
    {
        var s = values.Where(double.IsFinite).ToArray();
        if (s.Length == 0) return double.NaN;
        Array.Sort(s);
        var pos = q * (s.Length - 1);
        var i = (int)Math.Floor(pos);
        var frac = pos - i;
        return i + 1 < s.Length ? s[i] + frac * (s[i + 1] - s[i]) : s[i];
    }
}
