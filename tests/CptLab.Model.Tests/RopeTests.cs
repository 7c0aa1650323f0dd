using CptLab.Model;

namespace CptLab.Model.Tests;

public class RopeTests
{
    // Llama-3.1-8B: theta 500000, head_dim 128, rope_scaling llama3 (factor 8, low 1, high 4, original 8192).
    // Expected values computed from the published formula (Meta's apply_scaling / transformers'
    // _compute_llama3_parameters) in a separate double-precision script.
    [Theory]
    [InlineData(0, 1.0)]                          // wavelength 6.3: high frequency, kept
    [InlineData(20, 0.016560440080994446)]         // wavelength 379: kept
    [InlineData(29, 0.002166570763503359)]         // wavelength 2402: blended, smooth 0.80
    [InlineData(30, 0.0013718935677611381)]        // wavelength 2948: blended, smooth 0.59
    [InlineData(34, 0.00017850781276799638)]       // wavelength 6695: blended, smooth 0.07
    [InlineData(40, 3.428102195952591e-05)]        // wavelength 22911: low frequency, divided by 8
    [InlineData(63, 3.068925988914511e-07)]        // the lowest frequency, divided by 8
    public void Llama3_scaling_matches_published_values(int index, double expected)
    {
        var inv = Rope.InverseFrequencies(128, 500000.0, Flavors.Get("Llama-3.1-8B").RopeScaling);
        Assert.Equal(64, inv.Length);
        Assert.Equal(expected, inv[index], expected * 1e-12);
    }

    [Fact]
    public void Without_scaling_the_frequencies_are_theta_powers()
    {
        var inv = Rope.InverseFrequencies(128, 500000.0, null);
        Assert.Equal(1.0, inv[0]);
        Assert.Equal(0.0002742481756762073, inv[40], 1e-15);
        Assert.Equal(Math.Pow(500000.0, -126.0 / 128), inv[63], 1e-18);
    }

    [Fact]
    public void Linear_scaling_divides_every_frequency()
    {
        var plain = Rope.InverseFrequencies(64, 10000.0, null);
        var linear = Rope.InverseFrequencies(64, 10000.0, new RopeScaling("linear", Factor: 4.0));
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i] / 4.0, linear[i], 1e-15);
    }
}
