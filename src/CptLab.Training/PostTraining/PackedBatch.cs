using CptLab.Model;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Training.PostTraining;

/// <summary>
/// A micro-batch of post-training rows as tensors. Each row holds one example (padded batches) or several (packed); per
/// token: its id, its position within its own example, its segment (the example it belongs to; padding gets a segment
/// of its own per row), and its target — the next token of the same example where that token is trained, else
/// <see cref="Ignore"/>. Legend: B rows, T the longest row, V vocabulary, N examples.
/// </summary>
internal sealed class PackedBatch
{
    public const long Ignore = -100;

    PackedBatch(long[] ids, long[] positions, long[] segments, long[] targets, long[] owner, int rows, int width, int examples, bool packed)
        => (_ids, _positions, _segments, _targets, _owner, Rows, Width, Examples, Packed) = (ids, positions, segments, targets, owner, rows, width, examples, packed);

    readonly long[] _ids, _positions, _segments, _targets, _owner;
    public int Rows { get; }
    public int Width { get; }
    /// <summary>Examples in the batch, numbered in row order (what <see cref="SequenceLogps"/> returns one value for).</summary>
    public int Examples { get; }
    /// <summary>Whether any row holds more than one example (then the block-diagonal mask is needed).</summary>
    public bool Packed { get; }
    /// <summary>Trained target tokens in the batch.</summary>
    public long TrainedTokens => _targets.LongCount(t => t != Ignore);
    /// <summary>Tokens of examples (not padding) in the batch.</summary>
    public long RealTokens => _segments.LongCount(s => s > 0);

    public static PackedBatch Build(IReadOnlyList<TokenizedExample> examples, IReadOnlyList<int[]> rows)
    {
        int width = rows.Max(r => r.Sum(i => examples[i].Length));
        int b = rows.Count;
        var ids = new long[b * width];
        var positions = new long[b * width];
        var segments = new long[b * width];
        var targets = new long[b * width];
        var owner = new long[b * width];
        Array.Fill(targets, Ignore);
        Array.Fill(owner, -1);
        int example = 0;
        bool packed = false;
        for (int r = 0; r < b; r++)
        {
            packed |= rows[r].Length > 1;
            int at = r * width;
            foreach (var index in rows[r])
            {
                var e = examples[index];
                for (int j = 0; j < e.Length; j++)
                {
                    ids[at + j] = e.Ids[j];
                    positions[at + j] = j;
                    segments[at + j] = example + 1;
                    if (j + 1 < e.Length && e.Trained[j + 1]) { targets[at + j] = e.Ids[j + 1]; owner[at + j] = example; }
                }
                at += e.Length;
                example++;
            }
            for (int j = at, p = 0; j < (r + 1) * width; j++, p++) { positions[j] = p; segments[j] = -(r + 1); } // padding: a segment of its own
        }
        return new PackedBatch(ids, positions, segments, targets, owner, b, width, example, packed);
    }

    /// <summary>Refuses ids the model has no embedding for (data tokenized for another model).</summary>
    public void CheckVocabulary(int vocab)
    {
        foreach (var id in _ids)
            if ((ulong)id >= (ulong)vocab)
                throw new Core.CptLabException($"token id {id} is outside the model's vocabulary of {vocab}; the data was tokenized for a different model");
    }

    /// <summary>Float32 logits (B, T, V): one causal pass for padded rows, the block-diagonal packed pass otherwise.</summary>
    public Tensor Logits(LlamaForCausalLM model)
    {
        var ids = tensor(_ids).view(Rows, Width);                                          // (B, T)
        if (!Packed) return model.forward(ids);                                            // padding is after each example: causal attention never sees it
        var layout = new PackedLayout(tensor(_positions).view(Rows, Width), tensor(_segments).view(Rows, Width));
        return model.ForwardPacked(ids, layout);
    }

    /// <summary>Summed cross-entropy over the trained targets (a 0-d tensor, under autograd if the logits are).</summary>
    public Tensor SummedLoss(Tensor logits) =>
        F.cross_entropy(logits.view(-1, logits.shape[^1]), tensor(_targets), ignore_index: Ignore, reduction: nn.Reduction.Sum);

    /// <summary>Per example: the summed log-probability of its trained tokens (N) and their count (N).</summary>
    public (Tensor Sum, long[] Count) SequenceLogps(Tensor logits)
    {
        var targets = tensor(_targets);                                                    // (B·T)
        var tokenLogp = -F.cross_entropy(logits.view(-1, logits.shape[^1]), targets, ignore_index: Ignore, reduction: nn.Reduction.None); // (B·T), 0 where ignored
        var owner = tensor(_owner).clamp_min(0);                                           // (B·T): ignored positions add their 0 to example 0
        var sums = zeros(Examples, ScalarType.Float32).index_add(0, owner, tokenLogp, 1);     // (N)
        var counts = new long[Examples];
        foreach (var o in _owner) if (o >= 0) counts[o]++;
        return (sums, counts);
    }
}
