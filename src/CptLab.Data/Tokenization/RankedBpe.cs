using System.Text;
using System.Text.Unicode;

namespace CptLab.Data.Tokenization;

/// <summary>
/// tiktoken's byte-pair encoder for one pre-token, the hot loop of <see cref="TextTokenizer.Encode"/>: a piece that
/// is itself a token is that token; otherwise start from its UTF-8 bytes and keep merging the adjacent pair whose
/// join has the lowest rank (the leftmost on ties) until no adjacent pair joins into a token. Rank = id.
/// <para>
/// Same rule as Microsoft.ML.Tokenizers' TiktokenTokenizer (which CptLab still uses for special tokens and
/// decoding), but the pair test is one lookup of (left id, right id) in a table of every split of every token,
/// built once, instead of hashing the joined bytes; the tests compare the ids with Hugging Face's on megabytes.
/// </para>
/// </summary>
public sealed class RankedBpe
{
    readonly int[] _byteIds = new int[256];
    readonly Dictionary<long, int> _joins = new(PairComparer.Instance);   // (left id << 32 | right id) → id of the token they join into
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _wholeTokens;

    /// <param name="tokens">Each id's bytes (index = id = rank); null where an id has none. All 256 single bytes must be tokens.</param>
    public RankedBpe(IReadOnlyList<byte[]?> tokens)
    {
        var byBytes = new Dictionary<string, int>(tokens.Count);   // bytes as Latin-1 chars → id
        var whole = new Dictionary<string, int>(tokens.Count);     // text of the tokens that are whole UTF-8 → id
        Array.Fill(_byteIds, -1);
        for (var id = 0; id < tokens.Count; id++)
        {
            if (tokens[id] is not { Length: > 0 } bytes) continue;
            byBytes.TryAdd(Encoding.Latin1.GetString(bytes), id);
            if (bytes.Length == 1) _byteIds[bytes[0]] = id;
            if (Utf8.IsValid(bytes)) whole.TryAdd(Encoding.UTF8.GetString(bytes), id);
        }
        if (Array.IndexOf(_byteIds, -1) is var missing and >= 0)
            throw new ArgumentException($"byte 0x{missing:X2} is not a token; a byte-level BPE vocabulary has all 256", nameof(tokens));
        var lookup = byBytes.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (var (key, id) in byBytes)
            for (var k = 1; k < key.Length; k++)
                if (lookup.TryGetValue(key.AsSpan(0, k), out var left) && lookup.TryGetValue(key.AsSpan(k), out var right))
                    _joins[(long)left << 32 | (uint)right] = id;
        _wholeTokens = whole.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Appends the ids of <paramref name="piece"/> (well-formed UTF-16: no lone surrogates).</summary>
    public void Encode(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (piece.IsEmpty) return;
        if (_wholeTokens.TryGetValue(piece, out var whole)) { ids.Add(whole); return; }

        // Sized to the piece (stack memory is zeroed, so a fixed large buffer would cost more than the merging).
        var maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length);
        Span<byte> bytes = maxBytes <= 1024 ? stackalloc byte[maxBytes] : new byte[maxBytes];
        var n = Encoding.UTF8.GetBytes(piece, bytes);
        Span<int> parts = n <= 256 ? stackalloc int[n] : new int[n];      // current tokens, left to right
        Span<int> joins = n <= 256 ? stackalloc int[n] : new int[n];      // joins[i]: id of parts[i] + parts[i+1], or int.MaxValue
        for (var i = 0; i < n; i++) parts[i] = _byteIds[bytes[i]];
        for (var i = 0; i + 1 < n; i++) joins[i] = Join(parts[i], parts[i + 1]);

        var count = n;
        while (count > 1)
        {
            var best = 0;
            for (var i = 1; i < count - 1; i++) if (joins[i] < joins[best]) best = i;
            if (joins[best] == int.MaxValue) break;
            parts[best] = joins[best];
            parts.Slice(best + 2, count - best - 2).CopyTo(parts[(best + 1)..]);
            joins.Slice(best + 2, Math.Max(0, count - best - 3)).CopyTo(joins[(best + 1)..]);
            count--;
            if (best > 0) joins[best - 1] = Join(parts[best - 1], parts[best]);
            if (best + 1 < count) joins[best] = Join(parts[best], parts[best + 1]);
        }
        ids.AddRange(parts[..count]);
    }

    int Join(int left, int right) => _joins.TryGetValue((long)left << 32 | (uint)right, out var id) ? id : int.MaxValue;

    /// <summary>
    /// long's own hash is the XOR of its halves, which for two ids below 2^17 puts most pairs in a few buckets;
    /// a multiplicative (Fibonacci) hash spreads them.
    /// </summary>
    sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }
}
