using System.Globalization;
using System.Text.Json.Serialization;
using CptLab.Core;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.Optimization;

namespace CptLab.Laws.Registry;

/// <summary>Whether residuals are taken on log L (as Hoffmann et al., Epoch AI and the sweep fit do) or on L.</summary>
public enum LossSpace { Log, Linear }

/// <summary>Options of <see cref="LawTableFitter.Fit"/>.</summary>
public sealed record LawFitOptions
{
    /// <summary>A fixed Huber δ (Epoch AI used 1e-3 on log L). Null: δ = 1.345·MAD of the least-squares residuals, the sweep fit's rule.</summary>
    public double? HuberDelta { get; init; }
    public LossSpace Loss { get; init; } = LossSpace.Log;
    /// <summary>Starts drawn at random (uniform over each gridded parameter's grid range) beside the law's grid.</summary>
    public int RandomStarts { get; init; }
    /// <summary>When the grid has more points than this, an evenly spaced subset of them is used (null: all).</summary>
    public int? MaxGridStarts { get; init; }
    public int Seed { get; init; }
    /// <summary>Pairs-bootstrap replicates for the parameter intervals (0: none).</summary>
    public int Bootstrap { get; init; }
    public double Confidence { get; init; } = 0.95;
    /// <summary>Law input → table column, where the column is not named like the input.</summary>
    public IReadOnlyDictionary<string, string>? InputColumns { get; init; }
    /// <summary>The column holding the loss L.</summary>
    public string LossColumn { get; init; } = "loss";
    /// <summary>Narrower bounds than the law's own for some parameters, by name.</summary>
    public IReadOnlyDictionary<string, (double Lower, double Upper)>? Bounds { get; init; }
    /// <summary>Upper limit on IRLS reweightings of the Huber stage (each a weighted Levenberg–Marquardt solve).</summary>
    public int MaxReweightings { get; init; } = 500;
}

/// <summary>One fitted parameter, with its bootstrap interval when one was asked for.</summary>
public sealed record FittedLawParameter(string Name, double Value, double? Lower, double? Upper, bool AtBound);

/// <summary>
/// One optimiser stage of a table fit and how it ended: "levenberg_marquardt" (converged: at least one start
/// reached finite parameters inside the bounds), "irls_huber" (converged: the objective's relative change fell
/// below 1e-10, or a step stopped lowering it, before the reweighting limit), "bfgs" (converged: MathNet's BFGS
/// met its tolerances inside the bounds; whether it was kept is in <see cref="Detail"/>).
/// </summary>
public sealed record LawFitStage(string Name, bool Converged, string Detail);

/// <summary>How the bootstrap intervals were made.</summary>
public sealed record LawBootstrapSummary(int Replicates, int Failed, double Confidence, string Method);

