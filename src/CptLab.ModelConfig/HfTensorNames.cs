namespace CptLab.Model;

/// <summary>
/// The Hugging Face side of a <c>LlamaForCausalLM</c> checkpoint, from the config alone: every tensor's name and
/// shape as transformers writes them, and the quirks CptLab accepts when reading others' files. The TorchSharp
/// model carries the same names through ComponentName attributes; a test holds the two to each other, so exporters
/// and converters (GGUF, Megatron) can list a checkpoint's tensors without building the model.
/// Legend: V vocabulary, H hidden size, I intermediate size, Q = heads × head_dim, K = kv heads × head_dim.
/// </summary>
public static class HfTensorNames
{
    /// <summary>Written by some exporters beside tied embeddings (a copy of embed_tokens); transformers ignores it, and so does CptLab.</summary>
    public const string LmHead = "lm_head.weight";
    public const string Embeddings = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";

    public static string Layer(int i, string rest) => $"model.layers.{i}.{rest}";

    /// <summary>Every tensor of the model in checkpoint order, with its shape.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> Expected(LlamaConfig c)
    {
        long v = c.VocabSize, h = c.HiddenSize, i = c.IntermediateSize;
        long q = (long)c.NumAttentionHeads * c.HeadDim, k = (long)c.NumKeyValueHeads * c.HeadDim;
        var list = new List<(string, long[])> { (Embeddings, [v, h]) };                 // (V, H)
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            list.Add((Layer(l, "input_layernorm.weight"), [h]));
            Projection(list, Layer(l, "self_attn.q_proj"), q, h, c.AttentionBias);      // (Q, H)
            Projection(list, Layer(l, "self_attn.k_proj"), k, h, c.AttentionBias);      // (K, H)
            Projection(list, Layer(l, "self_attn.v_proj"), k, h, c.AttentionBias);      // (K, H)
            Projection(list, Layer(l, "self_attn.o_proj"), h, q, c.AttentionBias);      // (H, Q)
            list.Add((Layer(l, "post_attention_layernorm.weight"), [h]));
            Projection(list, Layer(l, "mlp.gate_proj"), i, h, c.MlpBias);               // (I, H)
            Projection(list, Layer(l, "mlp.up_proj"), i, h, c.MlpBias);                 // (I, H)
            Projection(list, Layer(l, "mlp.down_proj"), h, i, c.MlpBias);               // (H, I)
        }
        list.Add((FinalNorm, [h]));
        if (!c.TieWordEmbeddings) list.Add((LmHead, [v, h]));                             // (V, H)
        return list;
    }

    /// <summary>
    /// Tensors a checkpoint may hold that the model does not load, as transformers skips them: <c>lm_head.weight</c> beside
    /// tied embeddings, and the <c>rotary_emb.inv_freq</c> buffers older transformers versions saved (recomputed from the config).
    /// </summary>
    public static bool IsIgnoredExtra(string name, LlamaConfig c) =>
        (name == LmHead && c.TieWordEmbeddings) || name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal);

    static void Projection(List<(string, long[])> list, string prefix, long outFeatures, long inFeatures, bool bias)
    {
        list.Add(($"{prefix}.weight", [outFeatures, inFeatures]));
        if (bias) list.Add(($"{prefix}.bias", [outFeatures]));
    }
}
