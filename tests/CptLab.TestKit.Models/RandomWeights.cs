using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.TestKit;

/// <summary>
/// Fills a model with weights large enough that logits are far from zero and differ between tokens (unlike the
/// training initialisation's std 0.02): normal(0, <paramref name="scale"/>) for matrices, 1 + 0.1·normal for
/// norms, from one seeded generator in parameter order, so a seed gives the same model everywhere.
/// </summary>
public static class RandomWeights
{
    public static LlamaForCausalLM Fill(LlamaForCausalLM model, long seed, double scale = 0.3)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters())
        {
            using var r = randn(p.shape, ScalarType.Float32, generator: gen);
            using var v = name.EndsWith("norm.weight", StringComparison.Ordinal) ? 1.0 + 0.1 * r : scale * r;
            p.copy_(v);
        }
        return model;
    }
}
