using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Shards;

namespace CptLab.Data.Mixing;

/// <summary>Where one source's token stream stands: epoch, position in that epoch's document order, token offset.</summary>
public sealed record SourceCursor(string Source, long Epoch, long Document, int Offset);

/// <summary>
/// The sampler's whole position: small enough to live in every checkpoint. <see cref="SegmentCounts"/> and
/// <see cref="SegmentSteps"/> count sequences since the blend was last set; <see cref="Shares"/> is that blend.
/// </summary>
public sealed record SamplerState
{
    public int FormatVersion { get; init; } = 1;
    public required ulong Seed { get; init; }
    public required int SeqLen { get; init; }
    public required long Step { get; init; }
    public required long SegmentSteps { get; init; }
    public required Dictionary<string, double> Shares { get; init; }
    public required Dictionary<string, long> SegmentCounts { get; init; }
    public required List<SourceCursor> Cursors { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, Json.SnakeCase);
    public static SamplerState FromJson(string json) =>
        JsonSerializer.Deserialize<SamplerState>(json, Json.SnakeCase) ?? throw new CptLabException("empty sampler state");
}

/// <summary>
/// The training stream of a blend: packed sequences of SeqLen + 1 tokens (inputs and shifted targets), each
/// from one source, interleaved so that every source's token share is within one sequence of its target over
/// every prefix (<see cref="Apportionment"/>). Within a source, documents are read whole and in a seeded
/// random order per epoch, packed across document boundaries (each document ends with EOS), consecutive
/// sequences overlapping by one token as Megatron-LM's GPT dataset does; a source that runs out starts its
/// next epoch in a fresh order. Deterministic by seed; <see cref="GetState"/>/<see cref="Restore"/> resume
/// exactly; <see cref="SetShares"/> changes the blend between two steps without repeating or skipping data.
/// </summary>
public sealed class MixtureSampler : IDisposable
{
    readonly ulong _seed;
    readonly int _seqLen;
    readonly string[] _names;
    readonly IndexedDataset[] _data;
    readonly Stream[] _streams;
    double[] _shares;
    long[] _counts;
    long _segmentSteps;

    public long Step { get; private set; }
    public int SeqLen => _seqLen;
    public IReadOnlyList<string> Sources => _names;
    /// <summary>Index into <see cref="Sources"/> of the source of the last sequence returned.</summary>
    public int LastSource { get; private set; } = -1;
    public IReadOnlyList<double> Shares => _shares;

    public MixtureSampler(IReadOnlyList<(string Name, string Prefix, double Share)> sources, int seqLen, ulong seed)
    {
        if (seqLen < 1) throw new CptLabException($"sequence length {seqLen} must be positive");
        _seed = seed;
        _seqLen = seqLen;
        _names = sources.Select(s => s.Name).ToArray();
        _data = new IndexedDataset[sources.Count];
        _streams = new Stream[sources.Count];
        try
        {
            for (var i = 0; i < sources.Count; i++)
            {
                _data[i] = new IndexedDataset(sources[i].Prefix);
                _streams[i] = new Stream(_data[i], seed, sources[i].Name);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
        _shares = new double[sources.Count];
        _counts = new long[sources.Count];
        SetShares(sources.Select(s => s.Share).ToArray());
    }

    /// <summary>The sampler of a blend manifest written by `cptlab data mix`.</summary>
    public static MixtureSampler Open(BlendManifest plan) =>
        new(plan.Sources.Select(s => (s.Name, Path.Combine(plan.DataDir, s.TrainPrefix), s.Share)).ToList(), plan.SeqLen, plan.Seed);

    /// <summary>
    /// Sets a new blend from the next sequence on (call between steps). Shares are normalized; the prefix
    /// guarantee then holds from this point on; each source's position is kept, so nothing repeats or is skipped.
    /// </summary>
    public void SetShares(IReadOnlyList<double> shares)
    {
        if (shares.Count != _names.Length) throw new ArgumentException($"{shares.Count} shares for {_names.Length} sources");
        if (shares.Any(s => !(s >= 0) || double.IsInfinity(s))) throw new CptLabException("blend shares must be non-negative numbers");
        var total = shares.Sum();
        if (!(total > 0)) throw new CptLabException("at least one source needs a positive share");
        ApplyShares(shares.Select(s => s / total).ToArray());
    }

    void ApplyShares(double[] normalized)
    {
        for (var i = 0; i < normalized.Length; i++)
        {
            if (normalized[i] > 0 && _data[i].TokenCount == 0) throw new CptLabException($"source '{_names[i]}' is empty: {_data[i].Prefix}.bin holds no tokens");
            _shares[i] = normalized[i];
        }
        _counts = new long[_names.Length];
        _segmentSteps = 0;
    }

    public void SetShares(IReadOnlyDictionary<string, double> shares) =>
        SetShares(_names.Select(n => shares.TryGetValue(n, out var s) ? s : 0.0).ToArray());

    /// <summary>The next training sequence: SeqLen + 1 token ids.</summary>
    public int[] Next()
    {
        var seq = new int[_seqLen + 1];
        Next(seq);
        return seq;
    }

    public void Next(Span<int> destination)
    {
        if (destination.Length != _seqLen + 1) throw new ArgumentException($"destination holds {destination.Length} tokens, a sequence is {_seqLen + 1}");
        var s = Apportionment.Next(_shares, _counts, _segmentSteps + 1);
        _streams[s].Take(destination, advance: _seqLen);
        _counts[s]++;
        _segmentSteps++;
        Step++;
        LastSource = s;
    }

    public SamplerState GetState() => new()
    {
        Seed = _seed, SeqLen = _seqLen, Step = Step, SegmentSteps = _segmentSteps,
        Shares = _names.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => _shares[x.i]),
        SegmentCounts = _names.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => _counts[x.i]),
        Cursors = _streams.Select((st, i) => new SourceCursor(_names[i], st.Epoch, st.Document, st.Offset)).ToList(),
    };

