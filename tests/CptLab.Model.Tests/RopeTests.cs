using CptLab.Model;
using TorchSharp;
using static TorchSharp.torch;

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

/// <summary>
/// RoPE as transformers computes it: float32 inverse frequencies, float32 angles (position × θ_i), cos and sin in float32.
/// The reference here is the same formula written in C# single precision, operation by operation, without LibTorch.
/// </summary>
public class RopeFloat32Tests(Xunit.Abstractions.ITestOutputHelper output)
{
    static float[] ReferenceInvFreq(int d, float theta, RopeScaling? s)
    {
        var inv = new float[d / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1f / MathF.Pow(theta, (float)(2 * i) / d);
        if (s is null) return inv;
        float low = (float)(s.OriginalMaxPositionEmbeddings / s.LowFreqFactor), high = (float)(s.OriginalMaxPositionEmbeddings / s.HighFreqFactor);
        for (int i = 0; i < inv.Length; i++)
        {
            float wavelen = (1f / inv[i]) * (float)(2 * Math.PI);
            float llama = wavelen > low ? inv[i] / (float)s.Factor : inv[i];
            float smooth = ((1f / wavelen) * s.OriginalMaxPositionEmbeddings - (float)s.LowFreqFactor) / (float)(s.HighFreqFactor - s.LowFreqFactor);
            float smoothed = (1 - smooth) * llama / (float)s.Factor + smooth * llama;
            inv[i] = !(wavelen < high) && !(wavelen > low) ? smoothed : llama;
        }
        return inv;
    }

    [Fact]
    public void Tables_follow_transformers_float32_arithmetic_up_to_8k_positions()
    {
        TorchRuntime.Initialise();
        var scaling = Flavors.Get("Llama-3.1-8B").RopeScaling;
        var ours = Rope.InverseFrequenciesFloat32(128, 500000.0, scaling);
        var reference = ReferenceInvFreq(128, 500000f, scaling);
        for (int i = 0; i < ours.Length; i++)
            Assert.True(Math.Abs(ours[i] - reference[i]) <= 2 * MathF.BitIncrement(reference[i]) - 2 * reference[i], $"inv_freq[{i}]: {ours[i]:R} vs {reference[i]:R}");

        const int positions = 8192;
        using var inv = torch.tensor(ours);
        var (cos, sin) = Rope.Tables(inv, 0, positions, ScalarType.Float32);
        using var _c = cos;
        using var _s = sin;
        var c = cos.data<float>().ToArray();
        double worst32 = 0, worst64 = 0;
        for (int p = 0; p < positions; p++)
            for (int i = 0; i < 64; i++)
            {
                float angle = p * ours[i];                        // one float32 product, as the k = 1 matmul in transformers
                worst32 = Math.Max(worst32, Math.Abs(c[p * 128 + i] - MathF.Cos(angle)));
                worst64 = Math.Max(worst64, Math.Abs(c[p * 128 + i] - Math.Cos((double)p * ours[i]))); // what double angles would give
            }
        output.WriteLine($"max |cos - float32 reference| = {worst32:E2}; max |cos - double-angle cos| = {worst64:E2}; bf16 spacing near 1 = {1.0 / 256:E2}");
        Assert.True(worst32 < 1e-6, $"cos differs from float32 arithmetic by {worst32}");
        Assert.True(worst64 > 1e-5, "at 8k positions float32 angles should differ measurably from double ones; otherwise this test shows nothing");
    }
}
