using CptLab.Laws.Registry;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>
/// Chinchilla through the registry on a fixture generated from Epoch AI's published fit (E 1.8172, A 482.01,
/// B 2085.43, α 0.3478, β 0.3658) on an approximation of their (N, D) design (LawFixtures.ChinchillaDesign, 244
/// points), noise σ = 0.007 on log L, System.Random seeds 1–3.
/// Measured with δ = 1e-3 (fixed), Hoffmann form (relative errors, seeds 1 / 2 / 3):
///   E −1.05% / +0.01% / +0.64%;  α −2.10% / +0.70% / +4.05%;  β −2.08% / −2.63% / −0.35%;
///   A −11.4% / +2.3% / +28.4%;   B −13.8% / −17.2% / −2.4%.
/// So at 0.7% noise on this design only E meets 2% in every seed; α and β are within ~4%, and A and B (each
/// nearly collinear with its exponent) miss 2% by far. That is the noise, not the optimiser: the noise-free
/// fixture is recovered to 1e-4, and the log-sum-exp form from Epoch's grid lands on the same Huber minimum.
/// With the MAD rule (δ = 1.345·MAD ≈ 0.009 here) B moves from the δ = 1e-3 fit by +3.3% / +5.0% / +4.3%
/// (the issue saw 30% on Epoch's real data, whose residuals are not Gaussian).
/// </summary>
public class ChinchillaReproductionTests(ITestOutputHelper output)
{
    static readonly string[] Names = ["E", "A", "B", "alpha", "beta"];

    static double[] Values(LawTableFit fit) => fit.Law == "chinchilla_lse"
        ? [Math.Exp(fit["e"]), Math.Exp(fit["a"]), Math.Exp(fit["b"]), fit["alpha"], fit["beta"]]
        : Names.Select(n => fit[n]).ToArray();

    double[] RelErrors(LawTableFit fit, string label)
    {
        var values = Values(fit);
        var rel = values.Select((v, j) => (v - LawFixtures.Epoch[j]) / LawFixtures.Epoch[j]).ToArray();
        output.WriteLine($"{label}: δ {fit.HuberDelta:G4} ({fit.HuberDeltaRule}); " +
                         string.Join(", ", Names.Select((n, j) => $"{n} {values[j]:G6} ({rel[j]:+0.00%;-0.00%})")) +
                         $"; objective {fit.Objective:G6}; {fit.Optimizer}");
        return rel;
    }

    [Fact]
    public void Noise_free_fixture_is_recovered_in_both_forms()
    {
        var table = LawFixtures.Chinchilla(0, 1);
        foreach (var (name, maxStarts) in new[] { ("chinchilla", (int?)null), ("chinchilla_lse", 450) })
        {
            var fit = LawTableFitter.Fit(table, LawRegistry.Get(name), new LawFitOptions { HuberDelta = 1e-3, MaxGridStarts = maxStarts });
            var rel = RelErrors(fit, $"{name} noise-free");
            Assert.All(rel, r => Assert.InRange(r, -1e-4, 1e-4));
        }
    }

    [Fact]
    public void Noisy_fixture_with_fixed_delta_recovers_E_within_2_percent_and_records_the_rest()
    {
        var law = LawRegistry.Get("chinchilla");
        foreach (var seed in new[] { 1, 2, 3 })
        {
            var table = LawFixtures.Chinchilla(0.007, seed);
            var fixedFit = LawTableFitter.Fit(table, law, new LawFitOptions { HuberDelta = 1e-3 });
            var rel = RelErrors(fixedFit, $"seed {seed} δ=1e-3");
            Assert.Equal("fixed", fixedFit.HuberDeltaRule);
            Assert.InRange(rel[0], -0.02, 0.02);        // E
            Assert.InRange(rel[3], -0.05, 0.05);        // α: within 5% (2% fails in seeds 1 and 3, see above)
            Assert.InRange(rel[4], -0.05, 0.05);        // β: within 5% (2% fails in seeds 1 and 2)

            var madFit = LawTableFitter.Fit(table, law, new LawFitOptions());
            RelErrors(madFit, $"seed {seed} MAD");
            Assert.InRange(madFit.HuberDelta, 0.5 * 1.345 * 0.007, 2 * 1.345 * 0.007); // 1.345·σ̂ with σ̂ ≈ the noise
            var bMove = (madFit["B"] - fixedFit["B"]) / fixedFit["B"];
            output.WriteLine($"seed {seed}: B moves {bMove:+0.0%;-0.0%} from the δ = 1e-3 fit with the MAD rule");
            Assert.InRange(Math.Abs(bMove), 0, 0.10);
        }
    }

    [Fact]
    public void Epoch_form_from_its_grid_lands_on_the_same_huber_minimum()
    {
        var table = LawFixtures.Chinchilla(0.007, 1);
        var hoffmann = LawTableFitter.Fit(table, LawRegistry.Get("chinchilla"), new LawFitOptions { HuberDelta = 1e-3 });
        var lse = LawTableFitter.Fit(table, LawRegistry.Get("chinchilla_lse"), new LawFitOptions { HuberDelta = 1e-3, MaxGridStarts = 450 });
        RelErrors(lse, "lse seed 1");
        Assert.Equal(hoffmann.Objective, lse.Objective, 1e-9);
        var (a, b) = (Values(hoffmann), Values(lse));
        for (var j = 0; j < 5; j++) Assert.Equal(a[j], b[j], 1e-3 * Math.Abs(a[j]));
    }

    [Fact]
    public void Two_percent_on_A_and_B_is_beyond_what_this_design_and_noise_can_determine()
    {
        // The Cramér–Rao bound of least squares: with noise σ on log L, Cov(θ) ≈ σ²·(JᵀJ)⁻¹, J = ∂ log L / ∂θ at the truth
        // (central differences here, independent of the fitter). Any unbiased estimator's spread is at least this.
        var design = LawFixtures.ChinchillaDesign();
        var t = LawFixtures.Epoch;
        double LogL(double n, double d, double[] th) => Math.Log(th[0] + th[1] * Math.Pow(n, -th[3]) + th[2] * Math.Pow(d, -th[4]));
        var j = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(design.Length, 5, (i, k) =>
        {
            var h = 1e-6 * Math.Abs(t[k]);
            var (up, down) = (t.ToArray(), t.ToArray());
            up[k] += h;
            down[k] -= h;
            return (LogL(design[i].N, design[i].D, up) - LogL(design[i].N, design[i].D, down)) / (2 * h);
        });
        var cov = (j.TransposeThisAndMultiply(j)).Inverse() * (0.007 * 0.007);
        var rel = Enumerable.Range(0, 5).Select(k => Math.Sqrt(cov[k, k]) / t[k]).ToArray();
        output.WriteLine("relative standard errors at σ = 0.7%: " + string.Join(", ", Names.Select((n, k) => $"{n} {rel[k]:0.0%}")));
        // E, α, β are determined to a few percent; A and B only to about ten or more: within 2% is a matter of luck there.
        Assert.InRange(rel[0], 0, 0.02);
        Assert.True(rel[1] > 0.05 && rel[2] > 0.05, $"A {rel[1]:0.0%}, B {rel[2]:0.0%}");
    }
}
