using System.Buffers;
using System.Runtime.CompilerServices;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace CptLab.Model;

// Decode attention over a paged KV cache: one new query position per sequence of a ragged batch, against every position the
// sequence has cached. Two ways, same result up to summation order:
//  - Gather: index_select every sequence's keys and values into (B, nkv, S_max, hd) copies, padded and masked, then two
//    batched matmuls. Simple, LibTorch's kernels, but it copies the whole cache of the batch every step of every layer.
//  - InPlace: a managed SIMD kernel that walks each sequence's block table and reads the pool where it lies (issue 14's
//    "one decode step for N sequences does not copy the caches"). float32 pools in place; bf16 pools widened to float32 a row at a time as they are read.
// Legend: B batch, nh query heads, nkv key/value heads, g = nh/nkv query heads per kv head, hd head dim, S positions,
// bs block size. The pool is slot-major (slots, nkv, hd): position p of a sequence is slot table[p / bs]·bs + p % bs.

/// <summary>
/// Each decoding sequence's block table and the positions it attends to, for <see cref="PagedDecodeAttention.InPlace"/>.
/// <paramref name="Blocks"/> is (B, <paramref name="Stride"/>) row-major (row b's first ⌈Lengths[b]/bs⌉ entries are used);
/// <paramref name="Lengths"/> (B) counts the cached positions plus the one being decoded.
/// </summary>
public sealed record PagedBlockTables(int[] Blocks, int[] Lengths, int Stride)
{
    public int Batch => Lengths.Length;

    /// <summary>Tables of sequences about to decode one token each (their new position's block already reserved).</summary>
    public static PagedBlockTables ForDecode(IReadOnlyList<PagedSequence> sequences)
    {
        int stride = sequences.Max(s => s.Blocks.Count);
        var blocks = new int[sequences.Count * stride];
        var lengths = new int[sequences.Count];
        for (int i = 0; i < sequences.Count; i++)
        {
            var s = sequences[i];
            lengths[i] = s.Length + 1;
            if (s.Pool.BlocksFor(lengths[i]) > s.Blocks.Count)
                throw new InvalidOperationException($"sequence {i} holds {s.Blocks.Count} blocks but decodes position {s.Length}; Reserve(1) first");
            for (int j = 0; j < s.Blocks.Count; j++) blocks[i * stride + j] = s.Blocks[j];
        }
        return new PagedBlockTables(blocks, lengths, stride);
    }
}

/// <summary>Which decode attention <see cref="LlamaForCausalLM.DecodePaged"/> runs; Auto picks InPlace for float32 and bf16 pools on the CPU.</summary>
public enum PagedDecodePath { Auto, Gather, InPlace }

public static unsafe class PagedDecodeAttention
{
    /// <summary>
    /// The gather path: q (B, nh, 1, hd), pool keys and values (slots, nkv, hd), read slots (B, S) padded with slot 0, valid
    /// mask (B, 1, 1, S) → (B, nh·hd) in q's dtype.
    /// </summary>
    public static Tensor Gather(Tensor q, Tensor poolKeys, Tensor poolValues, Tensor readSlots, Tensor mask, int nkv)
    {
        long b = q.shape[0], nh = q.shape[1], hd = q.shape[3], s = readSlots.shape[1];
        long g = nh / nkv;
        var flat = readSlots.flatten();
        var keys = poolKeys.index_select(0, flat).view(b, s, nkv, hd).permute(0, 2, 3, 1);           // (B, nkv, hd, S)
        var values = poolValues.index_select(0, flat).view(b, s, nkv, hd).transpose(1, 2);           // (B, nkv, S, hd)
        var scores = q.reshape(b, nkv, g, hd).matmul(keys).mul_(1.0 / Math.Sqrt(hd));               // (B, nkv, g, S)
        scores.masked_fill_(mask.logical_not(), double.NegativeInfinity);                            // mask (B, 1, 1, S)
        var weights = scores.softmax(-1, ScalarType.Float32).to(q.dtype);
        return weights.matmul(values).reshape(b, nh * hd);                                           // (B, nkv, g, hd) → (B, C)
    }

