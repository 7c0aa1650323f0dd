using CptLab.Core;

namespace CptLab.Model;

/// <summary>
/// Named model sizes, as data. The Llama-3 entries copy the published Hugging Face configs; the cpu-* entries
/// are sized for a 2-core CPU and an 8k-token vocabulary (the demo tokenizer), and "debug" for unit tests.
/// </summary>
public static class Flavors
{
    static readonly RopeScaling Llama31Rope = new("llama3", Factor: 8.0, LowFreqFactor: 1.0, HighFreqFactor: 4.0, OriginalMaxPositionEmbeddings: 8192);

    static LlamaConfig Llama3(int hidden, int intermediate, int layers, int heads) => new()
    {
        VocabSize = 128256, HiddenSize = hidden, IntermediateSize = intermediate, NumHiddenLayers = layers,
        NumAttentionHeads = heads, NumKeyValueHeads = 8, HeadDim = hidden / heads,
        MaxPositionEmbeddings = 8192, RopeTheta = 500000.0, RmsNormEps = 1e-5,
        BosTokenId = 128000, EosTokenIds = [128001], TorchDtype = "bfloat16",
    };

    static LlamaConfig Cpu(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int context) => new()
    {
        VocabSize = vocab, HiddenSize = hidden, IntermediateSize = intermediate, NumHiddenLayers = layers,
        NumAttentionHeads = heads, NumKeyValueHeads = kvHeads, HeadDim = hidden / heads,
        MaxPositionEmbeddings = context, RopeTheta = 10000.0, RmsNormEps = 1e-5, TieWordEmbeddings = true,
        BosTokenId = 1, EosTokenIds = [2], TorchDtype = "float32",
    };

    public static readonly IReadOnlyDictionary<string, LlamaConfig> All = new Dictionary<string, LlamaConfig>(StringComparer.OrdinalIgnoreCase)
    {
        ["Llama-3-8B"] = Llama3(hidden: 4096, intermediate: 14336, layers: 32, heads: 32),
        ["Llama-3-70B"] = Llama3(hidden: 8192, intermediate: 28672, layers: 80, heads: 64),
        ["Llama-3.1-8B"] = Llama3(hidden: 4096, intermediate: 14336, layers: 32, heads: 32) with
        {
            MaxPositionEmbeddings = 131072, RopeScaling = Llama31Rope,
        },
        ["Llama-3.1-70B"] = Llama3(hidden: 8192, intermediate: 28672, layers: 80, heads: 64) with
        {
            MaxPositionEmbeddings = 131072, RopeScaling = Llama31Rope,
        },
        ["Llama-3.2-1B"] = Llama3(hidden: 2048, intermediate: 8192, layers: 16, heads: 32) with
        {
            HeadDim = 64, MaxPositionEmbeddings = 131072, TieWordEmbeddings = true,
            RopeScaling = new RopeScaling("llama3", Factor: 32.0, LowFreqFactor: 1.0, HighFreqFactor: 4.0, OriginalMaxPositionEmbeddings: 8192),
        },
        ["debug"] = Cpu(vocab: 512, hidden: 64, intermediate: 192, layers: 2, heads: 4, kvHeads: 2, context: 256),
        ["cpu-2m"] = Cpu(vocab: 8192, hidden: 128, intermediate: 384, layers: 4, heads: 4, kvHeads: 2, context: 512),
        ["cpu-7m"] = Cpu(vocab: 8192, hidden: 256, intermediate: 768, layers: 6, heads: 8, kvHeads: 4, context: 512),
        ["cpu-20m"] = Cpu(vocab: 8192, hidden: 512, intermediate: 1408, layers: 6, heads: 8, kvHeads: 4, context: 1024),
    };

    public static LlamaConfig Get(string name) =>
        All.TryGetValue(name, out var c)
            ? c.Validate($"flavor {name}")
            : throw new CptLabException($"unknown flavor '{name}'; known flavors: {string.Join(", ", All.Keys)}");
}
