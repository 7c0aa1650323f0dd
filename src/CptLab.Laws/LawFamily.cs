using MathNet.Numerics.LinearAlgebra;

namespace CptLab.Laws;

/// <summary>The law families that compete, by leave-one-out error, to describe a sweep.</summary>
public enum LawKind
{
    /// <summary>log L = a(r) + b(r)·x + c(r)·x², x = log10 η, each coefficient linear in r (6 parameters per language).</summary>
    ResponseSurfaceLinear,
    /// <summary>The same with each coefficient quadratic in r (9 parameters per language).</summary>
    ResponseSurfaceQuadratic,
    /// <summary>L(r) = c + k·exp(t·r) at each swept LR (3 parameters per language and LR), interpolated across LRs by a natural cubic spline in x.</summary>
    MixingLaw,
    /// <summary>log L = a + b·x + c·x² (3 parameters per language): a sweep of one ALMR over LRs, the LR question alone.</summary>
    ResponseSurfaceConstant,
}

/// <summary>One observation of one language: ALMR r, x = log10 η, and y = log of the validation loss.</summary>
internal readonly record struct Obs(double R, double X, double Y);

/// <summary>A law fitted to one language: predicts the log-loss at any (r, x).</summary>
internal abstract class LanguageLaw
{
    public abstract double[] Parameters { get; }
    public abstract IReadOnlyList<string> ParameterNames { get; }
    public abstract double PredictLog(double r, double x);
    /// <summary>Fixed numbers the formula uses besides the parameters (a response surface's centre).</summary>
    public virtual IReadOnlyDictionary<string, double>? Constants => null;
    public double HuberDelta { get; init; }
    public double RmsResidual { get; init; }
}

/// <summary>A family of laws: says whether a set of observations can support it, and fits it robustly.</summary>
internal abstract class LawFamily
{
    public abstract LawKind Kind { get; }
    public abstract string Formula { get; }

    /// <summary>The number of parameters for one language fitted on these observations.</summary>
    public abstract int ParameterCount(IReadOnlyList<Obs> obs);

    /// <summary>Null when the observations can support the law and its leave-one-out check; otherwise what is missing.</summary>
    public abstract string? WhyIneligible(IReadOnlyList<Obs> obs);

    /// <summary>Fits one language. <paramref name="warm"/> (a previous fit of the same family) is tried as a start first.</summary>
    public abstract LanguageLaw Fit(IReadOnlyList<Obs> obs, LanguageLaw? warm, Random rng, int starts);

    /// <summary>
    /// Diagonal of the hat matrix J(JᵀJ)⁻¹Jᵀ at the fit, per observation (J: the Jacobian of the predictions with
    /// respect to the parameters). A residual at leverage h has variance σ²(1 − h), so the bootstrap divides by
    /// √(1 − h) to resample errors of the right size.
    /// </summary>
    public abstract double[] Leverages(IReadOnlyList<Obs> obs, LanguageLaw law);

