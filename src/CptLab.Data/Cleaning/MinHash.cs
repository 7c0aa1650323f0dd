using CptLab.Core;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace CptLab.Data.Cleaning;

/// <summary>
/// MinHash signatures of character-shingle sets. Each shingle is hashed once (XxHash64); permutation i is the
/// affine map a_i·h + b_i over 64-bit integers (a_i odd), keeping the top 32 bits. The fraction of equal
/// positions in two signatures estimates the Jaccard similarity of the shingle sets.
/// </summary>
public sealed class MinHasher
{
    readonly ulong[] _a, _b;
    public int Permutations { get; }
    public int ShingleSize { get; }

    public MinHasher(int permutations, int shingleSize)
    {
        Permutations = permutations;
        ShingleSize = shingleSize;
        _a = new ulong[permutations];
        _b = new ulong[permutations];
        var state = SplitMix64.Gamma; // fixed: signatures must not depend on the run
        for (var i = 0; i < permutations; i++)
        {
            _a[i] = SplitMix64.Next(ref state) | 1;
            _b[i] = SplitMix64.Next(ref state);
        }
    }

    /// <summary>
    /// The signature of <paramref name="text"/>'s shingle set. Per shingle all permutations run as one vector loop
    /// (AVX-512: 8 at a time). Two facts keep it exact and simple: the minimum of the top 32 bits is the top 32 bits of
    /// the 64-bit minimum, and a repeated shingle cannot lower a minimum, so repeats need no set to skip them.
    /// </summary>
    public uint[] Signature(string text)
    {
        var k = Math.Min(ShingleSize, Math.Max(1, text.Length));
        Span<ulong> min = Permutations <= 1024 ? stackalloc ulong[Permutations] : new ulong[Permutations];
        min.Fill(ulong.MaxValue);
        var bytes = MemoryMarshal.AsBytes(text.AsSpan());
        for (var i = 0; i + k <= text.Length; i++)
            Lower(min, XxHash64.HashToUInt64(bytes.Slice(2 * i, 2 * k)));
        var sig = new uint[Permutations];
        for (var p = 0; p < sig.Length; p++) sig[p] = (uint)(min[p] >> 32);
        return sig;
    }

    /// <summary>min[p] = min(min[p], a[p]·h + b[p]) for every permutation p.</summary>
    void Lower(Span<ulong> min, ulong h)
    {
        var p = 0;
        ref var a = ref MemoryMarshal.GetArrayDataReference(_a);
        ref var b = ref MemoryMarshal.GetArrayDataReference(_b);
        ref var m = ref MemoryMarshal.GetReference(min);
        if (Vector512.IsHardwareAccelerated)
        {
            var hv = Vector512.Create(h);
            for (; p + 8 <= min.Length; p += 8)
            {
                var v = Vector512.LoadUnsafe(ref a, (nuint)p) * hv + Vector512.LoadUnsafe(ref b, (nuint)p);
                Vector512.Min(Vector512.LoadUnsafe(ref m, (nuint)p), v).StoreUnsafe(ref m, (nuint)p);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var hv = Vector256.Create(h);
            for (; p + 4 <= min.Length; p += 4)
            {
                var v = Vector256.LoadUnsafe(ref a, (nuint)p) * hv + Vector256.LoadUnsafe(ref b, (nuint)p);
                Vector256.Min(Vector256.LoadUnsafe(ref m, (nuint)p), v).StoreUnsafe(ref m, (nuint)p);
            }
        }
        for (; p < min.Length; p++)
        {
            var v = _a[p] * h + _b[p];
            if (v < min[p]) min[p] = v;
        }
    }

    public static double Similarity(ReadOnlySpan<uint> x, ReadOnlySpan<uint> y)
    {
        var same = 0;
        for (var i = 0; i < x.Length; i++) if (x[i] == y[i]) same++;
        return (double)same / x.Length;
    }
}

/// <summary>
/// Locality-sensitive hashing over MinHash signatures: b bands of r rows; documents sharing any band are
/// candidates, confirmed when their estimated Jaccard similarity reaches the threshold. The (b, r) split is
/// chosen so that the LSH threshold (1/b)^(1/r) sits just below the Jaccard threshold, favouring recall;
/// confirmation removes the extra candidates.
/// Memory grows with the documents added: the signature (4 bytes × permutations, stored flat) plus, per band, one
/// dictionary entry (about 28 bytes with its bucket slot) and one 4-byte chain link: about 1 KB per document at 128
/// permutations (14 bands). Buckets are chains through <see cref="_next"/> rather than a list per bucket, which would
/// cost an object per band per document.
/// </summary>
public sealed class NearDuplicateIndex
{
    const int ChunkDocs = 4096;
    readonly double _threshold;
    readonly int _bands, _rows, _permutations;
    readonly Dictionary<ulong, int>[] _head;    // per band: bucket key → the newest document in it
    readonly List<uint[]> _signatures = [];      // chunks of ChunkDocs signatures, back to back
    int[] _next = new int[1024];                // [doc · bands + band] → the previous document of that bucket, or -1
    int _count;

    public NearDuplicateIndex(int permutations, double threshold)
    {
        _threshold = threshold;
        _permutations = permutations;
        (_bands, _rows) = ChooseBands(permutations, threshold);
        _head = new Dictionary<ulong, int>[_bands];
        for (var i = 0; i < _bands; i++) _head[i] = [];
    }

    public int Bands => _bands;
    public int Rows => _rows;
    public int Count => _count;

    public static (int Bands, int Rows) ChooseBands(int permutations, double threshold)
    {
        var best = (Bands: permutations, Rows: 1);
        var bestGap = double.MaxValue;
        for (var r = 1; r <= permutations; r++)
        {
            var b = permutations / r;
            var lsh = Math.Pow(1.0 / b, 1.0 / r);
            var gap = threshold - lsh;
            if (gap >= 0.05 && gap < bestGap) { bestGap = gap; best = (b, r); }
        }
        return best;
    }

    /// <summary>
    /// When a previously added document is at least threshold-similar, returns the number of one such document
    /// (and adds nothing); otherwise adds this one and returns null.
    /// </summary>
    public int? FindOrAdd(uint[] signature)
    {
        if (signature.Length != _permutations) throw new ArgumentException($"signature of {signature.Length}, the index holds {_permutations} permutations", nameof(signature));
        Span<ulong> keys = stackalloc ulong[_bands];
        for (var band = 0; band < _bands; band++)
        {
            keys[band] = XxHash64.HashToUInt64(MemoryMarshal.AsBytes(signature.AsSpan(band * _rows, _rows)), band);
            if (!_head[band].TryGetValue(keys[band], out var d)) continue;
            for (; d >= 0; d = _next[(long)d * _bands + band])
                if (MinHasher.Similarity(signature, Stored(d)) >= _threshold) return d;
        }
        var id = _count++;
        if (id % ChunkDocs == 0) _signatures.Add(new uint[ChunkDocs * _permutations]);
        signature.CopyTo(_signatures[^1].AsSpan(id % ChunkDocs * _permutations));
        if ((long)_count * _bands > _next.Length) Array.Resize(ref _next, (int)Math.Min(Array.MaxLength, Math.Max((long)_count * _bands, 2L * _next.Length)));
        for (var band = 0; band < _bands; band++)
        {
            _next[(long)id * _bands + band] = _head[band].TryGetValue(keys[band], out var previous) ? previous : -1;
            _head[band][keys[band]] = id;
        }
        return null;
    }

    ReadOnlySpan<uint> Stored(int doc) => _signatures[doc / ChunkDocs].AsSpan(doc % ChunkDocs * _permutations, _permutations);
}