    /// <summary>
    /// The in-place kernel: q (B, nh, 1, hd) float32, pool keys and values (slots, nkv, hd) float32 and contiguous, the block
    /// tables → (B, nh·hd) float32. Reads each cached key and value once per (sequence, kv head), for all g query heads.
    /// Work items (b, kv head) run on up to LibTorch's intra-op thread count.
    /// </summary>
    public static Tensor InPlace(Tensor q, Tensor poolKeys, Tensor poolValues, PagedBlockTables tables, int blockSize, int nkv, int? threads = null)
    {
        int b = (int)q.shape[0], nh = (int)q.shape[1], hd = (int)q.shape[3];
        var dtype = poolKeys.dtype;
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16) || poolValues.dtype != dtype)
            throw new ArgumentException($"the in-place paged decode kernel reads float32 or bfloat16 pools (keys {poolKeys.dtype}, values {poolValues.dtype}); use PagedDecodePath.Gather for other dtypes");
        if (!poolKeys.is_contiguous() || !poolValues.is_contiguous() || poolKeys.device_type != DeviceType.CPU)
            throw new ArgumentException("the in-place paged decode kernel needs contiguous CPU pool tensors");
        if (poolKeys.shape[1] != nkv || poolKeys.shape[2] != hd || nh % nkv != 0)
            throw new ArgumentException($"pool (slots, {poolKeys.shape[1]}, {poolKeys.shape[2]}) does not match {nh} query heads over {nkv} kv heads of dim {hd}");
        if (tables.Batch != b) throw new ArgumentException($"block tables for {tables.Batch} sequences, queries for {b}");
        long slots = poolKeys.shape[0];
        foreach (var block in tables.Blocks)
            if ((long)block * blockSize >= slots || block < 0) throw new ArgumentException($"block {block} is outside the pool ({slots / blockSize} blocks)");

        // bf16 keys and values are widened to float32 a row at a time (bf16 is float32's top half); queries, scores, softmax
        // and the output are float32, as the gather path's softmax.
        var qc = q.reshape(b, nh, hd).to(ScalarType.Float32).contiguous();                          // (B, nh, hd)
        var output = empty([b, nh * hd], ScalarType.Float32, q.device);                              // (B, nh·hd)
        var job = new Job((float*)Data(qc), (void*)Data(poolKeys), (void*)Data(poolValues), dtype == ScalarType.BFloat16, (float*)Data(output),
            tables, blockSize, nh, nkv, hd);
        int items = b * nkv;
        int workers = Math.Min(threads ?? get_num_threads(), items);
        if (workers <= 1)
            for (int i = 0; i < items; i++) job.Head(i);
        else
            Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = workers }, job.Head);
        GC.KeepAlive(qc);
        return q.dtype == ScalarType.Float32 ? output : output.to(q.dtype);
    }

    /// <summary>The raw storage of a CPU tensor (no 2 GB limit, unlike TorchSharp's Span-returning accessors).</summary>
    static nint Data(Tensor t) => THSTensor_data(t.Handle);

    [DllImport("LibTorchSharp")]
    static extern nint THSTensor_data(nint handle);

    sealed class Job(float* q, void* keys, void* values, bool bf16, float* output, PagedBlockTables tables, int blockSize, int nh, int nkv, int hd)
    {
        readonly float _scale = 1f / MathF.Sqrt(hd);

        /// <summary>Sequence item / nkv, kv head item % nkv: its g query heads' outputs.</summary>
        // Fully optimised at first call: a decode step calls this only B·nkv times, too few for tiered JIT to promote it early.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Head(int item)
        {
            int b = item / nkv, h = item % nkv, g = nh / nkv, len = tables.Lengths[b];
            var rented = ArrayPool<float>.Shared.Rent(g * len);
            try
            {
                var scores = rented.AsSpan(0, g * len);                                               // (g, S)
                float* qh = q + ((long)b * nh + h * g) * hd;                                         // (g, hd)
                float* y = output + ((long)b * nh + h * g) * hd;                                     // (g, hd)
                long rowStride = (long)nkv * hd;                                                     // one slot
                int row = b * tables.Stride;
                float* wide = stackalloc float[bf16 ? hd : 0];                                       // one bf16 row as float32

                // Scores q·k/√hd, a block at a time so the slot of each position needs no division.
                for (int p0 = 0, blk = 0; p0 < len; p0 += blockSize, blk++)
                {
                    long slot0 = (long)tables.Blocks[row + blk] * blockSize;
                    int n = Math.Min(blockSize, len - p0);
                    for (int i = 0; i < n; i++)
                    {
                        float* k = Row(keys, (slot0 + i) * rowStride + (long)h * hd, wide);
                        for (int j = 0; j < g; j++) scores[j * len + p0 + i] = Dot(qh + j * hd, k, hd) * _scale;
                    }
                }
                // Stable softmax per query head, in float32; the 1/Σ is applied to the output instead of every weight.
                Span<float> inv = stackalloc float[g];
                for (int j = 0; j < g; j++)
                {
                    var headScores = scores.Slice(j * len, len);
                    float max = TensorPrimitives.Max(headScores);
                    TensorPrimitives.Subtract(headScores, max, headScores);
                    TensorPrimitives.Exp(headScores, headScores);
                    inv[j] = 1f / TensorPrimitives.Sum(headScores);
                }
                new Span<float>(y, g * hd).Clear();
                for (int p0 = 0, blk = 0; p0 < len; p0 += blockSize, blk++)
                {
                    long slot0 = (long)tables.Blocks[row + blk] * blockSize;
                    int n = Math.Min(blockSize, len - p0);
                    for (int i = 0; i < n; i++)
                    {
                        float* v = Row(values, (slot0 + i) * rowStride + (long)h * hd, wide);
                        for (int j = 0; j < g; j++) Axpy(scores[j * len + p0 + i], v, y + j * hd, hd);
                    }
                }
                for (int j = 0; j < g; j++) TensorPrimitives.Multiply(new ReadOnlySpan<float>(y + j * hd, hd), inv[j], new Span<float>(y + j * hd, hd));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }

        /// <summary>The hd values at element <paramref name="at"/>: in place for float32, widened into <paramref name="wide"/> for bf16.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        float* Row(void* pool, long at, float* wide)
        {
            if (!bf16) return (float*)pool + at;
            Widen((ushort*)pool + at, wide, hd);
            return wide;
        }
    }

    /// <summary>bf16 → float32: each value's 16 bits become the top half of a float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Widen(ushort* x, float* y, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
            {
                var packed = Vector256.Load(x + i);
                Vector256.Store(Vector256.ShiftLeft(Vector256.WidenLower(packed), 16).AsSingle(), y + i);
                Vector256.Store(Vector256.ShiftLeft(Vector256.WidenUpper(packed), 16).AsSingle(), y + i + 8);
            }
        for (; i < n; i++) y[i] = BitConverter.Int32BitsToSingle(x[i] << 16);
    }

    /// <summary>Σ a[i]·b[i] over n floats, eight lanes at a time with two accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                acc0 = MulAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
                acc1 = MulAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), acc1);
            }
            sum = Vector256.Sum(acc0 + acc1);
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>y[i] += w·x[i] over n floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Axpy(float w, float* x, float* y, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var wv = Vector256.Create(w);
            for (; i + 8 <= n; i += 8) Vector256.Store(MulAdd(wv, Vector256.Load(x + i), Vector256.Load(y + i)), y + i);
        }
        for (; i < n; i++) y[i] += w * x[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;
}
