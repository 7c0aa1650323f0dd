using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

/// <summary>
/// The in-place paged decode kernel computes what the gather path computes — kernel against kernel on random pools, and
/// the whole model's decode logits against the full forward — for ragged batches whose blocks interleave in the pool.
/// </summary>
public class PagedDecodeAttentionTests
{
    static void Close(Tensor got, Tensor want, string where)
    {
        double diff = (got - want).abs().max().item<float>();
        double scale = want.abs().max().item<float>();
        Assert.True(diff <= 1e-5 * scale, $"{where}: max diff {diff:E2} (scale {scale:F2})");
    }

    /// <summary>Both paths' inputs for sequences of these lengths: the block tables, and the read slots (B, S) with their mask (B, 1, 1, S).</summary>
    static (PagedBlockTables Tables, Tensor ReadSlots, Tensor Mask) Layout(PagedSequence[] seqs, int[] lengths)
    {
        int stride = seqs.Max(x => x.Blocks.Count), longest = lengths.Max();
        var table = new int[seqs.Length * stride];
        var read = new long[seqs.Length * longest];
        var valid = new bool[seqs.Length * longest];
        for (int i = 0; i < seqs.Length; i++)
        {
            for (int j = 0; j < seqs[i].Blocks.Count; j++) table[i * stride + j] = seqs[i].Blocks[j];
            for (int p = 0; p < lengths[i]; p++) (read[i * longest + p], valid[i * longest + p]) = (seqs[i].Slot(p), true);
        }
        return (new PagedBlockTables(table, lengths, stride), tensor(read).view(seqs.Length, longest), tensor(valid).view(seqs.Length, 1, 1, longest));
    }

    static LlamaConfig Shape(int heads, int kvHeads, int headDim) => TestModels.Tiny() with
    {
        NumHiddenLayers = 1, NumAttentionHeads = heads, NumKeyValueHeads = kvHeads, HeadDim = headDim, HiddenSize = heads * headDim,
    };

    [Theory]
    [InlineData(1, 8, 4, 64)]  // one position per block: every position jumps to another block
    [InlineData(4, 8, 4, 64)]  // cpu-20m's heads
    [InlineData(16, 8, 4, 64)]
    [InlineData(4, 4, 4, 16)]  // MHA
    [InlineData(16, 6, 1, 12)] // one kv head for six query heads; head dim not a multiple of the 8-lane vectors
    public void In_place_kernel_equals_the_gather_path_on_a_ragged_batch_with_interleaved_blocks(int blockSize, int heads, int kvHeads, int headDim)
    {
        TorchRuntime.Initialise();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var config = Shape(heads, kvHeads, headDim);
        // Lengths (cached + the decoded position) end inside, at and just past block boundaries, and one is a lone position.
        int[] lengths = [1, blockSize, blockSize + 1, 3 * blockSize - 1, 37, 2 * blockSize];
        int blocksNeeded = lengths.Sum(n => (n + blockSize - 1) / blockSize);
        using var pool = new KvBlockPool(config, blocksNeeded + 5, blockSize, ScalarType.Float32);
        var gen = new TorchSharp.torch.Generator(11);
        pool.Keys(0).copy_(randn(pool.Keys(0).shape, generator: gen));
        pool.Values(0).copy_(randn(pool.Values(0).shape, generator: gen));
        var seqs = lengths.Select(_ => new PagedSequence(pool)).ToArray();
        for (int round = 0; seqs.Select((s, i) => s.Blocks.Count < pool.BlocksFor(lengths[i])).Any(x => x); round++) // a block each in turn
            for (int i = 0; i < seqs.Length; i++)
                if (seqs[i].Blocks.Count < pool.BlocksFor(lengths[i])) Assert.True(seqs[i].Reserve((seqs[i].Blocks.Count + 1) * blockSize - seqs[i].Length));
        if (blockSize > 1) Assert.Contains(seqs[3].Blocks, b => b > seqs[4].Blocks[0]);

        var (tables, readSlots, mask) = Layout(seqs, lengths);
        var q = randn([seqs.Length, heads, 1, headDim], generator: gen) * 2.0;                       // (B, nh, 1, hd): peaked softmaxes too
        var want = PagedDecodeAttention.Gather(q, pool.Keys(0), pool.Values(0), readSlots, mask, kvHeads);
        var one = PagedDecodeAttention.InPlace(q, pool.Keys(0), pool.Values(0), tables, blockSize, kvHeads, threads: 1);
        var many = PagedDecodeAttention.InPlace(q, pool.Keys(0), pool.Values(0), tables, blockSize, kvHeads, threads: 3);
        Assert.Equal(want.shape, one.shape);
        for (int i = 0; i < seqs.Length; i++) Close(one[i], want[i], $"sequence {i} (length {lengths[i]})");
        Assert.True(one.eq(many).all().item<bool>(), "work items split over threads must give the single-thread result exactly");

        // An independent reference for one sequence: plain softmax(q·Kᵀ/√hd)·V over its positions, kv head h / g per query head.
        int s0 = 3, g = heads / kvHeads;
        var slots = tensor(Enumerable.Range(0, lengths[s0]).Select(p => seqs[s0].Slot(p)).ToArray());
        for (int h = 0; h < heads; h++)
        {
            var k = pool.Keys(0).index_select(0, slots)[.., h / g];                                    // (S, hd)
            var v = pool.Values(0).index_select(0, slots)[.., h / g];                                  // (S, hd)
            var w = (k.matmul(q[s0, h, 0]) / Math.Sqrt(headDim)).softmax(0);                          // (S)
            Close(one[s0].narrow(0, h * headDim, headDim), w.matmul(v), $"reference, head {h}");
        }
    }

