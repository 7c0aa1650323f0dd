using MathNet.Numerics;

namespace CptLab.Laws.Tests;

/// <summary>
/// The process's covariances against the general Matérn form, k(d) = σ²·2^(1−ν)/Γ(ν)·(√(2ν)·d)^ν·K_ν(√(2ν)·d),
/// evaluated with MathNet's Bessel function of the second kind for real order (not the closed forms the code uses),
/// and the squared exponential as its ν → ∞ limit exp(−d²/2); d is the distance scaled per axis by the length-scales.
/// </summary>
public class GaussianProcessKernelTests
{
    static double Matern(double nu, double d) =>
        d == 0 ? 1 : Math.Pow(2, 1 - nu) / SpecialFunctions.Gamma(nu) * Math.Pow(Math.Sqrt(2 * nu) * d, nu) * SpecialFunctions.BesselK(nu, Math.Sqrt(2 * nu) * d);

    [Theory]
    [InlineData(GpKernel.Matern52, 2.5)]
    [InlineData(GpKernel.Matern32, 1.5)]
    [InlineData(GpKernel.SquaredExponential, double.PositiveInfinity)]
    public void Covariance_is_the_matern_form(GpKernel kernel, double nu)
    {
        double[] ua = [0, 0.1, 0.35, 0.9], va = [0, 0.5, 0.2, 1];
        double[] ub = [0.05, 0.6, 1.0], vb = [0.3, 0.1, 0.95];
        const double sf = 0.7, lu = 0.3, lv = 1.7;
        var k = GaussianProcessSurface.Covariance(kernel, ua, va, ub, vb, sf, lu, lv);
        for (var i = 0; i < ua.Length; i++)
            for (var j = 0; j < ub.Length; j++)
            {
                var d = Math.Sqrt(Math.Pow((ua[i] - ub[j]) / lu, 2) + Math.Pow((va[i] - vb[j]) / lv, 2));
                var expected = sf * sf * (double.IsInfinity(nu) ? Math.Exp(-0.5 * d * d) : Matern(nu, d));
                Assert.Equal(expected, k[i, j], 1e-9);
            }
    }
}
