using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>
/// Rotary position embeddings in the Hugging Face layout (rotate_half over the two halves of each head,
/// not interleaved pairs), with the frequency scalings of <see cref="RopeScaling"/>.
/// </summary>
public static class Rope
{
    /// <summary>
    /// The inverse frequencies θ_i = base^(−2i/d), i = 0 … d/2−1, after scaling. For "llama3" (Llama-3.1):
    /// wavelengths shorter than original_context/high_freq_factor keep their frequency, those longer than
    /// original_context/low_freq_factor are divided by factor, and those in between are blended with
    /// s = (original_context/wavelength − low) / (high − low): (1 − s)·θ/factor + s·θ.
    /// </summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        var inv = new double[headDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        if (scaling is null || scaling.RopeType == "default") return inv;
        if (scaling.RopeType == "linear")
        {
            for (int i = 0; i < inv.Length; i++) inv[i] /= scaling.Factor;
            return inv;
        }
        double oldContext = scaling.OriginalMaxPositionEmbeddings;
        double lowFreqWavelen = oldContext / scaling.LowFreqFactor;
        double highFreqWavelen = oldContext / scaling.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen < highFreqWavelen) continue;
            if (wavelen > lowFreqWavelen) { inv[i] /= scaling.Factor; continue; }
            double smooth = (oldContext / wavelen - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
            inv[i] = (1 - smooth) * inv[i] / scaling.Factor + smooth * inv[i];
        }
        return inv;
    }

    /// <summary>
    /// The inverse frequencies as the model uses them: float32, computed as transformers computes them
    /// (<c>_compute_default_rope_parameters</c> and <c>_compute_llama3_parameters</c>), the same LibTorch operations in
    /// the same order — <c>1 / base^(arange(0, d, 2) / d)</c>, then for "llama3" the wavelength thresholds and the blend
    /// in float32 — so that a CptLab model and the same checkpoint in transformers rotate by the same angles, also at long
    /// positions where float32 rounding of the angle (position × θ_i) is larger than bf16's resolution of cos and sin.
    /// <see cref="InverseFrequencies"/> is the same formula in double precision.
    /// </summary>
    public static float[] InverseFrequenciesFloat32(int headDim, double theta, RopeScaling? scaling)
    {
        using var scope = NewDisposeScope();
        var exponent = arange(0L, headDim, 2L, dtype: ScalarType.Int64).to(ScalarType.Float32) / headDim;
        var inv = tensor((float)theta, ScalarType.Float32).pow(exponent).reciprocal();    // 1.0 / (base ** x)
        if (scaling is not null && scaling.RopeType == "linear") inv = inv / scaling.Factor;
        else if (scaling is not null && scaling.RopeType != "default")
        {
            double oldContext = scaling.OriginalMaxPositionEmbeddings;
            double lowFreqWavelen = oldContext / scaling.LowFreqFactor;
            double highFreqWavelen = oldContext / scaling.HighFreqFactor;
            var wavelen = inv.reciprocal() * (2 * Math.PI);                                       // 2π / inv_freq
            var llama = where(wavelen > lowFreqWavelen, inv / scaling.Factor, inv);
            var smooth = (wavelen.reciprocal() * oldContext - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
            var smoothed = (1 - smooth) * llama / scaling.Factor + smooth * llama;
            var medium = (wavelen < highFreqWavelen).logical_not().logical_and((wavelen > lowFreqWavelen).logical_not());
            inv = where(medium, smoothed, llama);
        }
        return inv.data<float>().ToArray();
    }

    /// <summary>
    /// cos and sin tables for the given positions: each (T, head_dim), the frequencies repeated over both halves. As in
    /// transformers, angles are float32 products of float32 positions and <paramref name="invFreq"/>, cos and sin are taken in
    /// float32 and only then cast to <paramref name="dtype"/>.
    /// </summary>
    public static (Tensor Cos, Tensor Sin) Tables(Tensor invFreq, long start, long length, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var positions = arange(start, start + length, dtype: ScalarType.Float32, device: invFreq.device); // (T)
        var freqs = outer(positions, invFreq);                                                              // (T, hd/2)
        var emb = cat([freqs, freqs], dim: -1);                                                               // (T, hd)
        var cos = emb.cos().to(dtype);
        var sin = emb.sin().to(dtype);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates x (B, n_heads, T, hd) by the tables (T, hd).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([x2.neg(), x1], dim: -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}
