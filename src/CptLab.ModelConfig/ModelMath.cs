namespace CptLab.Model;

/// <summary>
/// Parameter counts and FLOPs per token, computed from the config alone (no weights), so that sweeps,
/// transfer plans and MFU figures can use them for a 70B model as well as for a 2M one.
/// </summary>
public static class ModelMath
{
    /// <summary>All parameters, counting a tied embedding/head once.</summary>
    public static long ParameterCount(LlamaConfig c) =>
        EmbeddingParameters(c) + c.NumHiddenLayers * LayerParameters(c) + c.HiddenSize + (c.TieWordEmbeddings ? 0 : (long)c.VocabSize * c.HiddenSize);

    public static long EmbeddingParameters(LlamaConfig c) => (long)c.VocabSize * c.HiddenSize;

    /// <summary>Parameters of one decoder layer: attention, MLP and the two norms.</summary>
    public static long LayerParameters(LlamaConfig c)
    {
        long h = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, i = c.IntermediateSize;
        long attention = h * q + 2 * h * kv + q * h + (c.AttentionBias ? q + 2 * kv + h : 0);
        long mlp = 3 * h * i + (c.MlpBias ? 2 * i + h : 0);
        return attention + mlp + 2 * h;
    }

    /// <summary>Weights that take part in matrix products per token: every layer's projections and the LM head (tied or not), not the embedding lookup.</summary>
    public static long MatmulParameters(LlamaConfig c) =>
        c.NumHiddenLayers * (LayerParameters(c) - 2L * c.HiddenSize) + (long)c.VocabSize * c.HiddenSize;

    /// <summary>
    /// Forward FLOPs per token at context length T: 2 per matmul weight, plus attention's QKᵀ and AV,
    /// 2·2·L·n_heads·head_dim·T (the PaLM convention: the full T, not the causal half).
    /// </summary>
    public static double ForwardFlopsPerToken(LlamaConfig c, int contextLength) =>
        2.0 * MatmulParameters(c) + 4.0 * c.NumHiddenLayers * c.NumAttentionHeads * c.HeadDim * (double)contextLength;

    /// <summary>Training FLOPs per token: forward plus backward, 3× forward (the 6·N + 12·L·H·Q·T of PaLM).</summary>
    public static double TrainingFlopsPerToken(LlamaConfig c, int contextLength) => 3.0 * ForwardFlopsPerToken(c, contextLength);

    /// <summary>Bytes of KV cache per token of context, at the given element size.</summary>
    public static long KvCacheBytesPerToken(LlamaConfig c, int bytesPerElement) =>
        2L * c.NumHiddenLayers * c.NumKeyValueHeads * c.HeadDim * bytesPerElement;
}
