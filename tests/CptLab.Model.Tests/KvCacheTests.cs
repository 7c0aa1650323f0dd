using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

public class KvCacheTests
{
    [Theory]
    [InlineData(1)] // prompt of one token, then one token per step
    [InlineData(5)] // a longer prefill, then one per step
    public void Step_by_step_decoding_gives_the_full_forward_logits(int prefill)
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var tokens = TestModels.Tokens(24, model.Config.VocabSize);
        using var _ = no_grad();
        using var full = model.forward(tensor(tokens).unsqueeze(0))[0]; // (T, V)

        using var cache = new KvCache(model.Config, 1, tokens.Length, model.Dtype);
        int pos = 0;
        while (pos < tokens.Length)
        {
            int n = pos == 0 ? prefill : 1;
            using var scope = NewDisposeScope();
            var step = model.forward(tensor(tokens[pos..(pos + n)]).unsqueeze(0), cache)[0]; // (n, V)
            for (int i = 0; i < n; i++)
            {
                double diff = (step[i] - full[pos + i]).abs().max().item<float>();
                double scale = full[pos + i].abs().max().item<float>();
                Assert.True(diff <= 1e-5 * scale, $"position {pos + i}: max diff {diff:E2} (scale {scale:F2})");
            }
            pos += n;
        }
        Assert.Equal(tokens.Length, cache.Length);
    }

    [Fact]
    public void Chunked_prefill_with_a_cache_uses_a_causal_mask_offset_by_the_cache()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var tokens = TestModels.Tokens(20, model.Config.VocabSize);
        using var _ = no_grad();
        using var full = model.forward(tensor(tokens).unsqueeze(0))[0];
        using var cache = new KvCache(model.Config, 1, tokens.Length, model.Dtype);
        using var first = model.forward(tensor(tokens[..8]).unsqueeze(0), cache)[0];
        using var second = model.forward(tensor(tokens[8..]).unsqueeze(0), cache)[0]; // 12 new positions after 8 cached
        double diff = (second - full.narrow(0, 8, 12)).abs().max().item<float>();
        Assert.True(diff <= 1e-5 * full.abs().max().item<float>(), $"max diff {diff:E2}");
    }

    [Fact]
    public void Causal_mask_with_offset_is_lower_triangular_shifted()
    {
        TorchRuntime.Initialise();
        using var mask = Attention.CausalMask(2, 3, CPU);
        var rows = Enumerable.Range(0, 2).Select(r => mask[r].data<bool>().ToArray()).ToArray();
        Assert.Equal([true, true, true, true, false], rows[0]);
        Assert.Equal([true, true, true, true, true], rows[1]);
    }

    [Fact]
    public void A_full_cache_refuses_more_positions()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        using var cache = new KvCache(model.Config, 1, 4, model.Dtype);
        using var _ = no_grad();
        model.forward(tensor(new long[] { 1, 2, 3 }).unsqueeze(0), cache).Dispose();
        Assert.Throws<InvalidOperationException>(() => model.forward(tensor(new long[] { 4, 5 }).unsqueeze(0), cache));
    }
}
