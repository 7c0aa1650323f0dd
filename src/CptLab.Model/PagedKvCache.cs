using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>
/// The serving KV cache, paged as vLLM's: keys and values of every layer live in one pool of fixed-size blocks, and each
/// sequence holds a block table (<see cref="PagedSequence"/>) that grows a block at a time as its tokens are cached. Memory
/// is therefore taken in proportion to the tokens held, never a whole context up front. Per layer the pool is two tensors
/// (blocks·block_size, n_kv_heads, head_dim): position p of a sequence lives in slot table[p / block_size]·block_size +
/// p % block_size. The pool is created with <c>empty</c>, so the operating system commits its pages only as blocks are first
/// written. Block 0 is reserved and zeroed: padded positions of a ragged batch read it (and are masked).
/// The pool belongs to one thread (the scheduler's); it is not thread-safe.
/// </summary>
public sealed class KvBlockPool : IDisposable
{
    readonly Tensor[] _keys;
    readonly Tensor[] _values;
    readonly Stack<int> _free;

    public KvBlockPool(LlamaConfig config, int blocks, int blockSize, ScalarType dtype, Device? device = null)
    {
        if (blockSize < 1) throw new ArgumentOutOfRangeException(nameof(blockSize), $"block size {blockSize} must be ≥ 1");
        if (blocks < 2) throw new ArgumentOutOfRangeException(nameof(blocks), $"a pool needs at least 2 blocks (block 0 is reserved); got {blocks}");
        Config = config;
        BlockSize = blockSize;
        TotalBlocks = blocks;
        Dtype = dtype;
        _keys = new Tensor[config.NumHiddenLayers];
        _values = new Tensor[config.NumHiddenLayers];
        using (no_grad())
            for (int l = 0; l < config.NumHiddenLayers; l++)
            {
                _keys[l] = empty([(long)blocks * blockSize, config.NumKeyValueHeads, config.HeadDim], dtype, device).DetachFromDisposeScope();
                _values[l] = empty([(long)blocks * blockSize, config.NumKeyValueHeads, config.HeadDim], dtype, device).DetachFromDisposeScope();
                _keys[l].narrow(0, 0, blockSize).zero_();
                _values[l].narrow(0, 0, blockSize).zero_();
            }
        // Lowest blocks first, so a lightly used pool touches few pages.
        _free = new Stack<int>(Enumerable.Range(1, blocks - 1).Reverse());
    }

    public LlamaConfig Config { get; }
    public int BlockSize { get; }
    public ScalarType Dtype { get; }
    /// <summary>Blocks in the pool, the reserved block 0 included.</summary>
    public int TotalBlocks { get; }
    /// <summary>Blocks sequences can hold (all but the reserved one).</summary>
    public int UsableBlocks => TotalBlocks - 1;
    public int FreeBlocks => _free.Count;
    public int UsedBlocks => UsableBlocks - _free.Count;
    /// <summary>Tokens the whole pool can hold.</summary>
    public long CapacityTokens => (long)UsableBlocks * BlockSize;

    /// <summary>Bytes of one block over all layers, keys and values.</summary>
    public static long BytesPerBlock(LlamaConfig c, int blockSize, ScalarType dtype) =>
        2L * c.NumHiddenLayers * blockSize * c.NumKeyValueHeads * c.HeadDim * DtypeNames.Bytes(dtype);

    public long Bytes => BytesPerBlock(Config, BlockSize, Dtype) * TotalBlocks;

    /// <summary>Blocks needed to hold <paramref name="tokens"/> positions.</summary>
    public int BlocksFor(long tokens) => (int)((tokens + BlockSize - 1) / BlockSize);

    /// <summary>Per layer, (slots, n_kv, head_dim).</summary>
    public Tensor Keys(int layer) => _keys[layer];
    public Tensor Values(int layer) => _values[layer];

    internal bool TryTake(int count, List<int> into)
    {
        if (count > _free.Count) return false;
        for (int i = 0; i < count; i++) into.Add(_free.Pop());
        return true;
    }

    internal void Return(List<int> blocks)
    {
        foreach (var b in blocks) _free.Push(b);
        blocks.Clear();
    }

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}

/// <summary>
/// One sequence's share of a <see cref="KvBlockPool"/>: its block table and how many positions are cached. Blocks are
/// taken with <see cref="Reserve"/> before a forward pass writes new positions, and all go back with <see cref="Release"/>.
/// </summary>
public sealed class PagedSequence(KvBlockPool pool)
{
    readonly List<int> _blocks = [];

    public KvBlockPool Pool { get; } = pool;
    public IReadOnlyList<int> Blocks => _blocks;
    /// <summary>Positions cached (the position of the next token).</summary>
    public int Length { get; private set; }

    /// <summary>Blocks to take before <paramref name="newTokens"/> more positions fit.</summary>
    public int BlocksNeeded(int newTokens) => Math.Max(0, Pool.BlocksFor(Length + newTokens) - _blocks.Count);

    /// <summary>Takes the blocks for <paramref name="newTokens"/> more positions; false (nothing taken) when the pool has too few free.</summary>
    public bool Reserve(int newTokens) => Pool.TryTake(BlocksNeeded(newTokens), _blocks);

    /// <summary>Gives every block back and forgets the cached positions.</summary>
    public void Release()
    {
        Pool.Return(_blocks);
        Length = 0;
    }

    /// <summary>The pool slot of position <paramref name="p"/>.</summary>
    public long Slot(int p) => (long)_blocks[p / Pool.BlockSize] * Pool.BlockSize + p % Pool.BlockSize;

    internal void Advance(int tokens)
    {
        if (Length + tokens > _blocks.Count * Pool.BlockSize)
            throw new InvalidOperationException($"sequence holds {_blocks.Count} blocks ({_blocks.Count * Pool.BlockSize} positions) but {Length + tokens} were written; Reserve first");
        Length += tokens;
    }
}

/// <summary>
/// What attention needs to run over a paged cache for one forward pass: the slots the new positions are written to, and —
/// when the new positions attend to positions cached before — the slots to read per row (padded with slot 0 of the reserved
/// block) with a mask that hides the padding and the future. A decode step (one new position per row) carries either
/// those (the gather path) or <see cref="Tables"/>, the block tables the in-place kernel walks (<see cref="PagedDecodeAttention"/>).
/// </summary>
public sealed record PagedAttention(KvBlockPool Pool, Tensor WriteSlots, Tensor? ReadSlots, Tensor? Mask)
{
    public PagedBlockTables? Tables { get; init; }
}
