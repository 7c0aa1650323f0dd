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
        if (StoredDtypes.Normalise(TorchDtype) is null)
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

    public static LlamaConfig FromJson(JsonElement root, string source) =>
        JsonNode.Parse(root.GetRawText()) is JsonObject o ? FromJson(o, source) : throw new ConfigException(source, "(root)", "expected a JSON object");

    /// <summary>
    /// Reads the keys of <c>LlamaForCausalLM</c>'s config through the strict reader all CptLab configs use; keys it
    /// does not model (transformers writes many) are left alone, as transformers leaves unknown keys alone.
    /// </summary>
    public static LlamaConfig FromJson(JsonObject root, string source)
    {
        var r = new ConfigReader(root, source);
        int Required(string key) => r.Int(key) ?? throw r.Error(key, "missing (required for LlamaForCausalLM)");
        var modelType = r.String("model_type");
        if (modelType is not null && modelType != "llama")
            throw new ConfigException(source, "model_type", $"'{modelType}' is not 'llama'; CptLab loads LlamaForCausalLM checkpoints");
        if (r.Raw("architectures") is JsonArray arch && arch.Count > 0 && !arch.Any(a => a is JsonValue v && v.TryGetValue<string>(out var n) && n == "LlamaForCausalLM"))
            throw new ConfigException(source, "architectures", $"{arch.ToJsonString()} does not list LlamaForCausalLM");

        // transformers' ACT2FN: "silu" and its alias "swish" are the SwiGLU gate Llama uses; CptLab computes no other.
        if (r.String("hidden_act") is { } act && act is not ("silu" or "swish"))
            throw new ConfigException(source, "hidden_act", $"'{act}' is not supported; CptLab's Llama computes the SwiGLU MLP with silu only");
        int hidden = Required("hidden_size");
        int heads = Required("num_attention_heads");
        var headDim = r.Int("head_dim");
        if (heads > 0 && headDim is null && hidden % heads != 0)
            throw new ConfigException(source, "num_attention_heads", $"{heads} does not divide hidden_size = {hidden} (and no head_dim is given)");
        var eos = r.Longs("eos_token_id") ?? [];
        var config = new LlamaConfig
        {
            VocabSize = Required("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = Required("intermediate_size"),
            NumHiddenLayers = Required("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = r.Int("num_key_value_heads") ?? heads,
            HeadDim = headDim ?? (heads > 0 ? hidden / heads : 0),
            MaxPositionEmbeddings = r.Int("max_position_embeddings") ?? 2048,
            RopeTheta = r.Double("rope_theta") ?? 10000.0,
            RopeScaling = ReadRopeScaling(r),
            RmsNormEps = r.Double("rms_norm_eps") ?? 1e-6,
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
            AttentionBias = r.Bool("attention_bias") ?? false,
            MlpBias = r.Bool("mlp_bias") ?? false,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = eos.Select(e => e is >= int.MinValue and <= int.MaxValue ? (int)e : throw r.Error("eos_token_id", $"{e} is out of range")).ToArray(),
            TorchDtype = r.String("torch_dtype") ?? r.String("dtype") ?? "float32",
        };
        return config.Validate(source);
    }

    static RopeScaling? ReadRopeScaling(ConfigReader root)
    {
        if (root.Raw("rope_scaling") is null) return null;
        var r = root.Section("rope_scaling");
        // Transformers writes both "rope_type" and the older "type".
        var type = r.String("rope_type") ?? r.String("type") ?? throw r.Error("rope_type", "missing");
        return new RopeScaling(
            type,
            r.Double("factor") ?? 1.0,
            r.Double("low_freq_factor") ?? 1.0,
            r.Double("high_freq_factor") ?? 4.0,
            r.Int("original_max_position_embeddings") ?? 8192);
    }

    /// <summary>The config with the keys and spellings transformers' LlamaConfig writes (read back by <see cref="FromJson(JsonObject, string)"/>).</summary>
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
}

/// <summary>The floating-point dtypes checkpoints are stored in, by their Hugging Face names, with the other spellings in use.</summary>
public static class StoredDtypes
{
    /// <summary>"float32", "bfloat16" or "float16" for any accepted spelling (F32, fp32, BF16, half, …); null for anything else.</summary>
    public static string? Normalise(string name) => name switch
    {
        "float32" or "float" or "F32" or "fp32" => "float32",
        "bfloat16" or "BF16" or "bf16" => "bfloat16",
        "float16" or "half" or "F16" or "fp16" => "float16",
        _ => null,
    };
}