/// <summary>The result of a table fit: every number a reader needs to judge it, in the order it is printed.</summary>
public sealed record LawTableFit(
    string Law,
    string Formula,
    string Source,
    IReadOnlyDictionary<string, string> InputColumns,
    string LossColumn,
    string LossSpace,
    int Points,
    IReadOnlyList<FittedLawParameter> Parameters,
    double HuberDelta,
    string HuberDeltaRule,
    string Optimizer,
    IReadOnlyList<LawFitStage> Stages,
    int StartsTried,
    int StartsConverged,
    int Reweightings,
    double Objective,
    double ResidualRms,
    LawBootstrapSummary? Bootstrap,
    int Seed)
{
    [JsonIgnore] public LawDefinition? Definition { get; init; }

    public double this[string parameter] => Parameters.First(p => p.Name == parameter).Value;

    /// <summary>The fitted law's loss L at the given inputs (in the law's input order).</summary>
    public double Predict(params double[] inputs)
    {
        var law = Definition ?? throw new InvalidOperationException("a deserialised fit carries no law; look it up with LawRegistry.Get(Law)");
        var v = law.Value!(inputs, Parameters.Select(p => p.Value).ToArray());
        return law.Output == LawOutput.LogLoss ? Math.Exp(v) : v;
    }

    /// <summary>
    /// The value of input <paramref name="input"/> in [lo, hi] at which the fitted loss equals
    /// <paramref name="loss"/> (the other inputs fixed at <paramref name="others"/>), by bisection; null when the
    /// loss does not cross that level in the interval. The critical proportion of a forgetting bound is this.
    /// </summary>
    public double? InputAt(string input, double loss, double lo, double hi, IReadOnlyDictionary<string, double>? others = null)
    {
        var law = Definition ?? throw new InvalidOperationException("a deserialised fit carries no law");
        var k = law.Inputs.ToList().FindIndex(i => i.Name == input);
        if (k < 0) throw new ArgumentException($"{law.Name} has no input '{input}'", nameof(input));
        var x = law.Inputs.Select(i => i.Name == input ? 0 : others?.GetValueOrDefault(i.Name) ?? throw new ArgumentException($"input '{i.Name}' needs a value", nameof(others))).ToArray();
        double F(double v) { x[k] = v; return Predict(x) - loss; }
        var (a, b) = (lo, hi);
        var (fa, fb) = (F(a), F(b));
        if (!double.IsFinite(fa) || !double.IsFinite(fb) || Math.Sign(fa) == Math.Sign(fb)) return fa == 0 ? a : fb == 0 ? b : null;
        for (var it = 0; it < 200 && b - a > 1e-15 * Math.Max(1, Math.Abs(a)); it++)
        {
            var m = 0.5 * (a + b);
            var fm = F(m);
            if (fm == 0) return m;
            if (Math.Sign(fm) == Math.Sign(fa)) (a, fa) = (m, fm); else b = m;
        }
        return 0.5 * (a + b);
    }

    /// <summary>The fit as the CLI prints it.</summary>
    public string Format()
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"law: {Law}: {Formula}");
        sb.AppendLine($"data: {Source}, {Points} points; inputs {string.Join(", ", InputColumns.Select(kv => kv.Key == kv.Value ? kv.Key : $"{kv.Key}={kv.Value}"))}; loss column '{LossColumn}'");
        foreach (var p in Parameters)
        {
            var iv = p.Lower is { } lo && p.Upper is { } hi ? string.Create(ci, $"  [{lo:G6}, {hi:G6}]") : "";
            sb.AppendLine(string.Create(ci, $"  {p.Name,-10} {p.Value,14:G8}{iv}{(p.AtBound ? "  (at its bound)" : "")}"));
        }
        sb.AppendLine(string.Create(ci, $"robust loss: Huber on {(LossSpace == "log" ? "log L" : "L")} residuals, δ = {HuberDelta:G4} ({HuberDeltaRule})"));
        sb.AppendLine("optimiser:");
        foreach (var s in Stages)
            sb.AppendLine($"  {s.Name,-20} {(s.Converged ? "converged" : "NOT converged"),-14} {s.Detail}");
        sb.AppendLine(string.Create(ci, $"starts: {StartsConverged} of {StartsTried} converged; objective Σ huber = {Objective:G8}; residual RMS {ResidualRms:G4}"));
        if (Bootstrap is { } b)
            sb.AppendLine(string.Create(ci, $"intervals: {b.Confidence * 100:0.##}% {b.Method}, {b.Replicates} replicates ({b.Failed} failed)"));
        return sb.ToString();
    }
}

