using CptLab.Model;

namespace CptLab.Demo;

/// <summary>
/// The sizes of one demo mode, scaled so that the default mode finishes in about 20 minutes on a 2-core AMD EPYC with
/// AVX-512 (AVX2-only CPUs take about twice as long) and the quick mode in under a minute and a half; the models are Llama-3 in miniature (GQA, RoPE, SwiGLU, tied
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
    /// <summary>Chosen vs naive is trained once per seed (document order and trainer seed); the first seed's models go on to post-training.</summary>
    public IReadOnlyList<int> CptSeeds { get; init; } = [1, 2];
    /// <summary>Null: the sweep runs the whole grid; otherwise the adaptive design, stopping after at least this many runs.</summary>
    public int? AdaptiveMinRuns { get; init; }
    /// <summary>
    /// Expected seconds per stage (group), printed before the demo starts, measured on an idle 2-core AMD EPYC with AVX-512
    /// (avx512_bf16, no AMX) on 2026-12-04: quick 77 s in all (the integration test); default: measured 2026-12-04 on a 2-core AMD
    /// EPYC with AVX-512 (avx512_bf16, no AMX), 21.3 min in all (the sweep: 15 adaptive runs).
    /// </summary>
    public required IReadOnlyDictionary<string, double> ExpectedSeconds { get; init; }
    /// <summary>SFT, DPO and the evaluation harness after continual pre-training.</summary>
    public required PostTrainingScale Post { get; init; }

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
        Almrs = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85], Lrs = [3e-4, 1e-3, 3e-3, 1e-2], AdaptiveMinRuns = 14,
        CptTokens = 150_000,
        ExpectedSeconds = new Dictionary<string, double>
        {
            ["extract+tokenizer+prepare"] = 27, ["base-small"] = 262, ["sweep"] = 130, ["base-large"] = 496, ["cpt (2 seeds)"] = 127, ["evaluate"] = 13,
            ["post-train-sets"] = 1, ["sft"] = 100, ["dpo"] = 22, ["evaluate-harness"] = 97, ["gguf+serve"] = 2,
        },
        Post = new()
        {
            SftGsm8k = 400, SftTranslation = 2400, SftValidation = 48, SftEpochs = 2, SftLr = 1e-3,
            DpoGsm8k = 128, DpoTranslation = 384, DpoValidation = 32, DpoEpochs = 1, DpoLr = 2e-4,
            GlobalBatchRows = 16, MicroBatch = 16, EvalLimit = 6, ReplyTokens = 48,
        },
    };

    public static DemoScale Quick { get; } = new()
    {
        Name = "quick", VocabSize = 2048, TokenizerSampleMb = 0.5, SeqLen = 64, MicroBatch = 16, GlobalBatchSequences = 16,
        Small = (64, 2, 4, 2, 192), Large = (96, 3, 4, 2, 256),
        BasePretrainTokens = 200_000, BasePeakLr = 5e-3,
        Almrs = [0.2, 0.5, 0.8], Lrs = [1e-3, 3e-3, 1e-2],
        CptTokens = 40_000, Bootstrap = 50,
        ExpectedSeconds = new Dictionary<string, double>
        {
            ["extract+tokenizer+prepare"] = 13, ["base-small"] = 8, ["sweep"] = 12, ["base-large"] = 10, ["cpt (2 seeds)"] = 9, ["evaluate"] = 2,
            ["post-train-sets"] = 1, ["sft"] = 4, ["dpo"] = 1, ["evaluate-harness"] = 13, ["gguf+serve"] = 1,
        },
        Post = new()
        {
            SftGsm8k = 96, SftTranslation = 480, SftValidation = 16, SftEpochs = 2, SftLr = 2e-3,
            DpoGsm8k = 32, DpoTranslation = 96, DpoValidation = 16, DpoEpochs = 1, DpoLr = 5e-4,
            GlobalBatchRows = 16, MicroBatch = 16, EvalLimit = 5, ReplyTokens = 24,
        },
    };
}

/// <summary>
/// The post-training budgets of a demo mode: how many records of each set `cptlab data post-train-sets` builds are
/// used (the first N of each file, unchanged), the epochs and learning rates, and the harness's --limit.
/// </summary>
public sealed record PostTrainingScale
{
    /// <summary>SFT conversations taken from gsm8k_sft.jsonl and translation_sft.jsonl, and held-out ones from each .val.jsonl.</summary>
    public required int SftGsm8k { get; init; }
    public required int SftTranslation { get; init; }
    public required int SftValidation { get; init; }
    public required double SftEpochs { get; init; }
    public required double SftLr { get; init; }
    /// <summary>Preference pairs taken from gsm8k_dpo.jsonl and translation_dpo.jsonl, and held-out ones from each .val.jsonl.</summary>
    public required int DpoGsm8k { get; init; }
    public required int DpoTranslation { get; init; }
    public required int DpoValidation { get; init; }
    public required double DpoEpochs { get; init; }
    public required double DpoLr { get; init; }
    public double DpoBeta { get; init; } = 0.1;
    /// <summary>Rows of seq_len tokens per optimizer step (a DPO row is one completion: half as many pairs).</summary>
    public required int GlobalBatchRows { get; init; }
    public required int MicroBatch { get; init; }
    /// <summary>The harness's --limit: documents per task or subject (CMMLU: per subject, 67 of them).</summary>
    public required int EvalLimit { get; init; }
    /// <summary>Greedy tokens of each chat sample, the GGUF answer and the served reply.</summary>
    public required int ReplyTokens { get; init; }
}