    internal static double[] HatDiagonal(Matrix<double> j)
    {
        var n = j.RowCount;
        var h = new double[n];
        try
        {
            var svd = j.Svd(computeVectors: true);
            var rank = svd.S.Count(v => v > 1e-10 * svd.S[0]);
            var u = svd.U;
            for (var i = 0; i < n; i++)
            {
                var s = 0.0;
                for (var k = 0; k < rank; k++) s += u[i, k] * u[i, k];
                h[i] = Math.Min(s, 0.99);
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ArithmeticException or MathNet.Numerics.NonConvergenceException)
        {
            Array.Fill(h, Math.Min(0.99, (double)j.ColumnCount / Math.Max(1, n)));
        }
        return h;
    }

    internal static Matrix<double> Jacobian(IResidualModel model, double[] theta)
    {
        var m = Matrix<double>.Build.Dense(model.ObservationCount, model.ParameterCount);
        var g = new double[model.ParameterCount];
        for (var i = 0; i < model.ObservationCount; i++)
        {
            model.Gradient(theta, i, g);
            for (var k = 0; k < g.Length; k++) m[i, k] = g[k];
        }
        return m;
    }

    public static LawFamily For(LawKind kind) => kind switch
    {
        LawKind.ResponseSurfaceLinear => new ResponseSurfaceFamily(1),
        LawKind.ResponseSurfaceQuadratic => new ResponseSurfaceFamily(2),
        LawKind.MixingLaw => new MixingLawFamily(),
        LawKind.ResponseSurfaceConstant => new ResponseSurfaceFamily(0),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static string Name(LawKind kind) => kind switch
    {
        LawKind.ResponseSurfaceLinear => "response_surface_linear",
        LawKind.ResponseSurfaceQuadratic => "response_surface_quadratic",
        LawKind.MixingLaw => "mixing_law",
        LawKind.ResponseSurfaceConstant => "response_surface_constant",
        _ => kind.ToString(),
    };

    internal static int Distinct(IEnumerable<double> values) => values.Select(v => Math.Round(v, 9)).Distinct().Count();

    internal static double Rms(double[] e) => Math.Sqrt(e.Sum(v => v * v) / Math.Max(1, e.Length));
}

/// <summary>
/// (a) Response surface: log L(r, x) = a(r) + b(r)·x + c(r)·x² with a, b, c polynomials of degree D in r.
/// Quadratic in x = log10 η, so for each r the loss has one optimal LR, x*(r) = −b(r) / 2c(r) when c(r) &gt; 0.
/// Modelling the log-loss (rather than the loss) keeps every prediction positive and makes the Huber fit on
/// log-loss a robust linear regression, which starts from its exact least-squares solution.
/// The law is written around the centre (r0, x0) of the swept box, u = r − r0 and z = x − x0, because raw
/// powers of x ≈ −4 are nearly collinear and their coefficients meaningless; the centred ones are the loss,
/// slope and curvature at the middle of the sweep. Shifting the centre changes the parameters, never the fit.
/// Parameters: a0..aD, b0..bD, c0..cD (coefficient of u^k), with r0 and x0 reported as constants.
/// </summary>
internal sealed class ResponseSurfaceFamily(int degree) : LawFamily
{
    readonly int _terms = degree + 1;

    public override LawKind Kind => degree switch
    {
        0 => LawKind.ResponseSurfaceConstant,
        1 => LawKind.ResponseSurfaceLinear,
        _ => LawKind.ResponseSurfaceQuadratic,
    };
    public override string Formula => degree switch
    {
        0 => "log L = a0 + b0·z + c0·z², z = log10 lr − x0 (one ALMR swept: no term in r)",
        1 => "log L = (a0 + a1·u) + (b0 + b1·u)·z + (c0 + c1·u)·z², u = r − r0, z = log10 lr − x0",
        _ => "log L = (a0 + a1·u + a2·u²) + (b0 + b1·u + b2·u²)·z + (c0 + c1·u + c2·u²)·z², u = r − r0, z = log10 lr − x0",
    };

    public override int ParameterCount(IReadOnlyList<Obs> obs) => 3 * _terms;

    public override string? WhyIneligible(IReadOnlyList<Obs> obs)
    {
        var p = 3 * _terms;
        if (Distinct(obs.Select(o => o.X)) < 3)
            return $"needs at least 3 distinct learning rates (a quadratic in log10 lr), has {Distinct(obs.Select(o => o.X))}";
        // Degree 0 describes a sweep of one ALMR only: on a grid it would claim the ALMR does not matter.
        if (degree == 0 && Distinct(obs.Select(o => o.R)) != 1)
            return $"is for a sweep of one ALMR (the LR question alone); this one has {Distinct(obs.Select(o => o.R))}";
        if (degree > 0 && Distinct(obs.Select(o => o.R)) < _terms + 1)
            return $"needs at least {_terms + 1} distinct ALMR values for coefficients of degree {degree} in r, has {Distinct(obs.Select(o => o.R))}";
        if (obs.Count < p + 1)
            return $"needs at least {p + 1} successful runs ({p} parameters per language, plus one to leave out), has {obs.Count}";
        return null;
    }

    public override LanguageLaw Fit(IReadOnlyList<Obs> obs, LanguageLaw? warm, Random rng, int starts)
    {
        // A warm start keeps its centre so its parameters stay a valid start; otherwise centre on the box.
        var (r0, x0) = warm is Fitted w0 ? (w0.R0, w0.X0)
            : (0.5 * (obs.Min(o => o.R) + obs.Max(o => o.R)), 0.5 * (obs.Min(o => o.X) + obs.Max(o => o.X)));
        var model = new Model(obs, _terms, r0, x0);
        var y = obs.Select(o => o.Y).ToArray();
        var startList = new List<double[]>();
        if (warm is Fitted w) startList.Add(w.Parameters);
        startList.Add(LeastSquaresStart(model, y));
        var fit = RobustLeastSquares.Fit(model, y, startList);
        return new Fitted(fit.Parameters, _terms, r0, x0) { HuberDelta = fit.HuberDelta, RmsResidual = Rms(fit.Residuals) };
    }

    public override double[] Leverages(IReadOnlyList<Obs> obs, LanguageLaw law) =>
        HatDiagonal(Jacobian(new Model(obs, _terms, ((Fitted)law).R0, ((Fitted)law).X0), law.Parameters));

    /// <summary>The exact least-squares solution (the model is linear in its parameters), by SVD.</summary>
    static double[] LeastSquaresStart(Model model, double[] y)
    {
        var n = model.ObservationCount;
        var p = model.ParameterCount;
        var a = Matrix<double>.Build.Dense(n, p);
        var g = new double[p];
        var unused = new double[p]; // the basis does not depend on θ
        for (var i = 0; i < n; i++)
        {
            model.Gradient(unused, i, g);
            for (var j = 0; j < p; j++) a[i, j] = g[j];
        }
        try
        {
            var theta = a.Svd().Solve(Vector<double>.Build.DenseOfArray(y)).ToArray();
            return theta.All(double.IsFinite) ? theta : new double[p];
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or MathNet.Numerics.NonConvergenceException)
        {
            return new double[p];
        }
    }

    static double Evaluate(ReadOnlySpan<double> theta, int terms, double r, double x)
    {
        double a = 0, b = 0, c = 0, rk = 1;
        for (var k = 0; k < terms; k++, rk *= r)
        {
            a += theta[k] * rk;
            b += theta[terms + k] * rk;
            c += theta[2 * terms + k] * rk;
        }
        return a + b * x + c * x * x;
    }

    sealed class Model(IReadOnlyList<Obs> obs, int terms, double r0, double x0) : IResidualModel
    {
        public int ParameterCount => 3 * terms;
        public int ObservationCount => obs.Count;
        public double Value(ReadOnlySpan<double> theta, int i) => Evaluate(theta, terms, obs[i].R - r0, obs[i].X - x0);

        public void Gradient(ReadOnlySpan<double> theta, int i, Span<double> g)
        {
            var (r, x) = (obs[i].R - r0, obs[i].X - x0);
            double rk = 1;
            for (var k = 0; k < terms; k++, rk *= r)
            {
                g[k] = rk;
                g[terms + k] = rk * x;
                g[2 * terms + k] = rk * x * x;
            }
        }
    }

    sealed class Fitted(double[] theta, int terms, double r0, double x0) : LanguageLaw
    {
        public double R0 => r0;
        public double X0 => x0;
        public override double[] Parameters => theta;
        public override IReadOnlyList<string> ParameterNames { get; } =
            new[] { "a", "b", "c" }.SelectMany(s => Enumerable.Range(0, terms).Select(k => $"{s}{k}")).ToArray();
        public override IReadOnlyDictionary<string, double>? Constants => new Dictionary<string, double> { ["r0"] = r0, ["x0"] = x0 };
        public override double PredictLog(double r, double x) => Evaluate(theta, terms, r - r0, x - x0);
    }
}

/// <summary>
/// (b) Data-mixing law per language at each swept LR: L(r) = c + k·exp(t·r). Between swept LRs the log-loss is
/// interpolated by a natural cubic spline in x = log10 η (outside them, held by the spline's end segments), so the
/// law still gives a continuous optimal-LR curve. Parameters: c, k, t for each LR, named "c@lr=…".
/// </summary>
internal sealed class MixingLawFamily : LawFamily
{
    static readonly double[] GridRates = [-10, -5, -2, -1, -0.3, 0.3, 1, 2, 5, 10];

    public override LawKind Kind => LawKind.MixingLaw;
    public override string Formula => "L = c + k·exp(t·r) at each swept lr; log L spline-interpolated in x = log10 lr between them";

    public override int ParameterCount(IReadOnlyList<Obs> obs) => 3 * Distinct(obs.Select(o => o.X));

    public override string? WhyIneligible(IReadOnlyList<Obs> obs)
    {
        // One LR: the ALMR question at that LR (the LR taken as given); two or more: interpolated between them.
        foreach (var g in Groups(obs))
        {
            var distinctR = Distinct(g.Select(o => o.R));
            if (distinctR < 4)
                return $"needs at least 4 distinct ALMR values at every learning rate (3 parameters, plus one to leave out); lr={Math.Pow(10, g[0].X):0.###e0} has {distinctR}";
        }
        return null;
    }

    static List<Obs[]> Groups(IReadOnlyList<Obs> obs) =>
        obs.GroupBy(o => Math.Round(o.X, 9)).OrderBy(g => g.Key).Select(g => g.ToArray()).ToList();

    public override LanguageLaw Fit(IReadOnlyList<Obs> obs, LanguageLaw? warm, Random rng, int starts)
    {
        var groups = Groups(obs);
        var xs = new double[groups.Count];
        var theta = new double[3 * groups.Count];
        var deltas = new List<double>();
        var residuals = new List<double>();
        for (var j = 0; j < groups.Count; j++)
        {
            var g = groups[j];
            xs[j] = g[0].X;
            var model = new Model(g);
            var y = g.Select(o => o.Y).ToArray();
            var startList = new List<double[]>();
            if (warm is Fitted w && w.IndexOf(xs[j]) is var wi and >= 0) startList.Add(w.Parameters.AsSpan(3 * wi, 3).ToArray());
            var rates = GridRates.Concat(Enumerable.Range(0, Math.Max(0, starts - GridRates.Length)).Select(_ => -10 + 20 * rng.NextDouble()));
            if (warm is null) foreach (var t in rates) if (LinearStart(g, t) is { } s) startList.Add(s);
            if (startList.Count == 0) startList.Add([Math.Exp(y.Average()), 0, 0]);
            RobustFitResult fit;
            try { fit = RobustLeastSquares.Fit(model, y, startList); }
            catch (FitFailedException) when (warm is not null)
            {
                fit = RobustLeastSquares.Fit(model, y, GridRates.Select(t => LinearStart(g, t)).OfType<double[]>());
            }
            fit.Parameters.CopyTo(theta, 3 * j);
            deltas.Add(fit.HuberDelta);
            residuals.AddRange(fit.Residuals);
        }
        return new Fitted(xs, theta) { HuberDelta = deltas.Average(), RmsResidual = Rms(residuals.ToArray()) };
    }

    public override double[] Leverages(IReadOnlyList<Obs> obs, LanguageLaw law)
    {
        var fitted = (Fitted)law;
        var h = new double[obs.Count];
        foreach (var g in obs.Select((o, i) => (o, i)).GroupBy(p => Math.Round(p.o.X, 9)))
        {
            var members = g.ToArray();
            var j = fitted.IndexOf(members[0].o.X);
            var theta = fitted.Parameters.AsSpan(3 * j, 3).ToArray();
            var hg = HatDiagonal(Jacobian(new Model(members.Select(m => m.o).ToArray()), theta));
            for (var k = 0; k < members.Length; k++) h[members[k].i] = hg[k];
        }
        return h;
    }

    /// <summary>For a fixed rate t, c and k enter linearly: solve them by least squares on the loss itself.</summary>
    static double[]? LinearStart(Obs[] g, double t)
    {
        double s1 = 0, se = 0, see = 0, sy = 0, sey = 0;
        foreach (var o in g)
        {
            var e = Math.Exp(t * o.R);
            var l = Math.Exp(o.Y);
            s1 += 1; se += e; see += e * e; sy += l; sey += e * l;
        }
        var det = s1 * see - se * se;
        if (Math.Abs(det) < 1e-12 * Math.Max(1, s1 * see)) return null;
        var k = (s1 * sey - se * sy) / det;
        var c = (sy - k * se) / s1;
        if (g.Any(o => c + k * Math.Exp(t * o.R) <= 0)) return null;
        return [c, k, t];
    }

    static double LogValue(double c, double k, double t, double r) => Math.Log(Math.Max(c + k * Math.Exp(Math.Clamp(t * r, -50, 50)), 1e-12));

    sealed class Model(Obs[] g) : IResidualModel
    {
        public int ParameterCount => 3;
        public int ObservationCount => g.Length;
        public double Value(ReadOnlySpan<double> th, int i) => LogValue(th[0], th[1], th[2], g[i].R);

        public void Gradient(ReadOnlySpan<double> th, int i, Span<double> grad)
        {
            var r = g[i].R;
            var e = Math.Exp(Math.Clamp(th[2] * r, -50, 50));
            var v = Math.Max(th[0] + th[1] * e, 1e-12);
            grad[0] = 1 / v;
            grad[1] = e / v;
            grad[2] = th[1] * r * e / v;
        }
    }

    sealed class Fitted(double[] xs, double[] theta) : LanguageLaw
    {
        public override double[] Parameters => theta;
        public override IReadOnlyList<string> ParameterNames { get; } =
            xs.SelectMany(x => new[] { "c", "k", "t" }.Select(s => $"{s}@lr={Math.Pow(10, x):0.###e0}")).ToArray();

        public int IndexOf(double x)
        {
            for (var j = 0; j < xs.Length; j++) if (Math.Abs(xs[j] - x) < 1e-9) return j;
            return -1;
        }

        public override double PredictLog(double r, double x)
        {
            var ys = new double[xs.Length];
            for (var j = 0; j < xs.Length; j++) ys[j] = LogValue(theta[3 * j], theta[3 * j + 1], theta[3 * j + 2], r);
            if (xs.Length == 1) return ys[0];
            var exact = IndexOf(x);
            if (exact >= 0) return ys[exact];
            if (xs.Length == 2) return ys[0] + (ys[1] - ys[0]) * (x - xs[0]) / (xs[1] - xs[0]);
            return MathNet.Numerics.Interpolation.CubicSpline.InterpolateNaturalSorted(xs, ys).Interpolate(x);
        }
    }
}