/// <summary>
/// Fits any fittable registry law to any table by robust nonlinear least squares:
/// <code>var fit = LawTableFitter.Fit(LawTable.ReadFile("points.csv"), LawRegistry.Get("chinchilla"), new LawFitOptions { HuberDelta = 1e-3 });</code>
///
/// Stage 1: Levenberg–Marquardt (MathNet) on plain squares from every start — the law's grid over its
/// nonlinear parameters (the linear ones solved by least squares at each grid point) plus random starts — keeping
/// the lowest sum of squares among fits that stay inside the bounds. Stage 2: the Huber objective
/// Σ huber_δ(y_i − f_i(θ)) minimised from there by iteratively reweighted least squares (weights min(1, δ/|e|),
/// each a weighted LM solve), run to convergence of the objective (relative change &lt; 1e-10) rather than
/// the sweep fit's 8 reweightings: with δ = 1e-3 on 0.7% noise nearly every residual exceeds δ and the
/// objective is almost L1, which IRLS approaches slowly. Stage 3: BFGS (MathNet) on the Huber objective from
/// the IRLS optimum, as Epoch AI minimised it with L-BFGS; kept only when it lowers the objective.
/// δ is fixed when given, else 1.345·MAD of the stage-1 residuals (the sweep fit's rule); the output says which.
/// Deterministic for a given seed.
/// </summary>
public static class LawTableFitter
{
    const double HuberTuning = 1.345;

    public static LawTableFit Fit(LawTable table, LawDefinition law, LawFitOptions? options = null)
    {
        options ??= new LawFitOptions();
        if (!law.Fittable)
            throw new CptLabException(law.NotFittableReason ?? $"{law.Name} has no value function to fit");
        if (options.HuberDelta is { } d0 && !(d0 > 0 && double.IsFinite(d0)))
            throw new CptLabException($"Huber δ must be a positive number, is {d0}");
        var data = Bind(table, law, options);
        var bounds = Bounds(law, options);
        var starts = Starts(law, data, options, bounds).ToList();
        var core = FitCore(law, data.X, data.Y, options, bounds, starts);

        LawBootstrapSummary? bootstrap = null;
        double[]? lo = null, hi = null;
        if (options.Bootstrap > 0)
            (bootstrap, lo, hi) = BootstrapIntervals(law, data, options, bounds, core);

        var p = law.Parameters.Select((par, j) => new FittedLawParameter(par.Name, core.Theta[j], lo?[j], hi?[j],
            AtBound(core.Theta[j], bounds[j]))).ToArray();
        return new LawTableFit(
            law.Name, law.Formula, table.Source, data.Columns, options.LossColumn,
            options.Loss == LossSpace.Log ? "log" : "linear", data.Y.Length, p,
            core.Delta, options.HuberDelta is null ? $"1.345·MAD of the least-squares residuals (σ̂ = {core.Delta / HuberTuning:G4}), the sweep fit's rule" : "fixed",
            Optimizer(core), Stages(core, starts.Count), starts.Count, core.Converged, core.Reweightings, core.Objective,
            Math.Sqrt(core.Residuals.Sum(e => e * e) / core.Residuals.Length), bootstrap, options.Seed)
        { Definition = law };
    }

    static string Optimizer(Core c) =>
        $"Levenberg–Marquardt on squares from each start, best kept; then Huber by IRLS ({c.Reweightings} reweightings" +
        (c.IrlsConverged ? ", converged" : ", stopped at the limit") + ")" +
        (c.PolishImproved ? $"; then BFGS on the Huber objective (lowered it by {c.PolishGain:G3})" : "; BFGS on the Huber objective found nothing lower");

    static LawFitStage[] Stages(Core c, int starts) =>
    [
        new("levenberg_marquardt", c.Converged > 0, $"{c.Converged} of {starts} starts converged inside the bounds; the lowest sum of squares kept"),
        new("irls_huber", c.IrlsConverged, $"{c.Reweightings} reweighting{(c.Reweightings == 1 ? "" : "s")}" + (c.IrlsConverged ? "" : " (stopped at the limit)")),
        new("bfgs", c.PolishConverged, c.PolishImproved ? $"lowered the Huber objective by {c.PolishGain:G3}; kept"
            : c.PolishConverged ? "found nothing lower; the IRLS optimum kept" : "failed (line search or bounds); the IRLS optimum kept"),
    ];

