using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Model;

/// <summary>Rotary-embedding frequency scaling, as in a Hugging Face config's <c>rope_scaling</c>.</summary>
/// <param name="RopeType">"default", "linear" or "llama3" (Llama-3.1 and later).</param>
public sealed record RopeScaling(
    string RopeType,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>
/// The architecture of a Llama-family causal LM, field for field the <c>config.json</c> of Hugging Face's
/// <c>LlamaForCausalLM</c>. One type, validated in one place (<see cref="Validate"/>); derived numbers
/// (parameter count, FLOPs per token) live next to it in <see cref="ModelMath"/>.
/// </summary>
public sealed record LlamaConfig
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 8192;
    public double RopeTheta { get; init; } = 500000.0;
    public RopeScaling? RopeScaling { get; init; }
    public double RmsNormEps { get; init; } = 1e-5;
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>The dtype the weights are stored in: "float32", "bfloat16" or "float16".</summary>
    public string TorchDtype { get; init; } = "bfloat16";

    public int KvGroups => NumAttentionHeads / NumKeyValueHeads;

    /// <summary>Throws a <see cref="ConfigException"/> naming the first key that is out of range.</summary>
    public LlamaConfig Validate(string source = "config")
    {
        Positive(source, "vocab_size", VocabSize);
        Positive(source, "hidden_size", HiddenSize);
        Positive(source, "intermediate_size", IntermediateSize);
        Positive(source, "num_hidden_layers", NumHiddenLayers);
        Positive(source, "num_attention_heads", NumAttentionHeads);
        Positive(source, "num_key_value_heads", NumKeyValueHeads);
        Positive(source, "head_dim", HeadDim);
        Positive(source, "max_position_embeddings", MaxPositionEmbeddings);
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new ConfigException(source, "num_key_value_heads", $"{NumKeyValueHeads} does not divide num_attention_heads = {NumAttentionHeads}");
        if (HeadDim % 2 != 0)
            throw new ConfigException(source, "head_dim", $"{HeadDim} is odd; rotary embeddings need an even head dimension");
        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta))
            throw new ConfigException(source, "rope_theta", $"{RopeTheta} must be a positive number");
        if (!(RmsNormEps > 0) || RmsNormEps >= 1)
            throw new ConfigException(source, "rms_norm_eps", $"{RmsNormEps} must be in (0, 1)");
        if (DtypeNames.Parse(TorchDtype) is null)
            throw new ConfigException(source, "torch_dtype", $"'{TorchDtype}' is not one of float32, bfloat16, float16");
        if (BosTokenId is { } bos && (bos < 0 || bos >= VocabSize))
            throw new ConfigException(source, "bos_token_id", $"{bos} is outside the vocabulary [0, {VocabSize})");
        foreach (var eos in EosTokenIds)
            if (eos < 0 || eos >= VocabSize)
                throw new ConfigException(source, "eos_token_id", $"{eos} is outside the vocabulary [0, {VocabSize})");
        if (RopeScaling is { } rs)
        {
            switch (rs.RopeType)
            {
                case "default":
                    break;
                case "linear":
                    if (!(rs.Factor > 0)) throw new ConfigException(source, "rope_scaling.factor", $"{rs.Factor} must be positive");
                    break;
                case "llama3":
                    if (!(rs.Factor > 0)) throw new ConfigException(source, "rope_scaling.factor", $"{rs.Factor} must be positive");
                    if (!(rs.LowFreqFactor > 0)) throw new ConfigException(source, "rope_scaling.low_freq_factor", $"{rs.LowFreqFactor} must be positive");
                    if (!(rs.HighFreqFactor > rs.LowFreqFactor))
                        throw new ConfigException(source, "rope_scaling.high_freq_factor", $"{rs.HighFreqFactor} must exceed low_freq_factor = {rs.LowFreqFactor}");
                    Positive(source, "rope_scaling.original_max_position_embeddings", rs.OriginalMaxPositionEmbeddings);
                    break;
                default:
                    throw new ConfigException(source, "rope_scaling.rope_type", $"'{rs.RopeType}' is not supported (supported: default, linear, llama3)");
            }
        }
        return this;
    }

    static void Positive(string source, string key, int value)
    {
        if (value <= 0) throw new ConfigException(source, key, $"{value} must be a positive integer");
    }

    // ---- Hugging Face config.json ----

    /// <summary>Reads and validates a Hugging Face <c>config.json</c>; errors name the file and the key.</summary>
    public static LlamaConfig Load(string path)
    {
        using var doc = Json.ParseFile(path);
        return FromJson(doc.RootElement, path);
    }

    public static LlamaConfig FromJson(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ConfigException(source, "(root)", "expected a JSON object");
        var r = new KeyReader(root, source);
        var modelType = r.OptString("model_type");
        if (modelType is not null && modelType != "llama")
            throw new ConfigException(source, "model_type", $"'{modelType}' is not 'llama'; CptLab loads LlamaForCausalLM checkpoints");
        if (root.TryGetProperty("architectures", out var arch) && arch.ValueKind == JsonValueKind.Array
            && arch.GetArrayLength() > 0 && !arch.EnumerateArray().Any(a => a.ValueKind == JsonValueKind.String && a.GetString() == "LlamaForCausalLM"))
            throw new ConfigException(source, "architectures", $"{arch.GetRawText()} does not list LlamaForCausalLM");

        int hidden = r.Int("hidden_size");
        int heads = r.Int("num_attention_heads");
        if (heads > 0 && !root.TryGetProperty("head_dim", out _) && hidden % heads != 0)
            throw new ConfigException(source, "num_attention_heads", $"{heads} does not divide hidden_size = {hidden} (and no head_dim is given)");
        var config = new LlamaConfig
        {
            VocabSize = r.Int("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = r.Int("intermediate_size"),
            NumHiddenLayers = r.Int("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = r.OptInt("num_key_value_heads") ?? heads,
            HeadDim = r.OptInt("head_dim") ?? (heads > 0 ? hidden / heads : 0),
            MaxPositionEmbeddings = r.OptInt("max_position_embeddings") ?? 2048,
            RopeTheta = r.OptDouble("rope_theta") ?? 10000.0,
            RopeScaling = ReadRopeScaling(root, source),
            RmsNormEps = r.OptDouble("rms_norm_eps") ?? 1e-6,
            TieWordEmbeddings = r.OptBool("tie_word_embeddings") ?? false,
            AttentionBias = r.OptBool("attention_bias") ?? false,
            MlpBias = r.OptBool("mlp_bias") ?? false,
            BosTokenId = r.OptInt("bos_token_id"),
            EosTokenIds = r.IntOrIntList("eos_token_id"),
            TorchDtype = r.OptString("torch_dtype") ?? r.OptString("dtype") ?? "float32",
        };
        return config.Validate(source);
    }

    static RopeScaling? ReadRopeScaling(JsonElement root, string source)
    {
        if (!root.TryGetProperty("rope_scaling", out var rs) || rs.ValueKind == JsonValueKind.Null) return null;
        if (rs.ValueKind != JsonValueKind.Object) throw new ConfigException(source, "rope_scaling", "expected an object or null");
        var r = new KeyReader(rs, source, "rope_scaling.");
        // Transformers writes both "rope_type" and the older "type".
        var type = r.OptString("rope_type") ?? r.OptString("type")
            ?? throw new ConfigException(source, "rope_scaling.rope_type", "missing");
        return new RopeScaling(
            type,
            r.OptDouble("factor") ?? 1.0,
            r.OptDouble("low_freq_factor") ?? 1.0,
            r.OptDouble("high_freq_factor") ?? 4.0,
            r.OptInt("original_max_position_embeddings") ?? 8192);
    }

    /// <summary>The config as Hugging Face writes it, so that transformers, vLLM and llama.cpp read it.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["rope_theta"] = RopeTheta,
            ["rms_norm_eps"] = RmsNormEps,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_bias"] = AttentionBias,
            ["mlp_bias"] = MlpBias,
            ["hidden_act"] = "silu",
            ["initializer_range"] = 0.02,
            ["attention_dropout"] = 0.0,
            ["pretraining_tp"] = 1,
            ["use_cache"] = true,
            ["torch_dtype"] = TorchDtype,
        };
        o["rope_scaling"] = RopeScaling is { } rs
            ? new JsonObject
            {
                ["rope_type"] = rs.RopeType,
                ["factor"] = rs.Factor,
                ["low_freq_factor"] = rs.LowFreqFactor,
                ["high_freq_factor"] = rs.HighFreqFactor,
                ["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings,
            }
            : null;
        if (BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (EosTokenIds.Count == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(e => (JsonNode)e).ToArray());
        return o;
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson().ToJsonString(Json.Indented) + "\n");

    /// <summary>Reads typed keys from a JSON object, with an error naming the key when one is missing or mistyped.</summary>
    sealed class KeyReader(JsonElement obj, string source, string prefix = "")
    {
        public int Int(string key) => OptInt(key) ?? throw new ConfigException(source, prefix + key, "missing (required for LlamaForCausalLM)");

        public int? OptInt(string key)
        {
            if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i)) return i;
            throw new ConfigException(source, prefix + key, $"expected an integer, found {v.GetRawText()}");
        }

        public double? OptDouble(string key)
        {
            if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
            throw new ConfigException(source, prefix + key, $"expected a number, found {v.GetRawText()}");
        }

        public bool? OptBool(string key)
        {
            if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return v.GetBoolean();
            throw new ConfigException(source, prefix + key, $"expected true or false, found {v.GetRawText()}");
        }

        public string? OptString(string key)
        {
            if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.String) return v.GetString();
            throw new ConfigException(source, prefix + key, $"expected a string, found {v.GetRawText()}");
        }

        public IReadOnlyList<int> IntOrIntList(string key)
        {
            if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return [];
            if (v.ValueKind == JsonValueKind.Number) return [OptInt(key)!.Value];
            if (v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out _)))
                return v.EnumerateArray().Select(e => e.GetInt32()).ToArray();
            throw new ConfigException(source, prefix + key, $"expected an integer or a list of integers, found {v.GetRawText()}");
        }
    }
}

/// <summary>Names of the floating-point dtypes checkpoints use, in Hugging Face and safetensors spelling.</summary>
public static class DtypeNames
{
    public static TorchSharp.torch.ScalarType? Parse(string name) => name switch
    {
        "float32" or "float" or "F32" or "fp32" => TorchSharp.torch.ScalarType.Float32,
        "bfloat16" or "BF16" or "bf16" => TorchSharp.torch.ScalarType.BFloat16,
        "float16" or "half" or "F16" or "fp16" => TorchSharp.torch.ScalarType.Float16,
        _ => null,
    };

    public static string HfName(TorchSharp.torch.ScalarType t) => t switch
    {
        TorchSharp.torch.ScalarType.Float32 => "float32",
        TorchSharp.torch.ScalarType.BFloat16 => "bfloat16",
        TorchSharp.torch.ScalarType.Float16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a checkpoint dtype"),
    };
}
