using CptLab.Model;

namespace CptLab.Demo;

/// <summary>
/// The sizes of one demo mode, scaled so that the default mode finishes in about 11 minutes with AMX-BF16 and 36 on an AVX2-only AMD EPYC on a 2-core CPU
/// and the quick mode in about a minute and a half; the models are Llama-3 in miniature (GQA, RoPE, SwiGLU, tied
/// embeddings), the small one standing in for Llama-3 8B (the proxy) and the large one for 70B.
/// </summary>
public sealed record DemoScale
{
    public required string Name { get; init; }
    public required int VocabSize { get; init; }
    public required double TokenizerSampleMb { get; init; }
    public required int SeqLen { get; init; }
    public required int MicroBatch { get; init; }
    public required int GlobalBatchSequences { get; init; }
    public required (int Hidden, int Layers, int Heads, int KvHeads, int Intermediate) Small { get; init; }
    public required (int Hidden, int Layers, int Heads, int KvHeads, int Intermediate) Large { get; init; }
    public required long BasePretrainTokens { get; init; }
    public required double BasePeakLr { get; init; }
    public required IReadOnlyList<double> Almrs { get; init; }
    public required IReadOnlyList<double> Lrs { get; init; }
    public required long CptTokens { get; init; }
    /// <summary>The objective: Chinese loss plus this weight times English forgetting.</summary>
    public double ForgettingWeight { get; init; } = 2.0;
    public int Bootstrap { get; init; } = 200;

    public long GlobalBatchTokens => (long)GlobalBatchSequences * SeqLen;

    public LlamaConfig ModelConfig((int Hidden, int Layers, int Heads, int KvHeads, int Intermediate) size, int vocab) => new()
    {
        VocabSize = vocab, HiddenSize = size.Hidden, IntermediateSize = size.Intermediate, NumHiddenLayers = size.Layers,
        NumAttentionHeads = size.Heads, NumKeyValueHeads = size.KvHeads, HeadDim = size.Hidden / size.Heads,
        MaxPositionEmbeddings = SeqLen, RopeTheta = 10000.0, RmsNormEps = 1e-5, TieWordEmbeddings = true, TorchDtype = "float32",
    };

    public static DemoScale Default { get; } = new()
    {
        Name = "default", VocabSize = 4096, TokenizerSampleMb = 2, SeqLen = 128, MicroBatch = 16, GlobalBatchSequences = 16,
        Small = (128, 4, 4, 2, 352), Large = (192, 6, 6, 2, 512),
        BasePretrainTokens = 2_500_000, BasePeakLr = 3e-3,
        Almrs = [0.1, 0.3, 0.5, 0.7], Lrs = [3e-4, 1e-3, 3e-3, 1e-2],
        CptTokens = 150_000,
    };

    public static DemoScale Quick { get; } = new()
    {
        Name = "quick", VocabSize = 2048, TokenizerSampleMb = 0.5, SeqLen = 64, MicroBatch = 16, GlobalBatchSequences = 16,
        Small = (64, 2, 4, 2, 192), Large = (96, 3, 4, 2, 256),
        BasePretrainTokens = 200_000, BasePeakLr = 5e-3,
        Almrs = [0.2, 0.5, 0.8], Lrs = [1e-3, 3e-3, 1e-2],
        CptTokens = 40_000, Bootstrap = 50,
    };
}