    // ---- binding the table ----

    internal sealed record Bound(double[][] X, double[] Y, double[] Loss, IReadOnlyDictionary<string, string> Columns);

    static Bound Bind(LawTable table, LawDefinition law, LawFitOptions options)
    {
        if (options.InputColumns is { } map)
            foreach (var key in map.Keys)
                if (law.Inputs.All(i => i.Name != key))
                    throw new CptLabException($"--input {key}=…: law {law.Name} has no input '{key}'; its inputs are {string.Join(", ", law.Inputs.Select(i => i.Name))}");
        var columns = law.Inputs.ToDictionary(i => i.Name, i => options.InputColumns?.GetValueOrDefault(i.Name) ?? i.Name);
        var inputs = law.Inputs.Select(i =>
        {
            var col = columns[i.Name];
            if (!table.Has(col))
                throw new CptLabException($"{table.Source}: no column '{col}' for input {i.Name} ({i.Description}) of law {law.Name}; the table's columns are: {string.Join(", ", table.Columns)}; " +
                                          $"name a column with --input {i.Name}=COLUMN");
            var v = table.Numbers(col, $"input {i.Name}");
            for (var r = 0; r < v.Length; r++)
            {
                if (i.Domain == InputDomain.Positive && !(v[r] > 0))
                    throw new CptLabException($"{table.Source}: {table.Rows[r].Where}, column '{col}': {v[r].ToString(CultureInfo.InvariantCulture)} must be > 0 ({i.Description})");
                if (i.Domain == InputDomain.NonNegative && !(v[r] >= 0))
                    throw new CptLabException($"{table.Source}: {table.Rows[r].Where}, column '{col}': {v[r].ToString(CultureInfo.InvariantCulture)} must be ≥ 0 ({i.Description})");
            }
            return v;
        }).ToArray();
        if (!table.Has(options.LossColumn))
            throw new CptLabException($"{table.Source}: no loss column '{options.LossColumn}'; the table's columns are: {string.Join(", ", table.Columns)}; name the loss column with --target COLUMN");
        var loss = table.Numbers(options.LossColumn, "the loss");
        if (options.Loss == LossSpace.Log)
            for (var r = 0; r < loss.Length; r++)
                if (!(loss[r] > 0))
                    throw new CptLabException($"{table.Source}: {table.Rows[r].Where}, column '{options.LossColumn}': loss {loss[r].ToString(CultureInfo.InvariantCulture)} is not positive; --loss log fits log L and needs L > 0 (use --loss linear for a quantity that can be ≤ 0)");
        var p = law.ParameterCount;
        if (loss.Length < p + 1)
            throw new CptLabException($"{table.Source}: law {law.Name} has {p} parameters and needs ≥ {p + 1} points (p+1), the table has {loss.Length}");
        var x = Enumerable.Range(0, loss.Length).Select(r => inputs.Select(col => col[r]).ToArray()).ToArray();
        var y = options.Loss == LossSpace.Log ? loss.Select(v => Math.Log(v)).ToArray() : loss.ToArray();
        return new Bound(x, y, loss, columns);
    }

    static (double Lower, double Upper)[] Bounds(LawDefinition law, LawFitOptions options)
    {
        if (options.Bounds is { } user)
            foreach (var name in user.Keys)
                if (law.ParameterIndex(name) < 0)
                    throw new CptLabException($"bounds: law {law.Name} has no parameter '{name}'; its parameters are {string.Join(", ", law.Parameters.Select(p => p.Name))}");
        return law.Parameters.Select(p =>
        {
            if (options.Bounds?.TryGetValue(p.Name, out var b) == true)
            {
                if (!(b.Lower < b.Upper)) throw new CptLabException($"bounds of {p.Name}: lower {b.Lower} must be below upper {b.Upper}");
                return (Math.Max(b.Lower, p.Lower), Math.Min(b.Upper, p.Upper));
            }
            return (p.Lower, p.Upper);
        }).ToArray();
    }

