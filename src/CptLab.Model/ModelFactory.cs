using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>Library entry points behind `cptlab model init|info`.</summary>
public static class ModelFactory
{
    /// <summary>A freshly initialised model in <paramref name="dtype"/> (default: the config's), saved as a model folder.</summary>
    /// <param name="contents">The tokenizer files it gets (none: a folder of weights that cannot be served as it is).</param>
    public static void InitAndSave(LlamaConfig config, string dir, long seed, ScalarType? dtype = null, ModelFolderContents? contents = null,
        long maxShardBytes = ModelFolder.DefaultMaxShardBytes)
    {
        using var model = new LlamaForCausalLM(config, dtype);
        model.InitWeights(seed);
        ModelFolder.Save(model, dir, contents ?? ModelFolderContents.None, maxShardBytes: maxShardBytes);
    }

    /// <summary>The configuration and the derived sizes, as printed by `cptlab model info`.</summary>
    public static string Describe(LlamaConfig c, int seqLen)
    {
        var inv = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        void Line(string key, object value) => s.AppendLine(inv, $"{key,-34}{value}");
        Line("vocab_size", c.VocabSize);
        Line("hidden_size", c.HiddenSize);
        Line("intermediate_size", c.IntermediateSize);
        Line("num_hidden_layers", c.NumHiddenLayers);
        Line("num_attention_heads", c.NumAttentionHeads);
        Line("num_key_value_heads", c.NumKeyValueHeads);
        Line("head_dim", c.HeadDim);
        Line("max_position_embeddings", c.MaxPositionEmbeddings);
        Line("rope_theta", c.RopeTheta.ToString(inv));
        Line("rope_scaling", c.RopeScaling is { } rs
            ? $"{rs.RopeType} (factor {rs.Factor.ToString(inv)}, low {rs.LowFreqFactor.ToString(inv)}, high {rs.HighFreqFactor.ToString(inv)}, original {rs.OriginalMaxPositionEmbeddings})"
            : "none");
        Line("rms_norm_eps", c.RmsNormEps.ToString(inv));
        Line("tie_word_embeddings", c.TieWordEmbeddings ? "true" : "false");
        Line("bos / eos token ids", $"{c.BosTokenId?.ToString(inv) ?? "-"} / {string.Join(",", c.EosTokenIds)}");
        Line("torch_dtype", c.TorchDtype);
        s.AppendLine();
        Line("parameters", $"{ModelMath.ParameterCount(c).ToString("N0", inv)} ({Human(ModelMath.ParameterCount(c))})");
        Line("  embedding", ModelMath.EmbeddingParameters(c).ToString("N0", inv));
        Line("  per layer", ModelMath.LayerParameters(c).ToString("N0", inv));
        Line("  in matrix products", ModelMath.MatmulParameters(c).ToString("N0", inv));
        Line($"forward FLOPs/token @ {seqLen}", $"{ModelMath.ForwardFlopsPerToken(c, seqLen):E3}");
        Line($"training FLOPs/token @ {seqLen}", $"{ModelMath.TrainingFlopsPerToken(c, seqLen):E3}");
        Line("KV cache per token (bf16)", $"{ModelMath.KvCacheBytesPerToken(c, 2).ToString("N0", inv)} bytes");
        return s.ToString();
    }

    static string Human(long n) => n switch
    {
        >= 1_000_000_000 => $"{n / 1e9:F2}B",
        >= 1_000_000 => $"{n / 1e6:F2}M",
        _ => $"{n / 1e3:F1}K",
    };
}
