using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.Optimization;

namespace CptLab.Laws;

/// <summary>
/// A parametric model of observations y_i (here always log-losses): the value of observation i under
/// parameters θ, and its gradient with respect to θ.
/// </summary>
internal interface IResidualModel
{
    int ParameterCount { get; }
    int ObservationCount { get; }
    double Value(ReadOnlySpan<double> theta, int i);
    void Gradient(ReadOnlySpan<double> theta, int i, Span<double> gradient);
}

internal sealed record RobustFitResult(double[] Parameters, double[] Residuals, double HuberDelta, double HuberLoss, double Rss);

/// <summary>
/// Robust nonlinear least squares: minimises Σ huber_δ(y_i − f_i(θ)).
///
/// Stage 1 runs Levenberg–Marquardt (MathNet.Numerics) on plain squares from every start and keeps the best,
/// so local minima of the nonlinear laws are escaped by the starts. Stage 2 turns that into the Huber fit by
/// iteratively reweighted least squares: weights w_i = min(1, δ/|e_i|) with δ = 1.345·σ̂ and σ̂ the scaled MAD
/// of the stage-1 residuals, each reweighting a weighted LM solve from the previous optimum. A diverged or
/// mislabelled run then pulls the law with a force bounded by δ instead of growing with its residual.
/// </summary>
internal static class RobustLeastSquares
{
    const double HuberTuning = 1.345;
    const int MaxReweightings = 8;

    public static RobustFitResult Fit(IResidualModel model, double[] y, IEnumerable<double[]> starts)
    {
        var n = model.ObservationCount;
        var p = model.ParameterCount;
        if (y.Length != n) throw new ArgumentException("observation count mismatch", nameof(y));

        double[]? best = null;
        var bestRss = double.PositiveInfinity;
        foreach (var start in starts)
        {
            var theta = Solve(model, y, start, weights: null);
            if (theta is null) continue;
            var rss = WeightedRss(model, y, theta, null);
            if (rss < bestRss)
            {
                bestRss = rss;
                best = theta;
            }
        }
        if (best is null) throw new FitFailedException("no start converged to finite parameters");

        var residuals = Residuals(model, y, best);
        var sigma = Math.Max(ScaledMad(residuals), 1e-6);
        var delta = HuberTuning * sigma;
        var weights = new double[n];
        for (var iter = 0; iter < MaxReweightings; iter++)
        {
            var changed = 0.0;
            for (var i = 0; i < n; i++)
            {
                var w = Math.Abs(residuals[i]) <= delta ? 1.0 : delta / Math.Abs(residuals[i]);
                changed = Math.Max(changed, Math.Abs(w - weights[i]));
                weights[i] = w;
            }
            if (changed < 1e-3) break;
            if (weights.All(w => w == 1.0) && iter > 0) break;
            var theta = Solve(model, y, best, weights);
            if (theta is null) break;
            best = theta;
            residuals = Residuals(model, y, best);
        }
        var huber = residuals.Sum(e => Huber(e, delta));
        return new RobustFitResult(best, residuals, delta, huber, residuals.Sum(e => e * e));
    }

    public static double Huber(double e, double delta)
    {
        var a = Math.Abs(e);
        return a <= delta ? 0.5 * e * e : delta * (a - 0.5 * delta);
    }

    /// <summary>1.4826 · median |e − median(e)|: the residuals' standard deviation, were they Gaussian, untouched by outliers.</summary>
    public static double ScaledMad(IReadOnlyList<double> e)
    {
        var med = Median(e);
        return 1.4826 * Median(e.Select(v => Math.Abs(v - med)).ToArray());
    }

    public static double Median(IReadOnlyList<double> values)
    {
        var s = values.ToArray();
        Array.Sort(s);
        var m = s.Length / 2;
        return s.Length % 2 == 1 ? s[m] : 0.5 * (s[m - 1] + s[m]);
    }

    public static double[] Residuals(IResidualModel model, double[] y, double[] theta)
    {
        var e = new double[y.Length];
        for (var i = 0; i < y.Length; i++) e[i] = y[i] - model.Value(theta, i);
        return e;
    }

    static double WeightedRss(IResidualModel model, double[] y, double[] theta, double[]? w)
    {
        var s = 0.0;
        for (var i = 0; i < y.Length; i++)
        {
            var e = y[i] - model.Value(theta, i);
            s += (w?[i] ?? 1.0) * e * e;
        }
        return double.IsFinite(s) ? s : double.PositiveInfinity;
    }

    /// <summary>One (weighted) Levenberg–Marquardt solve; null when it produced no finite improvement. The table fitter (Registry/LawTableFitter.cs) calls it too.</summary>
    internal static double[]? Solve(IResidualModel model, double[] y, double[] start, double[]? weights)
    {
        var n = model.ObservationCount;
        var p = model.ParameterCount;
        if (start.Length != p || start.Any(v => !double.IsFinite(v))) return null;

        // MathNet's model function receives the independent variable as a vector; we pass the observation
        // indices and let the model look its own inputs up, since our inputs are (ALMR, log LR) pairs.
        Vector<double> F(Vector<double> theta, Vector<double> idx)
        {
            var t = theta.AsArray() ?? theta.ToArray();
            var v = Vector<double>.Build.Dense(n);
            for (var i = 0; i < n; i++) v[i] = model.Value(t, i);
            return v;
        }

        Matrix<double> J(Vector<double> theta, Vector<double> idx)
        {
            var t = theta.AsArray() ?? theta.ToArray();
            var m = Matrix<double>.Build.Dense(n, p);
            Span<double> g = stackalloc double[p];
            for (var i = 0; i < n; i++)
            {
                model.Gradient(t, i, g);
                for (var j = 0; j < p; j++) m[i, j] = g[j];
            }
            return m;
        }

        var xs = Vector<double>.Build.Dense(n, i => i);
        var ys = Vector<double>.Build.DenseOfArray(y);
        var objective = weights is null
            ? ObjectiveFunction.NonlinearModel(F, J, xs, ys)
            : ObjectiveFunction.NonlinearModel(F, J, xs, ys, Vector<double>.Build.DenseOfArray(weights));
        var lm = new LevenbergMarquardtMinimizer(initialMu: 1e-3, gradientTolerance: 1e-12, stepTolerance: 1e-12,
            functionTolerance: 1e-18, maximumIterations: 400);
        try
        {
            var result = lm.FindMinimum(objective, Vector<double>.Build.DenseOfArray(start));
            var theta = result.MinimizingPoint.ToArray();
            if (theta.Any(v => !double.IsFinite(v))) return null;
            var rss = WeightedRss(model, y, theta, weights);
            var rss0 = WeightedRss(model, y, start, weights);
            if (!double.IsFinite(rss)) return null;
            return rss <= rss0 ? theta : start.ToArray();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ArithmeticException or MathNet.Numerics.NonConvergenceException
                                   or MathNet.Numerics.Optimization.OptimizationException)
        {
            return null;
        }
    }
}

/// <summary>Internal: a fit found no finite optimum; callers turn it into a CptLabException with context.</summary>
internal sealed class FitFailedException(string message) : Exception(message);
