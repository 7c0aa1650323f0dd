using System.Text.Json;
using CptLab.Core;
using CptLab.Model;

namespace CptLab.ModelConfig.Tests;

public class ConfigTests
{
    // The config.json of meta-llama/Llama-3.2-1B as published on the Hub.
    const string Llama32_1B = """
    {
      "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
      "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
      "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
      "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
      "rms_norm_eps": 1e-05,
      "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256
    }
    """;

    static LlamaConfig Parse(string json) => LlamaConfig.FromJson(JsonDocument.Parse(json).RootElement, "config.json");

    [Fact]
    public void Hub_config_parses_to_the_flavor()
    {
        var c = Parse(Llama32_1B);
        var flavor = Flavors.Get("Llama-3.2-1B");
        Assert.Equal(flavor with { EosTokenIds = [] }, c with { EosTokenIds = [] });
        Assert.Equal([128001], c.EosTokenIds);
        Assert.Equal(4, c.KvGroups);
    }

    [Fact]
    public void Round_trip_through_json()
    {
        var c = Flavors.Get("Llama-3.1-8B");
        var back = Parse(c.ToJson().ToJsonString());
        Assert.Equal(c with { EosTokenIds = [] }, back with { EosTokenIds = [] });
        Assert.Equal(c.EosTokenIds, back.EosTokenIds);
    }

    [Theory]
    [InlineData("\"hidden_size\": 2048,", "", "hidden_size", "missing")]
    [InlineData("\"hidden_size\": 2048", "\"hidden_size\": \"big\"", "hidden_size", "expected a number")]
    [InlineData("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5", "num_key_value_heads", "does not divide")]
    [InlineData("\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\"", "rope_scaling.rope_type", "not supported")]
    [InlineData("\"torch_dtype\": \"bfloat16\"", "\"torch_dtype\": \"int8\"", "torch_dtype", "not one of")]
    [InlineData("\"eos_token_id\": 128001", "\"eos_token_id\": [128001, 999999]", "eos_token_id", "outside the vocabulary")]
    [InlineData("\"model_type\": \"llama\"", "\"model_type\": \"qwen2\"", "model_type", "not 'llama'")]
    public void Errors_name_the_key(string find, string replace, string key, string problem)
    {
        Assert.Contains(find, Llama32_1B);
        var e = Assert.Throws<ConfigException>(() => Parse(Llama32_1B.Replace(find, replace)));
        Assert.Equal(key, e.Key);
        Assert.Contains(problem, e.Message);
        Assert.StartsWith("config.json: key", e.Message);
    }

    [Fact]
    public void Eos_list_and_defaults()
    {
        var c = Parse(Llama32_1B.Replace("\"eos_token_id\": 128001", "\"eos_token_id\": [128001, 128008, 128009]").Replace("\"head_dim\": 64,", ""));
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        Assert.Equal(64, c.HeadDim); // hidden / heads
    }

    // Published parameter counts of the Llama-3 family.
    [Theory]
    [InlineData("Llama-3-8B", 8_030_261_248L)]
    [InlineData("Llama-3-70B", 70_553_706_496L)]
    [InlineData("Llama-3.2-1B", 1_235_814_400L)]
    public void Parameter_counts_match_published_sizes(string flavor, long expected) =>
        Assert.Equal(expected, ModelMath.ParameterCount(Flavors.Get(flavor)));

    [Fact]
    public void Flops_per_token_follow_6N_plus_attention()
    {
        var c = Flavors.Get("Llama-3-8B");
        // 6 × (weights in matrix products: all but the embedding table and the norms) + 12 · L · n_heads · head_dim · T
        long matmulWeights = 8_030_261_248L - 128256L * 4096 - 4096 - 32 * 2 * 4096;
        double expected = 6.0 * matmulWeights + 12.0 * 32 * 32 * 128 * 8192;
        Assert.Equal(expected, ModelMath.TrainingFlopsPerToken(c, 8192), expected * 1e-12);
    }

    [Fact]
    public void Unknown_flavor_lists_the_known_ones()
    {
        var e = Assert.Throws<CptLabException>(() => Flavors.Get("Llama-9"));
        Assert.Contains("Llama-3-8B", e.Message);
    }
}
