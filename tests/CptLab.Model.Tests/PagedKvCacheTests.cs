using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

/// <summary>The paged cache computes what the full forward pass computes, whatever the blocks, chunks and batch.</summary>
public class PagedKvCacheTests
{
    static void Close(Tensor got, Tensor want, string where)
    {
        double diff = (got - want).abs().max().item<float>();
        double scale = want.abs().max().item<float>();
        Assert.True(diff <= 1e-5 * scale, $"{where}: max diff {diff:E2} (scale {scale:F2})");
    }

    [Theory]
    [InlineData(4, 24)]  // prompt spans several blocks
    [InlineData(16, 24)] // prompt inside one block
    [InlineData(4, 7)]   // prompt ends mid-block
    public void Prefill_then_step_by_step_decoding_gives_the_full_forward_logits(int blockSize, int prompt)
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var tokens = TestModels.Tokens(prompt + 10, model.Config.VocabSize).Select(t => (int)t).ToArray();
        using var _ = no_grad();
        using var full = model.forward(tensor(tokens.Select(t => (long)t).ToArray()).unsqueeze(0))[0]; // (T, V)
        using var pool = new KvBlockPool(model.Config, 32, blockSize, model.Dtype);
        var seq = new PagedSequence(pool);
        Assert.True(seq.Reserve(prompt));
        using (var all = model.PrefillPaged(seq, tokens.AsSpan(0, prompt), allPositions: true))
            for (int i = 0; i < prompt; i++) Close(all[i], full[i], $"prefill position {i}");
        for (int p = prompt; p < tokens.Length; p++)
        {
            using var scope = NewDisposeScope();
            Assert.True(seq.Reserve(1));
            var logits = model.DecodePaged([seq], tokens.AsSpan(p, 1));                      // (1, V)
            Close(logits[0], full[p], $"decode position {p}");
        }
        Assert.Equal(tokens.Length, seq.Length);
        Assert.Equal(pool.BlocksFor(tokens.Length), pool.UsedBlocks);
        seq.Release();
        Assert.Equal(0, pool.UsedBlocks);
    }

    [Fact]
    public void Chunked_prefill_attends_to_the_chunks_cached_before_and_returns_only_the_last_logits()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var tokens = TestModels.Tokens(23, model.Config.VocabSize).Select(t => (int)t).ToArray();
        using var _ = no_grad();
        using var full = model.forward(tensor(tokens.Select(t => (long)t).ToArray()).unsqueeze(0))[0];
        using var pool = new KvBlockPool(model.Config, 16, 4, model.Dtype);
        var seq = new PagedSequence(pool);
        foreach (var (from, n) in new[] { (0, 5), (5, 9), (14, 9) })
        {
            Assert.True(seq.Reserve(n));
            using var last = model.PrefillPaged(seq, tokens.AsSpan(from, n), allPositions: false);
            Assert.Equal([1L, model.Config.VocabSize], last.shape);
            Close(last[0], full[from + n - 1], $"chunk ending at {from + n - 1}");
        }
    }

    [Fact]
    public void A_ragged_batch_decodes_each_sequence_as_it_would_alone_with_blocks_interleaved()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        int[] promptLengths = [3, 9, 1, 6];
        const int steps = 7;
        var seqs = promptLengths.Select((n, i) => TestModels.Tokens(n + steps, model.Config.VocabSize, seed: 10 + i).Select(t => (int)t).ToArray()).ToArray();
        using var _ = no_grad();
        using var pool = new KvBlockPool(model.Config, 64, 2, model.Dtype);
        var paged = seqs.Select(_ => new PagedSequence(pool)).ToList();
        for (int i = 0; i < seqs.Length; i++)
        {
            Assert.True(paged[i].Reserve(promptLengths[i]));
            model.PrefillPaged(paged[i], seqs[i].AsSpan(0, promptLengths[i]), allPositions: false).Dispose();
        }
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            foreach (var p in paged) Assert.True(p.Reserve(1)); // blocks of different sequences interleave in the pool
            var ids = seqs.Select((s, i) => s[promptLengths[i] + step]).ToArray();
            var logits = model.DecodePaged(paged, ids);                                             // (B, V)
            for (int i = 0; i < seqs.Length; i++)
            {
                int pos = promptLengths[i] + step;
                var alone = model.forward(tensor(seqs[i][..(pos + 1)].Select(t => (long)t).ToArray()).unsqueeze(0))[0, -1];
                Close(logits[i], alone, $"sequence {i}, step {step}");
            }
        }
        Assert.Contains(paged[0].Blocks, b => b > paged[1].Blocks[0]); // the tables really are interleaved
    }

    [Fact]
    public void Packed_prefill_of_several_fresh_prompts_gives_each_its_own_last_logits_and_cache()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        int[] lengths = [5, 1, 11, 3];
        var prompts = lengths.Select((n, i) => TestModels.Tokens(n + 1, model.Config.VocabSize, seed: 20 + i).Select(t => (int)t).ToArray()).ToArray();
        using var _ = no_grad();
        using var pool = new KvBlockPool(model.Config, 32, 4, model.Dtype);
        var seqs = prompts.Select(_ => new PagedSequence(pool)).ToList();
        for (int i = 0; i < seqs.Count; i++) Assert.True(seqs[i].Reserve(lengths[i] + 1));
        using (var last = model.PrefillPagedPacked(seqs, prompts.Select((p, i) => p[..lengths[i]]).ToList())) // (n, V)
            for (int i = 0; i < prompts.Length; i++)
            {
                using var alone = model.forward(tensor(prompts[i][..lengths[i]].Select(t => (long)t).ToArray()).unsqueeze(0))[0, -1];
                Close(last[i], alone, $"prompt {i} prefill");
            }
        // The caches hold what each prompt alone would have: the next decode step matches the full forward.
        using var logits = model.DecodePaged(seqs, prompts.Select((p, i) => p[lengths[i]]).ToArray());
        for (int i = 0; i < prompts.Length; i++)
        {
            using var full = model.forward(tensor(prompts[i].Select(t => (long)t).ToArray()).unsqueeze(0))[0, -1];
            Close(logits[i], full, $"prompt {i} first decode");
        }
    }

    [Fact]
    public void Reserve_takes_blocks_only_when_a_position_crosses_into_a_new_block_and_refuses_when_the_pool_is_empty()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        using var pool = new KvBlockPool(model.Config, 4, 8, model.Dtype); // 3 usable blocks: 24 positions
        var a = new PagedSequence(pool);
        Assert.True(a.Reserve(9));
        Assert.Equal(2, pool.UsedBlocks);
        Assert.Equal(0, a.BlocksNeeded(7));
        var b = new PagedSequence(pool);
        Assert.True(b.Reserve(8));
        Assert.False(b.Reserve(9));
        Assert.Equal(3, pool.UsedBlocks);
        a.Release();
        Assert.Equal(2, pool.FreeBlocks);
        Assert.Equal(KvBlockPool.BytesPerBlock(model.Config, 8, model.Dtype) * 4, pool.Bytes);
    }
}
