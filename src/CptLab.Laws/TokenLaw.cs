using CptLab.Core;

namespace CptLab.Laws;

/// <summary>
/// (c) Loss against training tokens for one run and language: L(D) = E + B·D^(−β). Fitted on a run's
/// intermediate validation points to extrapolate its loss to a longer token budget than the proxy ran.
/// </summary>
public sealed record TokenLawFit(double E, double B, double Beta, int Points, double RmsResidual, double? HoldoutError)
{
    public double Predict(double tokens) => E + B * Math.Pow(tokens, -Beta);
}

public static class TokenLaw
{
    public const int MinPoints = 4;
    static readonly double[] GridBetas = [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5];

    /// <summary>
    /// Fits E, B, β by Huber loss on log-loss with many starts. <see cref="TokenLawFit.HoldoutError"/> is the
    /// log-loss error of predicting the last point from the others (what extrapolation is for), when there are
    /// enough points to spare one.
    /// </summary>
    public static TokenLawFit Fit(IReadOnlyList<(long Tokens, double Loss)> curve, int starts = 12, int seed = 0, string where = "curve")
    {
        var pts = curve.Where(c => c.Tokens > 0).OrderBy(c => c.Tokens).ToArray();
        if (pts.Length < MinPoints)
            throw new CptLabException($"{where}: the token law L(D) = E + B·D^-β needs at least {MinPoints} validation points with tokens > 0, has {pts.Length}; evaluate more often during the run");
        foreach (var p in pts)
            if (!double.IsFinite(p.Loss) || p.Loss <= 0)
                throw new CptLabException($"{where}: validation loss at {p.Tokens} tokens is {p.Loss}; a curve must have finite positive losses");
        var full = FitCore(pts, starts, seed);
        double? holdout = null;
        if (pts.Length >= MinPoints + 1)
        {
            var head = FitCore(pts[..^1], starts, seed);
            holdout = Math.Log(head.Predict(pts[^1].Tokens)) - Math.Log(pts[^1].Loss);
        }
        return full with { HoldoutError = holdout };
    }

    static TokenLawFit FitCore((long Tokens, double Loss)[] pts, int starts, int seed)
    {
        // Tokens are scaled by the largest count so B stays O(loss) during the fit; B is reported unscaled.
        var dMax = (double)pts[^1].Tokens;
        var u = pts.Select(p => p.Tokens / dMax).ToArray();
        var y = pts.Select(p => Math.Log(p.Loss)).ToArray();
        var rng = new Random(seed);
        var betas = GridBetas.Concat(Enumerable.Range(0, Math.Max(0, starts - GridBetas.Length)).Select(_ => 0.02 + 2 * rng.NextDouble()));
        var startList = betas.Select(b => LinearStart(u, pts, b)).OfType<double[]>().ToList();
        if (startList.Count == 0) startList.Add([pts.Min(p => p.Loss) * 0.9, 0.1, 0.3]);
        RobustFitResult fit;
        try { fit = RobustLeastSquares.Fit(new Model(u), y, startList); }
        catch (FitFailedException e) { throw new CptLabException($"token law fit failed: {e.Message}"); }
        var (e0, bScaled, beta) = (fit.Parameters[0], fit.Parameters[1], fit.Parameters[2]);
        var rms = Math.Sqrt(fit.Residuals.Sum(r => r * r) / fit.Residuals.Length);
        return new TokenLawFit(e0, bScaled * Math.Pow(dMax, beta), beta, pts.Length, rms, null);
    }

    static double[]? LinearStart(double[] u, (long Tokens, double Loss)[] pts, double beta)
    {
        double s1 = 0, sz = 0, szz = 0, sy = 0, szy = 0;
        for (var i = 0; i < u.Length; i++)
        {
            var z = Math.Pow(u[i], -beta);
            s1 += 1; sz += z; szz += z * z; sy += pts[i].Loss; szy += z * pts[i].Loss;
        }
        var det = s1 * szz - sz * sz;
        if (Math.Abs(det) < 1e-14) return null;
        var b = (s1 * szy - sz * sy) / det;
        var e = (sy - b * sz) / s1;
        for (var i = 0; i < u.Length; i++) if (e + b * Math.Pow(u[i], -beta) <= 0) return null;
        return [e, b, beta];
    }

    sealed class Model(double[] u) : IResidualModel
    {
        public int ParameterCount => 3;
        public int ObservationCount => u.Length;

        public double Value(ReadOnlySpan<double> th, int i) =>
            Math.Log(Math.Max(th[0] + th[1] * Math.Pow(u[i], -th[2]), 1e-12));

        public void Gradient(ReadOnlySpan<double> th, int i, Span<double> g)
        {
            var z = Math.Pow(u[i], -th[2]);
            var v = Math.Max(th[0] + th[1] * z, 1e-12);
            g[0] = 1 / v;
            g[1] = z / v;
            g[2] = -th[1] * z * Math.Log(u[i]) / v;
        }
    }
}