    static bool Inside(double[] theta, (double Lower, double Upper)[] bounds)
    {
        for (var j = 0; j < theta.Length; j++)
        {
            var (lo, hi) = bounds[j];
            var tol = 1e-9 * Math.Max(1, Math.Abs(theta[j]));
            if (theta[j] < lo - tol || theta[j] > hi + tol) return false;
        }
        return true;
    }

    static bool AtBound(double v, (double Lower, double Upper) b) =>
        (double.IsFinite(b.Lower) && Math.Abs(v - b.Lower) <= 1e-6 * Math.Max(1, Math.Abs(b.Lower))) ||
        (double.IsFinite(b.Upper) && Math.Abs(v - b.Upper) <= 1e-6 * Math.Max(1, Math.Abs(b.Upper)));

    // ---- starts ----

    /// <summary>The grid over the nonlinear parameters (× random points), with the linear parameters solved at each.</summary>
    static IEnumerable<double[]> Starts(LawDefinition law, Bound data, LawFitOptions options, (double Lower, double Upper)[] bounds)
    {
        var p = law.ParameterCount;
        var linear = law.LinearParameters.Select(name => law.ParameterIndex(name)).ToArray();
        if (linear.Any(j => j < 0)) throw new InvalidOperationException($"{law.Name}: a linear parameter is not among its parameters");
        var nonlinear = Enumerable.Range(0, p).Where(j => !linear.Contains(j)).ToArray();
        var grids = nonlinear.Select(j =>
        {
            var par = law.Parameters[j];
            if (par.GridFromInput is { } input)
            {
                var k = law.Inputs.ToList().FindIndex(i => i.Name == input);
                var col = data.X.Select(r => r[k]).OrderBy(v => v).ToArray();
                return new[] { 0, 0.25, 0.5, 0.75, 1 }.Select(q => SurfaceSearch.Quantile(col, q)).Distinct().ToArray();
            }
            if (par.Grid.Count == 0) throw new InvalidOperationException($"{law.Name}: parameter {par.Name} is neither linear nor gridded");
            return par.Grid.ToArray();
        }).ToArray();

        var combos = new List<double[]>();
        void Walk(int level, double[] current)
        {
            if (level == nonlinear.Length) { combos.Add((double[])current.Clone()); return; }
            foreach (var v in grids[level]) { current[level] = v; Walk(level + 1, current); }
        }
        Walk(0, new double[nonlinear.Length]);
        if (options.MaxGridStarts is { } max && max > 0 && combos.Count > max)
            combos = Enumerable.Range(0, max).Select(i => combos[(int)((long)i * combos.Count / max)]).ToList();
        var rng = new Random(options.Seed);
        for (var i = 0; i < options.RandomStarts; i++)
            combos.Add(grids.Select(g => g.Min() + (g.Max() - g.Min()) * rng.NextDouble()).ToArray());

        foreach (var combo in combos)
        {
            var theta = new double[p];
            for (var k = 0; k < nonlinear.Length; k++) theta[nonlinear[k]] = combo[k];
            if (linear.Length > 0) SolveLinear(law, data, theta, linear);
            for (var j = 0; j < p; j++) theta[j] = Math.Clamp(theta[j], bounds[j].Lower, bounds[j].Upper);
            if (theta.All(double.IsFinite)) yield return theta;
        }
    }

