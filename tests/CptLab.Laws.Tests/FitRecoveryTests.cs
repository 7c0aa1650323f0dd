using CptLab.Laws;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>Fitting recovers known parameters and the known optimum from synthetic surfaces with noise.</summary>
public class FitRecoveryTests(ITestOutputHelper output)
{
    static readonly double[] Rs = Synthetic.Grid(0, 0.9, 7);
    static readonly double[] Xs = Synthetic.Grid(-4.75, -3.25, 7);

    [Fact]
    public void ResponseSurfaceRecoversCoefficientsAndOptimum()
    {
        var sweep = Synthetic.Sweep(Rs, Xs, noise: 0.003, seed: 11);
        var fit = LawFitter.Fit(sweep, new FitOptions
        {
            Objective = Synthetic.Weighted, Laws = [LawKind.ResponseSurfaceQuadratic], Bootstrap = 0, CrossValidate = false,
        });
        var zhFit = fit.Summary.Parameters[Synthetic.Zh];
        var (r0, x0) = (zhFit.Constants!["r0"], zhFit.Constants["x0"]);
        Assert.Equal(0.45, r0, 1e-12); // the centre of the swept box
        Assert.Equal(-4.0, x0, 1e-12);
        var zh = zhFit.Values.Values.ToArray();
        var en = fit.Summary.Parameters[Synthetic.En].Values.Values.ToArray();
        var (tz, te) = (Synthetic.ZhCoefficients(r0, x0), Synthetic.EnCoefficients(r0, x0));
        // Each coefficient's standard error for this design and noise, σ·√diag((XᵀX)⁻¹), computed here from the
        // centred basis independently of the library: errors must be within 4 SE (a wrong basis, centre or law
        // misses by tens of SE).
        var design = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(Rs.Length * Xs.Length, 9, (i, j) =>
        {
            var (u, z) = (Rs[i / Xs.Length] - r0, Xs[i % Xs.Length] - x0);
            return Math.Pow(u, j % 3) * Math.Pow(z, j / 3);
        });
        var se = (design.TransposeThisAndMultiply(design)).Inverse().Diagonal().Select(v => 0.003 * Math.Sqrt(v)).ToArray();
        var worst = 0.0;
        for (var k = 0; k < 9; k++)
        {
            output.WriteLine($"coef {k}: zh {zh[k]:0.0000} (true {tz[k]:0.0000})  en {en[k]:0.0000} (true {te[k]:0.0000})  SE {se[k]:0.0000}");
            worst = Math.Max(worst, Math.Max(Math.Abs(zh[k] - tz[k]), Math.Abs(en[k] - te[k])) / se[k]);
        }
        output.WriteLine($"largest coefficient error {worst:0.00} standard errors");
        Assert.True(worst < 4, $"largest coefficient error {worst:0.00} SE");
        // The leading terms (loss, slope and curvature at the centre) are pinned to ~1e-3.
        foreach (var k in new[] { 0, 3, 6 }) Assert.InRange(zh[k] - tz[k], -0.005, 0.005);

        // The target's own optimal LR, x*(r) = x0 − b(u)/2c(u), against the truth −3.8 + 0.4r.
        foreach (var r in new[] { 0.1, 0.5, 0.8 })
        {
            var u = r - r0;
            var xStar = x0 - (zh[3] + zh[4] * u + zh[5] * u * u) / (2 * (zh[6] + zh[7] * u + zh[8] * u * u));
            Assert.InRange(xStar, -3.8 + 0.4 * r - 0.05, -3.8 + 0.4 * r + 0.05);
        }

        var truth = Synthetic.TrueOptimum(Synthetic.Weighted, 0, 0.9, -4.75, -3.25);
        var o = fit.Summary.Optimum;
        output.WriteLine($"optimum r*={o.Almr:0.0000} (true {truth.R:0.0000}), log10 lr*={o.Log10Lr:0.0000} (true {truth.X:0.0000})");
        Assert.InRange(o.Almr, truth.R - 0.02, truth.R + 0.02);
        Assert.InRange(o.Log10Lr, truth.X - 0.05, truth.X + 0.05);
    }