    public void Restore(SamplerState state)
    {
        if (state.Seed != _seed || state.SeqLen != _seqLen)
            throw new CptLabException($"sampler state is for seed {state.Seed}, sequence length {state.SeqLen}; this blend has seed {_seed}, sequence length {_seqLen}");
        var missing = _names.Where(n => !state.Shares.ContainsKey(n) || state.Cursors.All(c => c.Source != n)).ToList();
        if (missing.Count > 0) throw new CptLabException($"sampler state has no position for source(s) {string.Join(", ", missing)}");
        ApplyShares(_names.Select(n => state.Shares[n]).ToArray());   // as saved: renormalizing could move a tie
        for (var i = 0; i < _names.Length; i++)
        {
            _counts[i] = state.SegmentCounts.GetValueOrDefault(_names[i]);
            var c = state.Cursors.First(x => x.Source == _names[i]);
            _streams[i].Seek(c.Epoch, c.Document, c.Offset);
        }
        _segmentSteps = state.SegmentSteps;
        Step = state.Step;
    }

    public void Dispose()
    {
        foreach (var d in _data) d?.Dispose();
    }

    /// <summary>One source's endless token stream: epochs of its documents, each epoch in its own seeded order.</summary>
    sealed class Stream(IndexedDataset data, ulong seed, string name)
    {
        readonly ulong _sourceSeed = seed ^ Hash(name);
        long _permEpoch = -1;
        int[] _perm = [];

        public long Epoch { get; private set; }
        public long Document { get; private set; }
        public int Offset { get; private set; }

        public void Seek(long epoch, long document, int offset)
        {
            if (epoch < 0 || document < 0 || document >= data.Count || offset < 0 || offset > data.Length(OrderOf(epoch, document)))
                throw new CptLabException($"sampler state position (epoch {epoch}, document {document}, offset {offset}) is outside {data.Prefix}: was the data prepared again since?");
            (Epoch, Document, Offset) = (epoch, document, offset);
        }

        /// <summary>Copies destination.Length tokens from the current position, then moves on by <paramref name="advance"/> tokens.</summary>
        public void Take(Span<int> destination, int advance)
        {
            var (epoch, doc, offset) = (Epoch, Document, Offset);
            var filled = 0;
            while (filled < destination.Length)
            {
                var seq = OrderOf(epoch, doc);
                var length = data.Length(seq);
                if (offset >= length) { offset = 0; if (++doc == data.Count) { doc = 0; epoch++; } continue; }
                var limit = filled < advance ? advance : destination.Length;   // stop at the advance point to record it
                var n = Math.Min(length - offset, limit - filled);
                data.Read(seq, offset, destination.Slice(filled, n));
                filled += n;
                offset += n;
                if (filled == advance) (Epoch, Document, Offset) = (epoch, doc, offset);
            }
            Normalize();
        }

        // A position at the very end of a document is the start of the next one: keeps saved states canonical.
        void Normalize()
        {
            while (Offset >= data.Length(OrderOf(Epoch, Document)))
            {
                Offset = 0;
                if (++Document == data.Count) { Document = 0; Epoch++; }
            }
        }

        int OrderOf(long epoch, long document)
        {
            if (epoch != _permEpoch)
            {
                _perm = Permutation(data.Count, _sourceSeed + (ulong)epoch * SplitMix64.Gamma);
                _permEpoch = epoch;
            }
            return _perm[document];
        }

        static int[] Permutation(int n, ulong seed)
        {
            var p = new int[n];
            for (var i = 0; i < n; i++) p[i] = i;
            var state = seed;
            for (var i = n - 1; i > 0; i--)
            {
                var j = (int)(SplitMix64.Next(ref state) % (ulong)(i + 1));
                (p[i], p[j]) = (p[j], p[i]);
            }
            return p;
        }

        static ulong Hash(string s) => System.IO.Hashing.XxHash64.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(s));
    }
}
