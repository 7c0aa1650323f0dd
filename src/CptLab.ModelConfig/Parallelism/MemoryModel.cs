namespace CptLab.Model.Parallelism;

/// <summary>
/// The shape of a decoder-only transformer as the memory model needs it. <see cref="FromLlama"/> maps a Llama
/// config (SwiGLU, RMSNorm, no dropout, no biases); the other switches exist so that the model can be checked
/// against Megatron-LM's measured GPT runs (GeLU, LayerNorm, biases, dropout 0.1).
/// </summary>
/// <param name="Vocab">Unpadded vocabulary; Megatron pads it (<see cref="MemoryModel.PaddedVocab"/>).</param>
public sealed record TransformerShape(
    int Layers, int Hidden, int Ffn, bool GatedMlp, int Heads, int QueryGroups, int HeadDim, int Vocab,
    bool TiedEmbeddings, bool Biases = false, bool LayerNorm = false, bool Dropout = false)
{
    public static TransformerShape FromLlama(LlamaConfig c) => new(
        c.NumHiddenLayers, c.HiddenSize, c.IntermediateSize, GatedMlp: true, c.NumAttentionHeads, c.NumKeyValueHeads,
        c.HeadDim, c.VocabSize, c.TieWordEmbeddings, Biases: c.AttentionBias || c.MlpBias);

    /// <summary>Query width (heads · head_dim) and key/value width (groups · head_dim).</summary>
    public long QueryWidth => (long)Heads * HeadDim;
    public long KvWidth => (long)QueryGroups * HeadDim;

    /// <summary>Weights of one layer split by tensor parallelism (attention and MLP matrices, their biases).</summary>
    public long LayerShardedParameters
    {
        get
        {
            long h = Hidden, q = QueryWidth, kv = KvWidth, f = Ffn;
            long attention = h * (q + 2 * kv) + q * h + (Biases ? q + 2 * kv + h : 0);
            long mlp = (GatedMlp ? 3 : 2) * h * f + (Biases ? (GatedMlp ? 2 : 1) * f + h : 0);
            return attention + mlp;
        }
    }

    /// <summary>Weights of one layer every tensor-parallel rank holds in full: the two norms.</summary>
    public long LayerReplicatedParameters => 2L * Hidden * (LayerNorm ? 2 : 1);
}

/// <summary>One Megatron-LM layout, as the memory model takes it.</summary>
/// <param name="MicroBatchesPerPipeline">Micro-batches one pipeline runs per step (global batch ÷ (micro-batch · DP)).</param>
public sealed record Layout(
    int TensorParallel, int PipelineParallel, int DataParallel, int ContextParallel, int? VirtualPipelineStages,
    bool SequenceParallel, bool DistributedOptimizer, string Recompute, int MicroBatchSize, int MicroBatchesPerPipeline);

/// <summary>Memory of one pipeline stage, in bytes, before the overhead margin.</summary>
public sealed record StageBytes(string Stage, double Weights, double Gradients, double Optimizer, double Activations, double LayerMicroBatchesInFlight)
{
    public double Total => Weights + Gradients + Optimizer + Activations;
}

/// <summary>
/// Per-GPU memory of a Megatron-LM bf16 run with Adam, from the shape and the layout alone.
///
/// Static memory (Megatron's docs/user-guide/features/dist_optimizer.md): bf16 weights 2 bytes, fp32 main gradients
/// 4 bytes (Megatron accumulates and reduces gradients in fp32 for bf16), fp32 master weights + Adam m and v 12 bytes;
/// the distributed optimizer (ZeRO-1) shards those 12 bytes over the data-parallel group including context-parallel
/// ranks (they hold the same weights), so 6 + 12/(DP·CP) bytes per parameter, 18 without it.
///
/// Activations per layer and micro-batch (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
/// Transformer Models", Table 2: s·b·h·(34 + 5·a·s/h) bytes for GPT, 16-bit activations). The paper's 34 is
/// 10 parts every tensor-parallel rank holds (two norm inputs 4, the QKV and first-MLP inputs 4, two dropout masks 2)
/// and 24 parts split by TP (Q and K 4, V 2, the projection input 2, GeLU input 8 and output 8); the 5·a·s/h is the
/// attention scores (softmax 2, its dropout mask 1, dropout output 2). Adapted here, per token and bytes:
///   replicated 8h (+2h with dropout), divided by TP only with sequence parallelism;
///   split by TP: 2q (Q) + 4kv (K and V, GQA: kv = groups·head_dim) + 2q (attention output) and, for the MLP,
///     SwiGLU 4f (gate and up outputs) + 2f (their product, the down projection's input), GeLU 2f + 2f;
///   attention scores a·s·(2 + 3 with dropout) split by TP — zero with flash/fused attention (Megatron's default
///     with Transformer Engine), which never stores them; selective recomputation (the paper's §4.2) drops the same term.
/// Full recomputation keeps only each layer's input (2h per token, ÷TP with sequence parallelism) plus one layer's
/// full activations while it is recomputed. Context parallelism divides the sequence, so every term, by CP.
///
/// Pipeline (1F1B): stage r holds min(PP − r, m) micro-batches of its L/PP layers; interleaved with v virtual stages
/// it holds min(2(PP − r − 1) + (v − 1)·PP + 1, m·v) chunks of L/(PP·v) layers (Megatron's schedule warm-up; for the
/// first stage this is Megatron's 1 + (PP − 1)/(PP·v) penalty). The first stage also holds the embedding and the token
/// ids; the last stage the output layer and its logits (4 bytes per logit: the fp32 softmax the vocab-parallel cross
/// entropy keeps) for one micro-batch. The estimate is the larger of the first and the last stage.
/// </summary>
public static class MemoryModel
{
    /// <summary>Megatron's --make-vocab-size-divisible-by default; the padded vocabulary is a multiple of this × TP.</summary>
    public const int VocabDivisor = 128;