    [Fact]
    public void CrossValidationChoosesTheLawThatGeneratedTheData()
    {
        var sweep = Synthetic.Sweep(Rs, Xs, noise: 0.004, seed: 5);
        var fit = LawFitter.Fit(sweep, new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 0 });
        foreach (var c in fit.Summary.Candidates) output.WriteLine($"{c.Law}: cv={c.CvError} {c.Skipped}");
        Assert.Equal("response_surface_quadratic", fit.Summary.Law);
        var linear = fit.Summary.Candidates.Single(c => c.Law == "response_surface_linear");
        Assert.True(linear.CvError > 1.5 * fit.Summary.CvError, "the linear-in-r surface cannot bend with r² and should lose clearly");
        // With noise σ = 0.004 on log-loss, a correct law's leave-one-out error is near σ.
        Assert.InRange(fit.Summary.CvError!.Value, 0.002, 0.008);
    }

    [Fact]
    public void MixingLawRecoversItsParametersAtEachLr()
    {
        // L(r) = c + k·exp(t·r) at three LRs, with known (c, k, t) per LR and language.
        var truth = new Dictionary<double, (double C, double K, double T)[]>
        {
            [1e-4] = [(1.9, 1.2, -2.5), (1.95, 0.05, 3.0)],
            [3e-4] = [(1.85, 1.1, -3.0), (1.92, 0.08, 3.2)],
            [1e-3] = [(1.95, 1.0, -2.8), (1.90, 0.12, 3.5)],
        };
        var rng = new Random(3);
        var points = new List<SweepPoint>();
        foreach (var (lr, laws) in truth)
            foreach (var r in Synthetic.Grid(0.05, 0.95, 9))
            {
                double L(int i) => (laws[i].C + laws[i].K * Math.Exp(laws[i].T * r)) * Math.Exp(0.002 * Synthetic.Gauss(rng));
                points.Add(new SweepPoint(r, lr, 0, new Dictionary<string, double> { ["zh"] = L(0), ["en"] = L(1) }, []));
            }
        var sweep = Synthetic.Wrap(points);
        var fit = LawFitter.Fit(sweep, new FitOptions { Laws = [LawKind.MixingLaw], Bootstrap = 0, CrossValidate = false, Objective = Synthetic.Weighted });
        Assert.Equal("mixing_law", fit.Summary.Law);
        foreach (var (lr, laws) in truth)
        {
            var tag = $"@lr={lr:0.###e0}";
            for (var i = 0; i < 2; i++)
            {
                var p = fit.Summary.Parameters[i == 0 ? "zh" : "en"].Values;
                var (c, k, t) = (p["c" + tag], p["k" + tag], p["t" + tag]);
                output.WriteLine($"{(i == 0 ? "zh" : "en")}{tag}: c={c:0.000} ({laws[i].C}) k={k:0.000} ({laws[i].K}) t={t:0.000} ({laws[i].T})");
                // The exponent is the hardest-determined parameter; the curve itself is pinned much tighter.
                Assert.InRange(t, laws[i].T - 0.5, laws[i].T + 0.5);
                foreach (var r in new[] { 0.1, 0.5, 0.9 })
                {
                    var predicted = fit.Surface.PredictLoss(i == 0 ? "zh" : "en", r, lr);
                    var actual = laws[i].C + laws[i].K * Math.Exp(laws[i].T * r);
                    Assert.InRange(predicted / actual, 0.995, 1.005);
                }
            }
        }
    }

    [Fact]
    public void TokenLawRecoversParametersAndExtrapolates()
    {
        const double e = 1.8, b = 45.0, beta = 0.28;
        var rng = new Random(9);
        var curve = Enumerable.Range(1, 12).Select(i => (Tokens: (long)(i * 50_000_000L), Loss: (e + b * Math.Pow(i * 50_000_000.0, -beta)) * Math.Exp(0.001 * Synthetic.Gauss(rng)))).ToList();
        var fit = TokenLaw.Fit(curve, seed: 1);
        output.WriteLine($"E={fit.E:0.0000} B={fit.B:0.00} beta={fit.Beta:0.0000} holdout={fit.HoldoutError:0.00000}");
        Assert.InRange(fit.E, e - 0.08, e + 0.08);
        Assert.InRange(fit.Beta, beta - 0.04, beta + 0.04);
        var far = 2_400_000_000.0; // 4× the last point
        var trueFar = e + b * Math.Pow(far, -beta);
        Assert.InRange(fit.Predict(far) / trueFar, 0.99, 1.01);
        Assert.NotNull(fit.HoldoutError);
        Assert.True(Math.Abs(fit.HoldoutError!.Value) < 0.005);
    }

    [Fact]
    public void ExtrapolatedSweepFitsTheLossesAtTheLongerBudget()
    {
        // Each run's curve follows E(r, x) + B·D^-β, where E is the synthetic surface: extrapolating to "infinite"
        // tokens must recover the surface's optimum, while the raw final losses (B·D^-β still large) are shifted.
        var rng = new Random(21);
        var points = new List<SweepPoint>();
        foreach (var r in Synthetic.Grid(0, 0.9, 5))
        foreach (var x in Synthetic.Grid(-4.75, -3.25, 5))
        {
            var zh = Math.Exp(Synthetic.LogZh(r, x));
            var en = Math.Exp(Synthetic.LogEn(r, x));
            var curve = Enumerable.Range(1, 8).Select(i =>
            {
                var d = i * 1e8;
                return new CurvePoint((long)d, new Dictionary<string, double>
                {
                    ["zh"] = (zh + 30 * Math.Pow(d, -0.3)) * Math.Exp(0.0005 * Synthetic.Gauss(rng)),
                    ["en"] = (en + 20 * Math.Pow(d, -0.3)) * Math.Exp(0.0005 * Synthetic.Gauss(rng)),
                });
            }).ToList();
            points.Add(new SweepPoint(r, Math.Pow(10, x), 0, curve[^1].Loss, curve));
        }
        var fit = LawFitter.Fit(Synthetic.Wrap(points), new FitOptions
        {
            Objective = Synthetic.Weighted, Laws = [LawKind.ResponseSurfaceQuadratic], Bootstrap = 0, ExtrapolateToTokens = 1_000_000_000_000_000,
        });
        var zhAt = fit.Surface.PredictLoss("zh", 0.45, Math.Pow(10, -4.0));
        Assert.InRange(zhAt / Math.Exp(Synthetic.LogZh(0.45, -4.0)), 0.99, 1.01);
        Assert.Equal(1_000_000_000_000_000, fit.Summary.ExtrapolatedToTokens);
    }

    [Fact]
    public void HuberFitShrugsOffADivergedRunThatWasNotMarkedFailed()
    {
        var clean = Synthetic.Sweep(Rs, Xs, noise: 0.003, seed: 2);
        var options = new FitOptions { Objective = Synthetic.Weighted, Laws = [LawKind.ResponseSurfaceQuadratic], Bootstrap = 0, CrossValidate = false };
        var a = LawFitter.Fit(clean, options).Summary.Optimum;
        // One run near the optimum reports a target loss 40% too high (a bad evaluation, not a NaN).
        var points = clean.Points.ToList();
        var i = points.FindIndex(p => Math.Abs(p.Almr - 0.45) < 1e-9 && Math.Abs(Math.Log10(p.Lr) + 4.0) < 1e-9);
        var bad = new Dictionary<string, double>(points[i].FinalLoss) { ["zh"] = points[i].FinalLoss["zh"] * 1.4 };
        points[i] = points[i] with { FinalLoss = bad };
        var b = LawFitter.Fit(Synthetic.Wrap(points), options).Summary.Optimum;
        output.WriteLine($"clean r*={a.Almr:0.0000} x*={a.Log10Lr:0.0000}; with outlier r*={b.Almr:0.0000} x*={b.Log10Lr:0.0000}");
        Assert.InRange(b.Almr - a.Almr, -0.02, 0.02);
        Assert.InRange(b.Log10Lr - a.Log10Lr, -0.05, 0.05);
    }

    [Fact]
    public void CriticalAlmrMatchesTheTruth()
    {
        // Forgetting at its best LR (x = −4.2, inside the range) is exp(0.70 + 0.02r + 0.25r²) − 2.0; solve = T.
        const double T = 0.15;
        var truth = Solve(r => Math.Exp(0.70 + 0.02 * r + 0.25 * r * r) - Synthetic.EnBase - T, 0, 0.9);
        var sweep = Synthetic.Sweep(Rs, Xs, noise: 0.003, seed: 8);
        var fit = LawFitter.Fit(sweep, new FitOptions
        {
            Objective = Objective.Constrained(T), Laws = [LawKind.ResponseSurfaceQuadratic], Bootstrap = 40, CrossValidate = false,
        });
        var c = fit.Summary.CriticalAlmr!;
        output.WriteLine($"critical ALMR {c.Almr:0.0000} (true {truth:0.0000}) interval {c.Interval}; optimum r*={fit.Summary.Optimum.Almr:0.0000}");
        Assert.Equal("crossed", c.Status);
        Assert.InRange(c.Almr!.Value, truth - 0.03, truth + 0.03);
        // Minimising target loss under the forgetting cap pushes ALMR up to the cap: the optimum sits at the critical ALMR.
        Assert.InRange(fit.Summary.Optimum.Almr, truth - 0.04, truth + 0.04);
        // η*(r) is infeasible past the critical ALMR.
        Assert.Null(fit.Summary.OptimalLrCurve[^1].Lr);
    }

    [Fact]
    public void SameSeedSameAnswer()
    {
        var sweep = Synthetic.Sweep(Synthetic.Grid(0, 0.9, 5), Synthetic.Grid(-4.75, -3.25, 5), noise: 0.01, seed: 4);
        var options = new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 30, Seed = 7 };
        var a = FitJson.Serialize(LawFitter.Fit(sweep, options).Summary);
        var b = FitJson.Serialize(LawFitter.Fit(sweep, options).Summary);
        Assert.Equal(a, b);
        var c = FitJson.Serialize(LawFitter.Fit(sweep, options with { Seed = 8 }).Summary);
        Assert.NotEqual(a, c);
    }

    static double Solve(Func<double, double> f, double lo, double hi)
    {
        for (var i = 0; i < 100; i++)
        {
            var m = 0.5 * (lo + hi);
            if (f(lo) * f(m) <= 0) hi = m; else lo = m;
        }
        return 0.5 * (lo + hi);
    }
}