    /// <summary>
    /// Variable projection for the start: with the nonlinear parameters fixed the law is linear in the others,
    /// L = f0 + Σ θ_j φ_j, so they are the least-squares solution on L (by SVD, which survives a collinear basis
    /// such as α = 0 making A/N^α a constant beside E).
    /// </summary>
    static void SolveLinear(LawDefinition law, Bound data, double[] theta, int[] linear)
    {
        var n = data.Loss.Length;
        var a = Matrix<double>.Build.Dense(n, linear.Length);
        var rhs = Vector<double>.Build.Dense(n);
        var t = (double[])theta.Clone();
        foreach (var j in linear) t[j] = 0;
        for (var i = 0; i < n; i++)
        {
            var f0 = law.Value!(data.X[i], t);
            rhs[i] = data.Loss[i] - f0;
            for (var k = 0; k < linear.Length; k++)
            {
                t[linear[k]] = 1;
                a[i, k] = law.Value(data.X[i], t) - f0;
                t[linear[k]] = 0;
            }
        }
        try
        {
            var sol = a.Svd().Solve(rhs);
            for (var k = 0; k < linear.Length; k++) theta[linear[k]] = sol[k];
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ArithmeticException or MathNet.Numerics.NonConvergenceException)
        {
            foreach (var j in linear) theta[j] = double.NaN;
        }
    }

    // ---- the fit ----

    internal sealed record Core(double[] Theta, double[] Residuals, double Delta, double Objective, int Converged, int Reweightings,
        bool IrlsConverged, bool PolishConverged, bool PolishImproved, double PolishGain);

    static Core FitCore(LawDefinition law, double[][] x, double[] y, LawFitOptions options, (double Lower, double Upper)[] bounds, IReadOnlyList<double[]> starts)
    {
        var model = new TableModel(law, x, options.Loss);
        double[]? best = null;
        var bestRss = double.PositiveInfinity;
        var converged = 0;
        foreach (var start in starts)
        {
            var theta = RobustLeastSquares.Solve(model, y, start, weights: null);
            if (theta is null || !Inside(theta, bounds)) continue;
            var rss = Rss(model, y, theta);
            if (!double.IsFinite(rss)) continue;
            converged++;
            if (rss < bestRss) (bestRss, best) = (rss, theta);
        }
        if (best is null)
            throw new CptLabException($"law {law.Name}: no start converged to finite parameters inside the bounds ({starts.Count} starts); check the loss column and the inputs' units, or give wider bounds");

        // MathNet's LM stops early on badly scaled laws (A ≈ 500 beside α ≈ 0.35 and N ≈ 1e9): restarted from its
        // own optimum (fresh damping) it keeps going. The least-squares optimum matters beyond being a start: the
        // MAD rule reads δ off its residuals.
        for (var it = 0; it < 50; it++)
        {
            var theta = SolveScaled(model, y, best, weights: null);
            if (theta is null || !Inside(theta, bounds)) break;
            var rss = Rss(model, y, theta);
            if (!(rss < bestRss * (1 - 1e-12))) break;
            (best, bestRss) = (theta, rss);
        }

        var residuals = RobustLeastSquares.Residuals(model, y, best);
        var delta = options.HuberDelta ?? HuberTuning * Math.Max(RobustLeastSquares.ScaledMad(residuals), 1e-6);
        var objective = HuberSum(residuals, delta);

        // Stage 2: IRLS. Each weighted solve minimises a quadratic majoriser of the Huber objective that touches it
        // at the current residuals, so the objective cannot rise when the solve succeeds; a step that raises it
        // (an inexact solve) or leaves the bounds ends the iteration.
        var weights = new double[y.Length];
        var reweightings = 0;
        var irlsConverged = false;
        for (var it = 0; it < options.MaxReweightings; it++)
        {
            for (var i = 0; i < y.Length; i++) weights[i] = Math.Abs(residuals[i]) <= delta ? 1.0 : delta / Math.Abs(residuals[i]);
            var theta = SolveScaled(model, y, best, weights);
            reweightings++;
            if (theta is null || !Inside(theta, bounds)) { irlsConverged = true; break; }
            var e = RobustLeastSquares.Residuals(model, y, theta);
            var obj = HuberSum(e, delta);
            if (!(obj < objective)) { irlsConverged = true; break; }
            var gain = (objective - obj) / Math.Max(objective, 1e-300);
            (best, residuals, objective) = (theta, e, obj);
            if (gain < 1e-10) { irlsConverged = true; break; }
        }

        // Stage 3: BFGS on the Huber objective itself (scaled by 1/δ so its gradient is O(residuals), whatever δ).
        var (polished, gainBfgs) = Polish(model, y, best, delta, bounds);
        var improved = false;
        if (polished is not null)
        {
            var e = RobustLeastSquares.Residuals(model, y, polished);
            var obj = HuberSum(e, delta);
            if (obj < objective * (1 - 1e-12))
            {
                gainBfgs = objective - obj;
                (best, residuals, objective, improved) = (polished, e, obj, true);
            }
        }
        return new Core(best, residuals, delta, objective, converged, reweightings, irlsConverged, polished is not null, improved, improved ? gainBfgs : 0);
    }

