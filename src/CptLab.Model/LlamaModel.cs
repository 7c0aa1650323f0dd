using System.Numerics;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Model;

// Llama-3 in TorchSharp, classes in reading order: projection → norm → attention → MLP → block → model → LM.
// Module and parameter names are Hugging Face's (via ComponentName), so state_dict() keys are the tensor
// names of a Hub checkpoint: model.layers.{i}.self_attn.q_proj.weight, …
// Dimension legend: B batch, T new positions, S cached + new positions, C hidden size, nh query heads,
// nkv key/value heads, hd head dim, I intermediate size, V vocabulary.
// Parameters are created empty: a fresh model is filled by InitWeights, a loaded one by the checkpoint reader,
// so a large model is never initialised only to be overwritten.

/// <summary>A linear map y = x Wᵀ (+ b) whose weight is created uninitialised.</summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] readonly Parameter _weight;
    [ComponentName(Name = "bias")] readonly Parameter? _bias;

    public Projection(long inFeatures, long outFeatures, bool bias, ScalarType dtype) : base(nameof(Projection))
    {
        _weight = new Parameter(empty([outFeatures, inFeatures], dtype));
        if (bias) _bias = new Parameter(empty([outFeatures], dtype));
        RegisterComponents();
    }

    public Parameter Weight => _weight;
    public Parameter? Bias => _bias;

    public override Tensor forward(Tensor x) => F.linear(x, _weight, _bias);
}

/// <summary>A token-embedding table (V, C) whose weight is created uninitialised.</summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] readonly Parameter _weight;

    public TokenEmbedding(long vocab, long dim, ScalarType dtype) : base(nameof(TokenEmbedding))
    {
        _weight = new Parameter(empty([vocab, dim], dtype));
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    /// <summary>ids (B, T) → (B, T, C).</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return _weight.index_select(0, ids.flatten()).view(ids.shape[0], ids.shape[1], -1).MoveToOuterDisposeScope();
    }
}

