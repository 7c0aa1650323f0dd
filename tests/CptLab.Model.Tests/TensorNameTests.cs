namespace CptLab.Model.Tests;

/// <summary>The config-only list of Hugging Face tensor names against the TorchSharp model's own parameters.</summary>
public class TensorNameTests
{
    public static TheoryData<bool, bool, bool> Variants => new()
    {
        { true, false, false },  // tied head, no biases (Llama-3.2-1B)
        { false, false, false }, // untied head (Llama-3-8B)
        { false, true, true },   // attention and MLP biases
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void The_table_lists_exactly_the_models_parameters_with_their_shapes(bool tied, bool attentionBias, bool mlpBias)
    {
        TorchRuntime.Initialise();
        var config = TestModels.Tiny() with { TieWordEmbeddings = tied, AttentionBias = attentionBias, MlpBias = mlpBias };
        using var model = new LlamaForCausalLM(config, TorchSharp.torch.ScalarType.Float32);
        var fromModel = model.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        var fromTable = HfTensorNames.Expected(config);
        Assert.Equal(fromTable.Select(t => t.Name).Order(), fromModel.Select(p => p.name).Order());
        foreach (var (name, shape) in fromModel)
            Assert.Equal(fromTable.Single(t => t.Name == name).Shape, shape);
        // ModelMath counts by formula; the table's shapes must add up to the same number.
        Assert.Equal(ModelMath.ParameterCount(config), fromTable.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
    }

    [Fact]
    public void Llama_3_8B_has_the_published_tensor_count_and_size()
    {
        // Meta-Llama-3-8B's model.safetensors.index.json lists 291 tensors: 32 layers × 9 + embeddings, norm, lm_head.
        var table = HfTensorNames.Expected(Flavors.Get("Llama-3-8B"));
        Assert.Equal(291, table.Count);
        Assert.Equal(8_030_261_248L, table.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
        Assert.Contains(table, t => t.Name == "model.layers.31.self_attn.k_proj.weight" && t.Shape.SequenceEqual(new long[] { 1024, 4096 }));
    }
}