    [Theory]
    [InlineData(1, 4, 2)]  // GQA
    [InlineData(4, 4, 2)]
    [InlineData(16, 4, 2)]
    [InlineData(4, 4, 4)]  // MHA
    public void Decoding_a_ragged_batch_in_place_gives_the_full_forward_and_the_gather_path_logits(int blockSize, int heads, int kvHeads)
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny() with { NumAttentionHeads = heads, NumKeyValueHeads = kvHeads });
        int[] promptLengths = [3, 15, 1, 6];
        const int steps = 6;
        var seqs = promptLengths.Select((n, i) => TestModels.Tokens(n + steps, model.Config.VocabSize, seed: 20 + i).Select(t => (int)t).ToArray()).ToArray();
        using var _ = no_grad();
        using var inPlacePool = new KvBlockPool(model.Config, 64, blockSize, model.Dtype);
        using var gatherPool = new KvBlockPool(model.Config, 64, blockSize, model.Dtype);
        var inPlace = seqs.Select(_ => new PagedSequence(inPlacePool)).ToList();
        var gather = seqs.Select(_ => new PagedSequence(gatherPool)).ToList();
        for (int i = 0; i < seqs.Length; i++)
        {
            Assert.True(inPlace[i].Reserve(promptLengths[i]) && gather[i].Reserve(promptLengths[i]));
            model.PrefillPaged(inPlace[i], seqs[i].AsSpan(0, promptLengths[i]), allPositions: false).Dispose();
            model.PrefillPaged(gather[i], seqs[i].AsSpan(0, promptLengths[i]), allPositions: false).Dispose();
        }
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            foreach (var p in inPlace.Concat(gather)) Assert.True(p.Reserve(1));
            var ids = seqs.Select((s, i) => s[promptLengths[i] + step]).ToArray();
            model.DecodePath = PagedDecodePath.InPlace;
            var got = model.DecodePaged(inPlace, ids);                                                // (B, V)
            model.DecodePath = PagedDecodePath.Gather;
            var want = model.DecodePaged(gather, ids);                                                // (B, V)
            for (int i = 0; i < seqs.Length; i++)
            {
                int pos = promptLengths[i] + step;
                var alone = model.forward(tensor(seqs[i][..(pos + 1)].Select(t => (long)t).ToArray()).unsqueeze(0))[0, -1];
                Close(got[i], alone, $"sequence {i}, step {step}, against the full forward");
                Close(got[i], want[i], $"sequence {i}, step {step}, against the gather path");
            }
        }
        if (blockSize < 16) Assert.Contains(inPlace[1].Blocks, b => b > inPlace[0].Blocks[^1]); // tables interleave
    }

    [Theory]
    [InlineData(ScalarType.Float32, PagedDecodePath.InPlace)]
    [InlineData(ScalarType.BFloat16, PagedDecodePath.InPlace)]
    public void Auto_takes_the_in_place_kernel_for_float32_and_bf16(ScalarType dtype, PagedDecodePath expected)
    {
        TorchRuntime.Initialise();
        using var _ = no_grad();
        using var model = TestModels.Random(TestModels.Tiny(), dtype: dtype);
        Tensor Decode(PagedDecodePath path)
        {
            using var pool = new KvBlockPool(model.Config, 8, 4, dtype);
            var seq = new PagedSequence(pool);
            Assert.True(seq.Reserve(6));
            model.PrefillPaged(seq, [5, 6, 7, 8, 9], allPositions: false).Dispose();
            model.DecodePath = path;
            return model.DecodePaged([seq], [10]);                                                      // (1, V)
        }
        using var auto = Decode(PagedDecodePath.Auto);
        using var chosen = Decode(expected);
        Assert.True(auto.eq(chosen).all().item<bool>(), $"Auto should run {expected} for {dtype}");
        using var other = Decode(PagedDecodePath.Gather);
        Assert.False(auto.eq(other).all().item<bool>(), "the two paths differ in summation order, so equality above identifies the path");
    }

    [Fact]
    public void On_a_bf16_pool_the_kernel_computes_in_float32_what_it_computes_on_the_same_values_in_float32()
    {
        TorchRuntime.Initialise();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var config = Shape(8, 4, 40); // head dim 40: two 16-wide vectors and a scalar tail in the widening
        const int blockSize = 4;
        int[] lengths = [1, 4, 5, 11, 30];
        using var pool16 = new KvBlockPool(config, 20, blockSize, ScalarType.BFloat16);
        using var pool32 = new KvBlockPool(config, 20, blockSize, ScalarType.Float32);
        var gen = new TorchSharp.torch.Generator(5);
        pool16.Keys(0).copy_(randn(pool16.Keys(0).shape, generator: gen));
        pool16.Values(0).copy_(randn(pool16.Values(0).shape, generator: gen));
        pool32.Keys(0).copy_(pool16.Keys(0));   // exactly the bf16 values, in float32
        pool32.Values(0).copy_(pool16.Values(0));
        var seqs = lengths.Select(_ => new PagedSequence(pool16)).ToArray();
        for (int i = 0; i < seqs.Length; i++) Assert.True(seqs[i].Reserve(lengths[i]));
        var (tables, readSlots, mask) = Layout(seqs, lengths);
        var q = (randn([seqs.Length, 8, 1, 40], generator: gen) * 2.0).to(ScalarType.BFloat16);
        var bf16 = PagedDecodeAttention.InPlace(q, pool16.Keys(0), pool16.Values(0), tables, blockSize, 4);
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        var f32 = PagedDecodeAttention.InPlace(q.to(ScalarType.Float32), pool32.Keys(0), pool32.Values(0), tables, blockSize, 4).to(ScalarType.BFloat16);
        Assert.True(bf16.eq(f32).all().item<bool>(), "widening bf16 to float32 is exact, so the two must agree bit for bit");
        // And the bf16 gather path (bf16 matmuls) agrees to bf16's precision.
        var gather = PagedDecodeAttention.Gather(q, pool16.Keys(0), pool16.Values(0), readSlots, mask, 4).to(ScalarType.Float32);
        double diff = (bf16.to(ScalarType.Float32) - gather).abs().max().item<float>();
        Assert.True(diff <= 2e-2 * gather.abs().max().item<float>(), $"bf16 kernel vs bf16 gather: max diff {diff:E2}");
    }

    [Fact]
    public void The_in_place_kernel_refuses_a_float16_pool_with_the_fix()
    {
        TorchRuntime.Initialise();
        using var scope = NewDisposeScope();
        var config = Shape(8, 4, 16);
        using var pool = new KvBlockPool(config, 8, 4, ScalarType.Float16);
        var seq = new PagedSequence(pool);
        Assert.True(seq.Reserve(1));
        var error = Assert.Throws<ArgumentException>(() => PagedDecodeAttention.InPlace(zeros(1, 8, 1, 16, ScalarType.Float16), pool.Keys(0), pool.Values(0), new PagedBlockTables([seq.Blocks[0]], [1], 1), 4, 4));
        Assert.Contains("PagedDecodePath.Gather", error.Message);
    }
}