    static (double[]? Theta, double Gain) Polish(TableModel model, double[] y, double[] start, double delta, (double Lower, double Upper)[] bounds)
    {
        var p = model.ParameterCount;
        double F(Vector<double> v)
        {
            var t = v.ToArray();
            var s = 0.0;
            for (var i = 0; i < y.Length; i++) s += RobustLeastSquares.Huber(y[i] - model.Value(t, i), delta);
            return double.IsFinite(s) ? s / delta : double.MaxValue;
        }
        Vector<double> G(Vector<double> v)
        {
            var t = v.ToArray();
            var g = new double[p];
            Span<double> gi = stackalloc double[p];
            for (var i = 0; i < y.Length; i++)
            {
                var e = y[i] - model.Value(t, i);
                var psi = Math.Clamp(e, -delta, delta) / delta;
                model.Gradient(t, i, gi);
                for (var j = 0; j < p; j++) g[j] -= psi * gi[j];
            }
            return Vector<double>.Build.DenseOfArray(g);
        }
        try
        {
            var result = new BfgsMinimizer(1e-10, 1e-14, 1e-14, 2000)
                .FindMinimum(ObjectiveFunction.Gradient(F, G), Vector<double>.Build.DenseOfArray(start));
            var theta = result.MinimizingPoint.ToArray();
            return theta.All(double.IsFinite) && Inside(theta, bounds) ? (theta, 0) : (null, 0);
        }
        catch (Exception e) when (e is OptimizationException or ArgumentException or InvalidOperationException or ArithmeticException or MathNet.Numerics.NonConvergenceException)
        {
            return (null, 0); // a failed line search leaves the IRLS optimum in place
        }
    }

    /// <summary>
    /// One (weighted) LM solve in parameters scaled by the start's magnitudes, θ = s ⊙ u with s_j = max(|θ_j|, 1e-3):
    /// MathNet's damping is not scale-invariant, and unscaled it crawls when A ≈ 500 sits beside α ≈ 0.35.
    /// </summary>
    static double[]? SolveScaled(IResidualModel model, double[] y, double[] start, double[]? weights)
    {
        var s = start.Select(v => Math.Max(Math.Abs(v), 1e-3)).ToArray();
        var scaled = new ScaledModel(model, s);
        var u = RobustLeastSquares.Solve(scaled, y, start.Select((v, j) => v / s[j]).ToArray(), weights);
        return u?.Select((v, j) => v * s[j]).ToArray();
    }

    sealed class ScaledModel(IResidualModel inner, double[] s) : IResidualModel
    {
        public int ParameterCount => inner.ParameterCount;
        public int ObservationCount => inner.ObservationCount;

        public double Value(ReadOnlySpan<double> u, int i)
        {
            Span<double> t = stackalloc double[u.Length];
            for (var j = 0; j < u.Length; j++) t[j] = u[j] * s[j];
            return inner.Value(t, i);
        }

