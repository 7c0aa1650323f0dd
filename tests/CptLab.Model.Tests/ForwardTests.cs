using CptLab.Model;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

public class ForwardTests(ITestOutputHelper output)
{
    static double[][] TorchLogits(LlamaForCausalLM model, long[] tokens)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.forward(tensor(tokens).unsqueeze(0))[0].to(ScalarType.Float64); // (T, V)
        return Enumerable.Range(0, tokens.Length).Select(t => logits[t].data<double>().ToArray()).ToArray();
    }

    static double RelativeError(double[][] actual, double[][] expected)
    {
        double maxDiff = 0, maxRef = 0;
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < expected[t].Length; v++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(actual[t][v] - expected[t][v]));
                maxRef = Math.Max(maxRef, Math.Abs(expected[t][v]));
            }
        return maxDiff / maxRef;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Logits_agree_with_double_precision_reference(bool tied)
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny(tied));
        var tokens = TestModels.Tokens(40, model.Config.VocabSize); // past position 32, where the bands differ visibly
        var expected = new ReferenceLlama(model).Logits(tokens);
        var actual = TorchLogits(model, tokens);
        Assert.True(expected[0].Max(Math.Abs) > 0.5, "logits should be far from zero for a meaningful relative check");
        double err = RelativeError(actual, expected);
        Assert.True(err < 1e-4, $"relative error {err:E2}");
    }

    [Theory]
    [InlineData(AttentionKernel.Explicit)]
    [InlineData(AttentionKernel.Fused)]
    public void Both_attention_kernels_agree_with_the_reference(AttentionKernel kernel)
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        model.Body.Kernel = kernel;
        var tokens = TestModels.Tokens(40, model.Config.VocabSize);
        double err = RelativeError(TorchLogits(model, tokens), new ReferenceLlama(model).Logits(tokens));
        Assert.True(err < 1e-4, $"{kernel}: relative error {err:E2}");
    }

    [Fact]
    public void Bf16_explicit_attention_is_as_accurate_as_the_fused_kernel()
    {
        // bf16 keeps 8 bits of mantissa, so neither kernel matches fp32 closely; the explicit one must not be worse.
        TorchRuntime.Initialise();
        var config = TestModels.Tiny();
        using var model32 = TestModels.Random(config);
        using var model16 = TestModels.Random(config, dtype: ScalarType.BFloat16);
        var tokens = TestModels.Tokens(40, config.VocabSize);
        var reference = TorchLogits(model32, tokens);
        model16.Body.Kernel = AttentionKernel.Explicit;
        double explicitErr = RelativeError(TorchLogits(model16, tokens), reference);
        model16.Body.Kernel = AttentionKernel.Fused;
        double fusedErr = RelativeError(TorchLogits(model16, tokens), reference);
        Assert.True(explicitErr < 1.5 * fusedErr + 1e-3, $"explicit {explicitErr:E2} vs fused {fusedErr:E2} relative error against fp32");
    }

    [Fact]
    public void Reference_check_detects_a_wrong_rope_scaling()
    {
        // The comparison above must be able to fail: a model whose rope frequencies differ (default instead of
        // llama3 scaling) gives logits the reference rejects.
        TorchRuntime.Initialise();
        var config = TestModels.Tiny();
        using var model = TestModels.Random(config);
        using var unscaled = TestModels.Random(config with { RopeScaling = null });
        var tokens = TestModels.Tokens(40, config.VocabSize);
        double err = RelativeError(TorchLogits(unscaled, tokens), new ReferenceLlama(model).Logits(tokens));
        Assert.True(err > 1e-3, $"relative error only {err:E2}");
    }

    [Fact]
    public void Model_uses_the_half_split_rope_layout_not_the_interleaved_one()
    {
        // Same weights, same frequencies: only which coordinates rotate together differs. The model must match
        // Hugging Face's half-split pairs (x_d, x_{d+hd/2}) and be rejected by the interleaved (x_{2d}, x_{2d+1})
        // reference, so a layout slip would not pass the agreement tests above.
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var tokens = TestModels.Tokens(40, model.Config.VocabSize);
        var actual = TorchLogits(model, tokens);
        double halfSplit = RelativeError(actual, new ReferenceLlama(model, RopeLayout.HalfSplit).Logits(tokens));
        double interleaved = RelativeError(actual, new ReferenceLlama(model, RopeLayout.Interleaved).Logits(tokens));
        output.WriteLine($"relative error against the half-split reference {halfSplit:E2}, against the interleaved one {interleaved:E2}");
        Assert.True(halfSplit < 1e-4, $"half-split reference: relative error {halfSplit:E2}");
        Assert.True(interleaved > 1e-3, $"interleaved reference: relative error only {interleaved:E2}");
    }

    [Fact]
    public void Bf16_model_stays_close_to_fp32()
    {
        TorchRuntime.Initialise();
        var config = TestModels.Tiny();
        using var model32 = TestModels.Random(config);
        using var model16 = TestModels.Random(config, dtype: ScalarType.BFloat16);
        var tokens = TestModels.Tokens(16, config.VocabSize);
        double err = RelativeError(TorchLogits(model16, tokens), TorchLogits(model32, tokens));
        Assert.InRange(err, 1e-6, 0.1); // bf16 is lossy, but not wildly so
    }

    [Fact]
    public void Parameter_names_are_hugging_face_names()
    {
        TorchRuntime.Initialise();
        using var model = new LlamaForCausalLM(TestModels.Tiny());
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        string[] expected =
        [
            "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
            "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
            "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
            "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight",
            "model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight",
        ];
        foreach (var n in expected) Assert.Contains(n, names);
        Assert.Equal(3 + 2 * 9, names.Count);
        Assert.Empty(model.named_buffers());
    }

    [Theory]
    [InlineData("debug")]
    [InlineData("cpu-2m")]
    public void Parameter_count_formula_matches_the_model(string flavor)
    {
        TorchRuntime.Initialise();
        var config = Flavors.Get(flavor);
        using var model = new LlamaForCausalLM(config);
        long actual = model.parameters().Sum(p => p.numel());
        Assert.Equal(actual, ModelMath.ParameterCount(config));
    }
}