/// <summary>RMSNorm, computed in float32 whatever the weight dtype, as Hugging Face's LlamaRMSNorm.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] readonly Parameter _weight;
    readonly double _eps;

    public RmsNorm(long size, double eps, ScalarType dtype) : base(nameof(RmsNorm))
    {
        _weight = new Parameter(empty([size], dtype));
        _eps = eps;
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * (x32.pow(2).mean([-1], keepdim: true) + _eps).rsqrt();
        return (_weight * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// What an attention layer needs besides its input: the rotary tables and, when decoding, either one cache
/// for the whole batch or (<see cref="Paged"/>) a paged cache shared by sequences of different lengths.
/// </summary>
public sealed record AttentionContext(Tensor Cos, Tensor Sin, KvCache? Cache, Tensor? Mask)
{
    /// <summary>A paged cache (serving): new positions are written to its slots, earlier ones read from them.</summary>
    public PagedAttention? Paged { get; init; }
    public AttentionKernel Kernel { get; init; }
}

public enum AttentionKernel { Auto, Fused, Explicit }

/// <summary>Grouped-query self-attention: scaled_dot_product_attention, or explicit matmuls where those are faster.</summary>
public sealed class Attention : nn.Module<Tensor, AttentionContext, Tensor>
{
    [ComponentName(Name = "q_proj")] readonly Projection _qProj;
    [ComponentName(Name = "k_proj")] readonly Projection _kProj;
    [ComponentName(Name = "v_proj")] readonly Projection _vProj;
    [ComponentName(Name = "o_proj")] readonly Projection _oProj;
    readonly int _layer, _nh, _nkv, _hd;

    public Attention(LlamaConfig c, int layer, ScalarType dtype) : base(nameof(Attention))
    {
        (_layer, _nh, _nkv, _hd) = (layer, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim);
        _qProj = new Projection(c.HiddenSize, _nh * _hd, c.AttentionBias, dtype);
        _kProj = new Projection(c.HiddenSize, _nkv * _hd, c.AttentionBias, dtype);
        _vProj = new Projection(c.HiddenSize, _nkv * _hd, c.AttentionBias, dtype);
        _oProj = new Projection(_nh * _hd, c.HiddenSize, c.AttentionBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, AttentionContext ctx)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = _qProj.forward(x).view(b, t, _nh, _hd).transpose(1, 2);  // (B, nh, T, hd)
        var k = _kProj.forward(x).view(b, t, _nkv, _hd).transpose(1, 2); // (B, nkv, T, hd)
        var v = _vProj.forward(x).view(b, t, _nkv, _hd).transpose(1, 2); // (B, nkv, T, hd)
        q = Rope.Apply(q, ctx.Cos, ctx.Sin);
        k = Rope.Apply(k, ctx.Cos, ctx.Sin);
        int cached = ctx.Cache?.Length ?? 0;
        var mask = ctx.Mask;
        if (ctx.Cache is { } cache) (k, v) = cache.Append(_layer, k, v);       // (B, nkv, S, hd)
        else if (ctx.Paged is { } paged)
        {
            WritePaged(paged, k, v);
            if (paged.Tables is { } tables && t == 1)
                return _oProj.forward(PagedDecodeAttention.InPlace(q, paged.Pool.Keys(_layer), paged.Pool.Values(_layer), tables, paged.Pool.BlockSize, _nkv).view(b, 1, -1)).MoveToOuterDisposeScope();
            if (paged.ReadSlots is not null && t == 1)
                return _oProj.forward(PagedDecodeAttention.Gather(q, paged.Pool.Keys(_layer), paged.Pool.Values(_layer), paged.ReadSlots, paged.Mask!, _nkv).view(b, 1, -1)).MoveToOuterDisposeScope();
            if (paged.ReadSlots is not null) (k, v, mask, cached) = (ReadPaged(paged.Pool.Keys(_layer), paged.ReadSlots), ReadPaged(paged.Pool.Values(_layer), paged.ReadSlots), paged.Mask, 1);
        }
        if (ctx.Cache is null && mask is null && UseExplicit(ctx.Kernel, x.dtype, t))
            return _oProj.forward(ExplicitCausal(q, k, v)).MoveToOuterDisposeScope();
        if (_nkv != _nh)
        {
            // Each key/value head serves nh/nkv consecutive query heads, as Hugging Face's repeat_kv.
            k = k.repeat_interleave(_nh / _nkv, dim: 1);                         // (B, nh, S, hd)
            v = v.repeat_interleave(_nh / _nkv, dim: 1);                         // (B, nh, S, hd)
        }
        // is_causal aligns the mask top-left, which is right only when nothing is cached; with a cache and
        // several new positions the mask is explicit, and one new position may see everything.
        bool causal = mask is null && cached == 0 && t > 1;
        if (mask is null && cached > 0 && t > 1) mask = CausalMask(t, cached, x.device);
        var y = F.scaled_dot_product_attention(q, k, v, mask, 0.0, causal);   // (B, nh, T, hd)
        y = y.transpose(1, 2).contiguous().view(b, t, _nh * _hd);               // (B, T, C)
        return _oProj.forward(y).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// On this CPU, for bf16 and sequences up to 1024, explicit attention (two batched matmuls and a softmax)
    /// ran fwd+bwd in 10.6 ms against 22.4 ms for scaled_dot_product_attention's kernel on (8, 8, 256, 64), and
    /// lifted bf16 training of cpu-20m from about 3,000 to 3,350 tokens/s; in fp32 the fused kernel was faster
    /// (24.8 vs 27.8 ms). Past 1024 positions the (T, T) score matrix costs more memory than it saves time.
    /// </summary>
    static bool UseExplicit(AttentionKernel kernel, ScalarType dtype, long t) => kernel switch
    {
        AttentionKernel.Explicit => t > 1,
        AttentionKernel.Fused => false,
        _ => t > 1 && t <= 1024 && dtype != ScalarType.Float32,
    };

    /// <summary>
    /// Causal attention as softmax(QKᵀ/√hd + mask)·V. The query heads that share a key/value head are folded into
    /// the sequence axis, so keys and values are read in place rather than repeated per query head.
    /// q (B, nh, T, hd), k and v (B, nkv, T, hd) → (B, T, nh·hd).
    /// </summary>
    Tensor ExplicitCausal(Tensor q, Tensor k, Tensor v)
    {
        long b = q.shape[0], t = q.shape[2];
        int g = _nh / _nkv;
        var qg = q.reshape(b, _nkv, g * t, _hd);                                     // (B, nkv, g·T, hd)
        var scores = qg.matmul(k.transpose(-2, -1)).mul_(1.0 / Math.Sqrt(_hd));     // (B, nkv, g·T, T)
        var future = ones([t, t], ScalarType.Bool, q.device).triu(1).repeat(g, 1);  // (g·T, T): row i of each group is position i
        // Softmax in float32, cast back, as transformers' eager attention does for bf16.
        var weights = scores.masked_fill_(future, double.NegativeInfinity).softmax(-1, ScalarType.Float32).to(q.dtype);
        var y = weights.matmul(v).view(b, _nh, t, _hd);                             // (B, nh, T, hd)
        return y.transpose(1, 2).contiguous().view(b, t, _nh * _hd);                // (B, T, C)
    }

    /// <summary>Writes this pass's k, v (B, nkv, T, hd) into the pool at the write slots (B·T, row-major).</summary>
    void WritePaged(PagedAttention paged, Tensor k, Tensor v)
    {
        long rows = k.shape[0] * k.shape[2];
        using (no_grad())
        {
            paged.Pool.Keys(_layer).index_copy_(0, paged.WriteSlots, k.transpose(1, 2).reshape(rows, _nkv, _hd));
            paged.Pool.Values(_layer).index_copy_(0, paged.WriteSlots, v.transpose(1, 2).reshape(rows, _nkv, _hd));
        }
    }

    /// <summary>The cached positions of each row: pool (slots, nkv, hd), read slots (B, S) → (B, nkv, S, hd).</summary>
    static Tensor ReadPaged(Tensor pool, Tensor slots) =>
        pool.index_select(0, slots.flatten()).view(slots.shape[0], slots.shape[1], pool.shape[1], pool.shape[2]).transpose(1, 2);

    /// <summary>(T, cached + T) booleans, true where new position i may attend to position j: j ≤ cached + i.</summary>
    public static Tensor CausalMask(long t, long cached, Device device) =>
        ones([t, cached + t], ScalarType.Bool, device).tril(cached);
}

/// <summary>SwiGLU: down(silu(gate(x)) · up(x)).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] readonly Projection _gateProj;
    [ComponentName(Name = "up_proj")] readonly Projection _upProj;
    [ComponentName(Name = "down_proj")] readonly Projection _downProj;

    public Mlp(LlamaConfig c, ScalarType dtype) : base(nameof(Mlp))
    {
        _gateProj = new Projection(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        _upProj = new Projection(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype);
        _downProj = new Projection(c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _downProj.forward(F.silu(_gateProj.forward(x)) * _upProj.forward(x)).MoveToOuterDisposeScope(); // (B, T, C)
    }
}

/// <summary>A pre-norm decoder layer: x + attn(norm(x)), then + mlp(norm(x)).</summary>
public sealed class DecoderLayer : nn.Module<Tensor, AttentionContext, Tensor>
{
    [ComponentName(Name = "input_layernorm")] readonly RmsNorm _inputLayernorm;
    [ComponentName(Name = "self_attn")] readonly Attention _selfAttn;
    [ComponentName(Name = "post_attention_layernorm")] readonly RmsNorm _postAttentionLayernorm;
    [ComponentName(Name = "mlp")] readonly Mlp _mlp;

    public DecoderLayer(LlamaConfig c, int layer, ScalarType dtype) : base(nameof(DecoderLayer))
    {
        _inputLayernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        _selfAttn = new Attention(c, layer, dtype);
        _postAttentionLayernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        _mlp = new Mlp(c, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, AttentionContext ctx)
    {
        using var scope = NewDisposeScope();
        var h = x + _selfAttn.forward(_inputLayernorm.forward(x), ctx);
        return (h + _mlp.forward(_postAttentionLayernorm.forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>The transformer body ("model." in Hugging Face names): embedding, layers, final norm.</summary>
public sealed class LlamaModel : nn.Module<Tensor, KvCache?, Tensor>
{
    [ComponentName(Name = "embed_tokens")] readonly TokenEmbedding _embedTokens;
    [ComponentName(Name = "layers")] readonly ModuleList<DecoderLayer> _layers;
    [ComponentName(Name = "norm")] readonly RmsNorm _norm;
    readonly float[] _invFreq; // derived from the config, not a parameter and not in the checkpoint (so rotary_emb.inv_freq keys are ignored)
    readonly ScalarType _dtype;

    public LlamaModel(LlamaConfig c, ScalarType dtype) : base(nameof(LlamaModel))
    {
        _dtype = dtype;
        _embedTokens = new TokenEmbedding(c.VocabSize, c.HiddenSize, dtype);
        _layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new DecoderLayer(c, i, dtype)).ToArray());
        _norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        _invFreq = Rope.InverseFrequenciesFloat32(c.HeadDim, c.RopeTheta, c.RopeScaling);
        RegisterComponents();
    }

    public Parameter EmbedTokens => _embedTokens.Weight;
    /// <summary>Which causal attention kernel full-sequence passes use; Auto picks the faster (tests force one).</summary>
    public AttentionKernel Kernel { get; set; }
    public IReadOnlyList<DecoderLayer> Layers => _layers.ToArray();

    /// <summary>
    /// Several sequences packed into each row: ids (B, T) with <paramref name="layout"/>'s position ids and segments, each
    /// token attending causally to the earlier tokens of its own segment only → final hidden states (B, T, C). The packed
    /// row computes what each of its sequences alone would, up to floating-point summation order.
    /// </summary>
    public Tensor ForwardPacked(Tensor ids, PackedLayout layout)
    {
        using var scope = NewDisposeScope();
        long b = ids.shape[0], t = ids.shape[1];
        var x = _embedTokens.forward(ids);                                              // (B, T, C)
        var (cos, sin) = Rope.Tables(tensor(_invFreq, ScalarType.Float32, x.device), 0, t, _dtype); // (T, hd): positions never exceed the row
        var flat = layout.Positions.flatten();
        cos = cos.index_select(0, flat).view(b, 1, t, -1);                              // (B, 1, T, hd)
        sin = sin.index_select(0, flat).view(b, 1, t, -1);                              // (B, 1, T, hd)
        var ctx = new AttentionContext(cos, sin, null, layout.Mask());                  // mask (B, 1, T, T)
        foreach (var layer in _layers) x = layer.forward(x, ctx);
        return _norm.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A pass over a paged cache: ids (B, T) at <paramref name="positions"/> (B, T), each row's new keys and values written to
    /// the pool and attending to what <paramref name="paged"/> reads → final hidden states (B, T, C).
    /// </summary>
    /// <param name="mask">Which new positions see which (packed prompts: block-diagonal); null: causal, or the paged read mask.</param>
    public Tensor ForwardPaged(Tensor ids, Tensor positions, PagedAttention paged, Tensor? mask = null)
    {
        using var scope = NewDisposeScope();
        long b = ids.shape[0], t = ids.shape[1];
        var x = _embedTokens.forward(ids);                                              // (B, T, C)
        var (cos, sin) = RopeRows(positions.flatten(), x.device);                       // (B·T, hd)
        var ctx = new AttentionContext(cos.view(b, 1, t, -1), sin.view(b, 1, t, -1), null, mask) { Paged = paged, Kernel = Kernel };
        foreach (var layer in _layers) x = layer.forward(x, ctx);
        return _norm.forward(x).MoveToOuterDisposeScope();
    }

    Tensor? _ropeCos, _ropeSin;

    /// <summary>cos and sin rows (N, hd) of the given positions, from tables computed once as <see cref="Rope.Tables"/> computes them.</summary>
    (Tensor Cos, Tensor Sin) RopeRows(Tensor positions, Device device)
    {
        long needed = positions.max().item<long>() + 1;
        if (_ropeCos is null || _ropeCos.shape[0] < needed)
        {
            long length = Math.Max(256, (long)BitOperations.RoundUpToPowerOf2((ulong)needed));
            _ropeCos?.Dispose();
            _ropeSin?.Dispose();
            var (cos, sin) = Rope.Tables(tensor(_invFreq, ScalarType.Float32, device), 0, length, _dtype);
            (_ropeCos, _ropeSin) = (cos.DetachFromDisposeScope(), sin.DetachFromDisposeScope());
        }
        return (_ropeCos.index_select(0, positions), _ropeSin!.index_select(0, positions));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _ropeCos?.Dispose();
            _ropeSin?.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>ids (B, T) → final hidden states (B, T, C). With a cache, positions continue from its length.</summary>
    public override Tensor forward(Tensor ids, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long t = ids.shape[1];
        var x = _embedTokens.forward(ids);                                              // (B, T, C)
        var (cos, sin) = Rope.Tables(tensor(_invFreq, ScalarType.Float32, x.device), cache?.Length ?? 0, t, _dtype);
        var ctx = new AttentionContext(cos, sin, cache, null) { Kernel = Kernel };
        foreach (var layer in _layers) x = layer.forward(x, ctx);
        cache?.Advance();
        return _norm.forward(x).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// LlamaForCausalLM: the body plus the LM head (its own weight, or the embedding when tied).
/// <see cref="forward(Tensor, KvCache?)"/> returns float32 logits (B, T, V).
/// </summary>
public sealed class LlamaForCausalLM : nn.Module<Tensor, KvCache?, Tensor>
{
    [ComponentName(Name = "model")] readonly LlamaModel _model;
    [ComponentName(Name = "lm_head")] readonly Projection? _lmHead;

    public LlamaForCausalLM(LlamaConfig config, ScalarType? dtype = null) : base(nameof(LlamaForCausalLM))
    {
        Config = config.Validate();
        Dtype = dtype ?? DtypeNames.Parse(config.TorchDtype)!.Value;
        _model = new LlamaModel(config, Dtype);
        if (!config.TieWordEmbeddings) _lmHead = new Projection(config.HiddenSize, config.VocabSize, false, Dtype);
        RegisterComponents();
    }

    public LlamaConfig Config { get; }
    public ScalarType Dtype { get; }
    public LlamaModel Body => _model;

    public Tensor forward(Tensor ids) => forward(ids, null);

    public override Tensor forward(Tensor ids, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var h = _model.forward(ids, cache);                                             // (B, T, C)
        return Logits(h).MoveToOuterDisposeScope();                                            // (B, T, V)
    }

    /// <summary>
    /// Prefill of one sequence over the paged cache: <paramref name="ids"/> continue the sequence at its cached length (a whole
    /// prompt, or one chunk of it) → float32 logits (T, V) at every new position when <paramref name="allPositions"/> (prompt
    /// logprobs), else (1, V) at the last only, so a long prompt never materialises a (T, V) logit matrix. The blocks for the
    /// new positions must be reserved; the sequence advances by T.
    /// </summary>
    public Tensor PrefillPaged(PagedSequence sequence, ReadOnlySpan<int> ids, bool allPositions)
    {
        using var scope = NewDisposeScope();
        int start = sequence.Length, t = ids.Length;
        var device = _model.EmbedTokens.device;
        var write = new long[t];
        for (int i = 0; i < t; i++) write[i] = sequence.Slot(start + i);
        Tensor? read = null, mask = null;
        if (start > 0)
        {
            var slots = new long[start + t];
            for (int p = 0; p < slots.Length; p++) slots[p] = sequence.Slot(p);
            read = tensor(slots, device: device).unsqueeze(0);                                     // (1, S)
            mask = Attention.CausalMask(t, start, device).view(1, 1, t, start + t);              // (1, 1, T, S)
        }
        var idTensor = tensor(ToLong(ids), device: device).unsqueeze(0);                          // (1, T)
        var positions = arange(start, start + t, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        var h = _model.ForwardPaged(idTensor, positions, new PagedAttention(sequence.Pool, tensor(write, device: device), read, mask))[0]; // (T, C)
        sequence.Advance(t);
        if (!allPositions) h = h.narrow(0, t - 1, 1);
        return Logits(h).MoveToOuterDisposeScope();                                            // (T or 1, V)
    }

    /// <summary>
    /// Several fresh prompts (nothing cached yet) prefilled in one pass: packed into one row, each token attending causally to
    /// its own prompt only and rotated by its own position, written to its own sequence's blocks → float32 logits (n, V) at
    /// each prompt's last position. The blocks must be reserved; each sequence advances by its prompt's length.
    /// </summary>
    public Tensor PrefillPagedPacked(IReadOnlyList<PagedSequence> sequences, IReadOnlyList<int[]> prompts)
    {
        using var scope = NewDisposeScope();
        int total = prompts.Sum(p => p.Length);
        var device = _model.EmbedTokens.device;
        var ids = new long[total];
        var write = new long[total];
        var positions = new long[total];
        var segments = new long[total];
        var last = new long[prompts.Count];
        for (int i = 0, at = 0; i < prompts.Count; i++)
        {
            if (sequences[i].Length != 0) throw new ArgumentException($"packed prefill takes fresh sequences; sequence {i} has {sequences[i].Length} positions cached");
            for (int p = 0; p < prompts[i].Length; p++, at++)
            {
                ids[at] = prompts[i][p];
                write[at] = sequences[i].Slot(p);
                positions[at] = p;
                segments[at] = i;
            }
            last[i] = at - 1;
        }
        var positionTensor = tensor(positions, device: device).unsqueeze(0);                     // (1, ΣT)
        var mask = new PackedLayout(positionTensor, tensor(segments, device: device).unsqueeze(0)).Mask(); // (1, 1, ΣT, ΣT)
        var h = _model.ForwardPaged(tensor(ids, device: device).unsqueeze(0), positionTensor,
            new PagedAttention(sequences[0].Pool, tensor(write, device: device), null, null), mask)[0]; // (ΣT, C)
        for (int i = 0; i < prompts.Count; i++) sequences[i].Advance(prompts[i].Length);
        h = h.index_select(0, tensor(last, device: device));                                      // (n, C)
        return Logits(h).MoveToOuterDisposeScope();                                            // (n, V)
    }

    /// <summary>
    /// Continuous batching's decode step over the paged cache: one new token per sequence, each at its own length (a ragged
    /// batch; attention as <see cref="DecodePath"/> chooses) → float32 logits (B, V). Each sequence must have
    /// reserved the block for its new position; each advances by one.
    /// </summary>
    public Tensor DecodePaged(IReadOnlyList<PagedSequence> sequences, ReadOnlySpan<int> ids)
    {
        using var scope = NewDisposeScope();
        int b = sequences.Count;
        if (ids.Length != b) throw new ArgumentException($"one token per sequence: {ids.Length} tokens for {b} sequences");
        var device = _model.EmbedTokens.device;
        var pool = sequences[0].Pool;
        bool inPlace = DecodePath switch
        {
            PagedDecodePath.InPlace => true,
            PagedDecodePath.Gather => false,
            _ => pool.Dtype is ScalarType.Float32 or ScalarType.BFloat16 && device.type == DeviceType.CPU,
        };
        var paged = inPlace ? InPlaceDecode(sequences, device) : GatherDecode(sequences, device);
        var positions = sequences.Select(s => (long)s.Length).ToArray();
        var h = _model.ForwardPaged(tensor(ToLong(ids), device: device).unsqueeze(1), tensor(positions, device: device).unsqueeze(1), paged)[.., 0]; // (B, C)
        foreach (var s in sequences) s.Advance(1);
        return Logits(h).MoveToOuterDisposeScope();                                            // (B, V)
    }

    /// <summary>
    /// Which decode attention <see cref="DecodePaged"/> runs. Auto: the in-place kernel for float32 and bf16 pools on the CPU
    /// (float32 measured faster at every length, bench/RESULTS.md; bf16 rows are widened to float32 as they are read), else
    /// the gather path.
    /// </summary>
    public PagedDecodePath DecodePath { get; set; }

    static PagedAttention InPlaceDecode(IReadOnlyList<PagedSequence> sequences, Device device) =>
        new(sequences[0].Pool, tensor(sequences.Select(s => s.Slot(s.Length)).ToArray(), device: device), null, null)
        {
            Tables = PagedBlockTables.ForDecode(sequences),
        };

    /// <summary>Read slots (B, S_max) padded with slot 0 of the reserved block, and the mask (B, 1, 1, S_max) hiding the padding.</summary>
    static PagedAttention GatherDecode(IReadOnlyList<PagedSequence> sequences, Device device)
    {
        int b = sequences.Count;
        int longest = sequences.Max(s => s.Length) + 1;
        var write = new long[b];
        var read = new long[b * longest];                                                         // padding: slot 0 (reserved, zero)
        var valid = new bool[b * longest];
        for (int i = 0; i < b; i++)
        {
            var s = sequences[i];
            write[i] = s.Slot(s.Length);
            for (int p = 0; p <= s.Length; p++)
            {
                read[i * longest + p] = s.Slot(p);
                valid[i * longest + p] = true;
            }
        }
        return new PagedAttention(sequences[0].Pool, tensor(write, device: device),
            tensor(read, device: device).view(b, longest), tensor(valid, device: device).view(b, 1, 1, longest));
    }

    static long[] ToLong(ReadOnlySpan<int> ids)
    {
        var result = new long[ids.Length];
        for (int i = 0; i < ids.Length; i++) result[i] = ids[i];
        return result;
    }

    /// <summary>Packed rows (see <see cref="LlamaModel.ForwardPacked"/>) → float32 logits (B, T, V).</summary>
    public Tensor ForwardPacked(Tensor ids, PackedLayout layout)
    {
        using var scope = NewDisposeScope();
        var h = _model.ForwardPacked(ids, layout);                                            // (B, T, C)
        return Logits(h).MoveToOuterDisposeScope();                                            // (B, T, V)
    }

    /// <summary>The LM head on final hidden states (…, C) → float32 logits (…, V).</summary>
    Tensor Logits(Tensor h) => (_lmHead is null ? F.linear(h, _model.EmbedTokens) : _lmHead.forward(h)).to(ScalarType.Float32);

    /// <summary>Hidden states only (B, T, C), for losses that chunk the LM head themselves.</summary>
    public Tensor Hidden(Tensor ids) => _model.forward(ids, null);

    /// <summary>The LM head's weight (V, C): its own, or the embedding when tied.</summary>
    public Tensor HeadWeight => (Tensor?)_lmHead?.Weight ?? _model.EmbedTokens;

    /// <summary>
    /// Fills every parameter for training from scratch, reproducibly from the seed: normal(0, 0.02) for
    /// embeddings and projections, with the output projections of each residual branch (o_proj, down_proj)
    /// scaled by 1/√(2·layers) as in GPT-2; norms at 1; biases at 0.
    /// </summary>
    public void InitWeights(long seed)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var gen = new Generator((ulong)seed);
        double std = 0.02, residualStd = 0.02 / Math.Sqrt(2.0 * Config.NumHiddenLayers);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else
            {
                bool residual = name.EndsWith("o_proj.weight", StringComparison.Ordinal) || name.EndsWith("down_proj.weight", StringComparison.Ordinal);
                // Drawn in float32 then cast, so that a bf16 model gets the same values as an fp32 one, rounded.
                p.copy_(normal(0.0, residual ? residualStd : std, p.shape, ScalarType.Float32, generator: gen));
            }
        }
    }
}
