using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>
/// Keys and values of every layer for a batch of sequences, preallocated to a capacity so that a decode step
/// writes in place instead of concatenating. The cache owns its tensors (outside any dispose scope) and frees
/// them on <see cref="Dispose"/>. Shapes: (B, n_kv_heads, capacity, head_dim) per layer.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor[] _keys;
    readonly Tensor[] _values;
    int _pendingAdvance = -1;

    public KvCache(LlamaConfig config, int batchSize, int capacity, ScalarType dtype, Device? device = null)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity));
        Capacity = capacity;
        BatchSize = batchSize;
        _keys = new Tensor[config.NumHiddenLayers];
        _values = new Tensor[config.NumHiddenLayers];
        for (int l = 0; l < config.NumHiddenLayers; l++)
        {
            _keys[l] = zeros([batchSize, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
            _values[l] = zeros([batchSize, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();
        }
    }

    public int Capacity { get; }
    public int BatchSize { get; }

    /// <summary>Number of positions already cached (the position of the next token).</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Stores this step's k, v (B, n_kv, T, hd) for one layer at positions [Length, Length + T) and returns views
    /// of all cached positions (B, n_kv, Length + T, hd). <see cref="Length"/> advances once per forward pass,
    /// in <see cref="Advance"/>, so every layer of one pass writes at the same positions.
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        int t = (int)k.shape[2];
        if (Length + t > Capacity)
            throw new InvalidOperationException($"KV cache full: {Length} cached + {t} new positions > capacity {Capacity}");
        if (_pendingAdvance >= 0 && _pendingAdvance != t)
            throw new InvalidOperationException("all layers of one forward pass must append the same number of positions");
        _pendingAdvance = t;
        using (no_grad())
        {
            _keys[layer].narrow(2, Length, t).copy_(k);
            _values[layer].narrow(2, Length, t).copy_(v);
        }
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Commits the positions appended by the forward pass that just finished.</summary>
    public void Advance()
    {
        if (_pendingAdvance < 0) return;
        Length += _pendingAdvance;
        _pendingAdvance = -1;
    }

    /// <summary>Forgets everything cached (the memory stays allocated for reuse).</summary>
    public void Reset()
    {
        Length = 0;
        _pendingAdvance = -1;
    }

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}