    public const double GiB = 1024.0 * 1024 * 1024;

    /// <summary>Recompute values, as Megatron's --recompute-granularity (none means the flag is absent).</summary>
    public static readonly IReadOnlyList<string> RecomputeKinds = ["none", "selective", "full"];

    public static long PaddedVocab(int vocab, int tensorParallel)
    {
        long multiple = (long)VocabDivisor * tensorParallel;
        return (vocab + multiple - 1) / multiple * multiple;
    }

    /// <summary>The first and the last pipeline stage (one entry when PP = 1).</summary>
    public static IReadOnlyList<StageBytes> Stages(TransformerShape shape, Layout layout, int seqLength, bool flashAttention = true)
    {
        int t = layout.TensorParallel, p = layout.PipelineParallel;
        if (shape.Layers % p != 0)
            throw new ArgumentException($"pipeline {p} does not divide {shape.Layers} layers");
        if (!RecomputeKinds.Contains(layout.Recompute))
            throw new ArgumentException($"recompute '{layout.Recompute}' is not one of {string.Join(", ", RecomputeKinds)}");
        int layersPerStage = shape.Layers / p;
        long vocab = PaddedVocab(shape.Vocab, t);
        double embedding = (double)vocab * shape.Hidden / t;
        double layers = layersPerStage * ((double)shape.LayerShardedParameters / t + shape.LayerReplicatedParameters);
        double finalNorm = shape.Hidden * (shape.LayerNorm ? 2 : 1);

        var result = new List<StageBytes>();
        foreach (int rank in p == 1 ? [0] : new[] { 0, p - 1 })
        {
            bool first = rank == 0, last = rank == p - 1;
            // A tied embedding still has a copy on the last stage when PP > 1 (Megatron syncs its gradient).
            double parameters = layers + (first ? embedding : 0) + (last ? finalNorm : 0)
                + (last && (!shape.TiedEmbeddings || !first) ? embedding : 0);
            double shards = layout.DistributedOptimizer ? (double)layout.DataParallel * layout.ContextParallel : 1;
            double inFlight = LayerMicroBatchesInFlight(layout, shape.Layers, rank);
            double activations = ActivationBytes(shape, layout, seqLength, flashAttention, inFlight, first, last, vocab);
            result.Add(new StageBytes(first && last ? "only" : first ? "first" : "last",
                Weights: 2 * parameters, Gradients: 4 * parameters, Optimizer: 12 * parameters / shards, activations, inFlight));
        }
        return result;
    }

    /// <summary>Layer·micro-batches whose activations stage <paramref name="rank"/> holds at its peak.</summary>
    public static double LayerMicroBatchesInFlight(Layout layout, int layers, int rank)
    {
        int p = layout.PipelineParallel, m = layout.MicroBatchesPerPipeline;
        if (layout.VirtualPipelineStages is not { } v || v <= 1)
            return Math.Min(p - rank, m) * (double)(layers / p);
        int chunks = Math.Min(2 * (p - rank - 1) + (v - 1) * p + 1, m * v);
        return chunks * (double)layers / (p * v);
    }

    /// <summary>Bytes per token of one layer's saved activations, as described on the class.</summary>
    public static double LayerBytesPerToken(TransformerShape shape, Layout layout, int seqLength, bool flashAttention)
    {
        int t = layout.TensorParallel;
        double sp = layout.SequenceParallel ? t : 1;
        double h = shape.Hidden, q = shape.QueryWidth, kv = shape.KvWidth, f = shape.Ffn;
        double replicated = 8 * h + (shape.Dropout ? 2 * h : 0);
        double split = 4 * q + 4 * kv + (shape.GatedMlp ? 6 * f : 4 * f);
        double scores = flashAttention || layout.Recompute == "selective"
            ? 0
            : (double)shape.Heads * seqLength / layout.ContextParallel * (shape.Dropout ? 5 : 2);
        return replicated / sp + (split + scores) / t;
    }

    static double ActivationBytes(TransformerShape shape, Layout layout, int seqLength, bool flash, double inFlight, bool first, bool last, long vocab)
    {
        int t = layout.TensorParallel;
        double sp = layout.SequenceParallel ? t : 1;
        double tokens = (double)seqLength / layout.ContextParallel * layout.MicroBatchSize; // per micro-batch on this rank
        double layer = LayerBytesPerToken(shape, layout, seqLength, flash) * tokens;
        double stored = layout.Recompute == "full"
            ? inFlight * 2 * shape.Hidden / sp * tokens + layer // layer inputs, plus the one layer being recomputed
            : inFlight * layer;
        double microBatchesHere = inFlight / (shape.Layers / (double)layout.PipelineParallel);
        if (first)
            stored += microBatchesHere * tokens * (8 + (shape.Dropout ? shape.Hidden : 0)); // int64 ids (+ embedding dropout mask)
        if (last)
            stored += tokens * (4.0 * vocab / t + 2.0 * shape.Hidden / sp); // fp32 softmax of the logits, final norm output
        return stored;
    }
}