        public void Gradient(ReadOnlySpan<double> u, int i, Span<double> g)
        {
            Span<double> t = stackalloc double[u.Length];
            for (var j = 0; j < u.Length; j++) t[j] = u[j] * s[j];
            inner.Gradient(t, i, g);
            for (var j = 0; j < u.Length; j++) g[j] *= s[j];
        }
    }

    static double HuberSum(double[] e, double delta) => e.Sum(v => RobustLeastSquares.Huber(v, delta));

    static double Rss(IResidualModel model, double[] y, double[] theta)
    {
        var s = 0.0;
        for (var i = 0; i < y.Length; i++) { var e = y[i] - model.Value(theta, i); s += e * e; }
        return s;
    }

    // ---- bootstrap ----

    /// <summary>
    /// Pairs bootstrap: rows resampled with replacement (so a wrong law's misfit is resampled with the noise,
    /// unlike a residual bootstrap), each replicate refitted from the full-data optimum with the same δ rule
    /// (a fixed δ stays fixed; the MAD rule is re-applied to the replicate), percentile intervals.
    /// </summary>
    static (LawBootstrapSummary, double[] Lo, double[] Hi) BootstrapIntervals(LawDefinition law, Bound data, LawFitOptions options,
        (double Lower, double Upper)[] bounds, Core full)
    {
        var p = law.ParameterCount;
        var samples = Enumerable.Range(0, p).Select(_ => new List<double>()).ToArray();
        var failed = 0;
        var n = data.Y.Length;
        for (var b = 0; b < options.Bootstrap; b++)
        {
            var rng = new Random(unchecked(options.Seed * 1_000_003 + b * 7919 + 17)); // HashCode.Combine is salted per process
            var idx = Enumerable.Range(0, n).Select(_ => rng.Next(n)).ToArray();
            try
            {
                var c = FitCore(law, idx.Select(i => data.X[i]).ToArray(), idx.Select(i => data.Y[i]).ToArray(), options, bounds, [full.Theta]);
                for (var j = 0; j < p; j++) samples[j].Add(c.Theta[j]);
            }
            catch (CptLabException) { failed++; }
        }
        var alpha = (1 - options.Confidence) / 2;
        var lo = samples.Select(s => s.Count >= 2 ? SurfaceSearch.Quantile(s, alpha) : double.NaN).ToArray();
        var hi = samples.Select(s => s.Count >= 2 ? SurfaceSearch.Quantile(s, 1 - alpha) : double.NaN).ToArray();
        return (new LawBootstrapSummary(options.Bootstrap, failed, options.Confidence,
            "pairs bootstrap (rows resampled with replacement, each replicate refitted from the full fit), percentile intervals"), lo, hi);
    }

    /// <summary>The law over the table's rows in the chosen loss space: log of the law's L, or its L.</summary>
    internal sealed class TableModel(LawDefinition law, double[][] x, LossSpace space) : IResidualModel
    {
        public int ParameterCount => law.ParameterCount;
        public int ObservationCount => x.Length;

        public double Value(ReadOnlySpan<double> theta, int i)
        {
            var v = law.Value!(x[i], theta);
            return (law.Output, space) switch
            {
                (LawOutput.Loss, LossSpace.Log) => Math.Log(Math.Max(v, 1e-12)),
                (LawOutput.LogLoss, LossSpace.Linear) => Math.Exp(Math.Min(v, 700)),
                _ => v,
            };
        }

        public void Gradient(ReadOnlySpan<double> theta, int i, Span<double> gradient)
        {
            law.EvaluateGradient(x[i], theta, gradient);
            var v = law.Value!(x[i], theta);
            var scale = (law.Output, space) switch
            {
                (LawOutput.Loss, LossSpace.Log) => 1 / Math.Max(v, 1e-12),
                (LawOutput.LogLoss, LossSpace.Linear) => Math.Exp(Math.Min(v, 700)),
                _ => 1.0,
            };
            if (scale != 1.0) for (var j = 0; j < gradient.Length; j++) gradient[j] *= scale;
        }
    }
}
