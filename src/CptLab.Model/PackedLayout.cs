using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>
/// How the rows of a packed batch divide into sequences: per token (B, T) its position within its own sequence and
/// its segment number. Tokens attend only to earlier tokens of the same segment (a block-diagonal causal mask) and are
/// rotated by their own position, so packing changes no sequence's result — the equivalent of transformers'
/// padding-free / LLaMA-Factory's neat_packing. Padding is best given a segment of its own: a row with nothing to attend
/// to would give NaN, which multiplies into the gradients even where the loss ignores it.
/// </summary>
public sealed record PackedLayout(Tensor Positions, Tensor Segments)
{
    /// <summary>(B, 1, T, T) booleans, true where query i may attend to key j: same segment and j ≤ i.</summary>
    public Tensor Mask()
    {
        using var scope = NewDisposeScope();
        long t = Segments.shape[1];
        var same = Segments.unsqueeze(2).eq(Segments.unsqueeze(1));                    // (B, T, T)
        var causal = ones([t, t], ScalarType.Bool, Segments.device).tril();             // (T, T)
        return same.logical_and(causal).unsqueeze(1).MoveToOuterDisposeScope();         // (B, 1, T, T)
    }
}
