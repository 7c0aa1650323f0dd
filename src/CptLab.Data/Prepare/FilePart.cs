using System.Buffers.Binary;
using CptLab.Core;
using CptLab.Data.Cleaning;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Prepare;

/// <summary>
/// The order-free half of `data prepare` for one input file: read, clean, hash and tokenize every record, and
/// write the result as a part (two files in the output folder's <c>.prepare-parts/</c>) that the order-dependent
/// half (dedup, split, shards) reads back in input order. A part is a pure function of the file, the options and
/// the tokenizer, so parts can be made in any order, on any number of threads, and kept across an interrupted run.
/// <code>
///   KEY.meta  "CPTPART1" | int32 permutations | per record, in file order:
///             int64 line | uint8 drop (255 = kept by cleaning)
///             dropped: uint8 has_detail [string detail]
///             kept:    uint64 exact_hash | uint8 validation | int32 chars | int32 tokens | uint8 has_signature [uint32[permutations]]
///   KEY.tok   int32 little-endian token ids of the kept-by-cleaning records, back to back (BOS and EOS included)
/// </code>
/// Memory: one batch of records (at most <see cref="PrepareOptions.BatchSize"/> records and about
/// <see cref="PrepareOptions.BatchChars"/> characters, or one record when a single record is larger), whatever the file's size.
/// </summary>
static class FilePart
{
    public const string Dir = ".prepare-parts";
    public const int Format = 1;
    static ReadOnlySpan<byte> Magic => "CPTPART1"u8;
    const byte Kept = 255;

    public static string MetaPath(string outDir, string key) => Path.Combine(outDir, Dir, key + ".meta");
    public static string TokPath(string outDir, string key) => Path.Combine(outDir, Dir, key + ".tok");
    public static bool Exists(string outDir, string key) => File.Exists(MetaPath(outDir, key)) && File.Exists(TokPath(outDir, key));

    public static void Delete(string outDir, string key)
    {
        File.Delete(MetaPath(outDir, key));
        File.Delete(TokPath(outDir, key));
    }

    public sealed record Result(long Documents, long Tokens);

    /// <summary>
    /// Writes the part of <paramref name="file"/> (temp names, then renamed: the .meta appearing last marks it
    /// complete). With <paramref name="strict"/>, the file stops at its first unreadable record, which is recorded
    /// so that the in-order pass reports the first such record of the whole input.
    /// </summary>
    public static Result Write(string file, SourceSpec source, string outDir, string key, PrepareOptions options, ITextTokenizer tokenizer,
        TextCleaner cleaner, int innerThreads, CancellationToken ct)
    {
        var meta = MetaPath(outDir, key);
        var tok = TokPath(outDir, key);
        Directory.CreateDirectory(Path.GetDirectoryName(meta)!);
        var metaTmp = meta + ".tmp";
        var tokTmp = tok + ".tmp";
        var addBos = options.AddBos && tokenizer.BosId is not null;
        long documents = 0, tokens = 0;
        try
        {
            using (var metaStream = new FileStream(metaTmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var tokStream = new FileStream(tokTmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            using (var w = new BinaryWriter(metaStream))
            {
                w.Write(Magic);
                w.Write(options.Cleaning.NumPermutations);
                var bytes = new byte[1 << 16];
                var parallel = new ParallelOptions { MaxDegreeOfParallelism = innerThreads, CancellationToken = ct };
                var stop = false;
                foreach (var batch in Batches(DocumentReader.Read(file, source), options.BatchSize, options.BatchChars))
                {
                    ct.ThrowIfCancellationRequested();
                    var done = new Processed[batch.Count];
                    if (innerThreads == 1) for (var i = 0; i < batch.Count; i++) done[i] = Process(batch[i]);
                    else Parallel.For(0, batch.Count, parallel, i => done[i] = Process(batch[i]));
                    for (var i = 0; i < batch.Count && !stop; i++)
                    {
                        var p = done[i];
                        documents++;
                        w.Write(batch[i].Line);
                        if (p.Drop is { } drop)
                        {
                            w.Write((byte)drop);
                            w.Write(p.Detail is not null);
                            if (p.Detail is not null) w.Write(p.Detail);
                            stop = options.Strict && drop.IsBadInput();
                            continue;
                        }
                        w.Write(Kept);
                        w.Write(p.Clean!.ExactHash);
                        w.Write(p.Clean.SplitValue < options.ValidationFraction);
                        w.Write(p.Clean.Text.Length);
                        w.Write(p.Tokens!.Length);
                        w.Write(p.Clean.Signature is not null);
                        if (p.Clean.Signature is { } sig) foreach (var v in sig) w.Write(v);
                        var need = p.Tokens.Length * 4;
                        if (bytes.Length < need) bytes = new byte[Math.Max(need, bytes.Length * 2)];
                        for (var t = 0; t < p.Tokens.Length; t++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(t * 4), p.Tokens[t]);
                        tokStream.Write(bytes, 0, need);
                        tokens += p.Tokens.Length;
                    }
                    if (stop) break;
                }
                w.Flush();
                metaStream.Flush(flushToDisk: true);
                tokStream.Flush(flushToDisk: true);
            }
            File.Move(tokTmp, tok, overwrite: true);
            File.Move(metaTmp, meta, overwrite: true); // last: its presence says the part is whole
        }
        catch
        {
            TryDelete(metaTmp);
            TryDelete(tokTmp);
            throw;
        }
        return new Result(documents, tokens);

        Processed Process(RawDocument raw)
        {
            if (raw.Error is { } e) return new Processed(e, raw.Detail, null, null);
            var clean = cleaner.Clean(raw.Text!, source.Language);
            if (clean.Drop is { } d) return new Processed(d, clean.Detail, null, null);
            var ids = new List<int>(clean.Text.Length / 2 + 2);
            if (addBos) ids.Add(tokenizer.BosId!.Value);
            tokenizer.Encode(clean.Text, ids);
            ids.Add(tokenizer.EosId);
            return new Processed(null, null, clean, [.. ids]);
        }
    }

    readonly record struct Processed(DropReason? Drop, string? Detail, CleanedDocument? Clean, int[]? Tokens);

    /// <summary>
    /// Consecutive records in groups of at most <paramref name="maxDocs"/> records and, unless a single record is
    /// larger, at most <paramref name="maxChars"/> characters: the only text a file's worker holds at once.
    /// </summary>
    internal static IEnumerable<List<RawDocument>> Batches(IEnumerable<RawDocument> docs, int maxDocs, long maxChars)
    {
        var batch = new List<RawDocument>();
        long chars = 0;
        foreach (var d in docs)
        {
            var n = d.Text?.Length ?? 0;
            if (batch.Count > 0 && (batch.Count == maxDocs || chars + n > maxChars))
            {
                yield return batch;
                batch = [];
                chars = 0;
            }
            batch.Add(d);
            chars += n;
        }
        if (batch.Count > 0) yield return batch;
    }

    /// <summary>One record of a part, as the in-order pass reads it.</summary>
    public struct Record
    {
        public long Line;
        public DropReason? Drop;
        public string? Detail;
        public ulong ExactHash;
        public bool Validation;
        public int Chars;
        public int TokenCount;
        public uint[]? Signature;
    }

    /// <summary>Streams a part's records and, for the kept ones, their tokens.</summary>
    public sealed class Reader : IDisposable
    {
        readonly string _metaPath;
        readonly BinaryReader _meta;
        readonly FileStream _tok;
        readonly int _permutations;
        byte[] _bytes = new byte[1 << 16];
        int[] _ids = new int[1 << 14];

        public Reader(string outDir, string key)
        {
            _metaPath = MetaPath(outDir, key);
            _meta = new BinaryReader(new FileStream(_metaPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16));
            _tok = new FileStream(TokPath(outDir, key), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            Span<byte> magic = stackalloc byte[8];
            if (_meta.Read(magic) != 8 || !magic.SequenceEqual(Magic))
                throw new CorruptFileException(_metaPath, "not a prepare part; delete the output folder's .prepare-parts and prepare.state.json and run again");
            _permutations = _meta.ReadInt32();
        }

        public bool Next(out Record r)
        {
            r = default;
            if (_meta.BaseStream.Position == _meta.BaseStream.Length) return false;
            r.Line = _meta.ReadInt64();
            var drop = _meta.ReadByte();
            if (drop != Kept)
            {
                r.Drop = (DropReason)drop;
                if (_meta.ReadBoolean()) r.Detail = _meta.ReadString();
                return true;
            }
            r.ExactHash = _meta.ReadUInt64();
            r.Validation = _meta.ReadBoolean();
            r.Chars = _meta.ReadInt32();
            r.TokenCount = _meta.ReadInt32();
            if (_meta.ReadBoolean())
            {
                r.Signature = new uint[_permutations];
                for (var i = 0; i < _permutations; i++) r.Signature[i] = _meta.ReadUInt32();
            }
            return true;
        }

        /// <summary>The tokens of the record just read (call once per kept record, or <see cref="SkipTokens"/>).</summary>
        public ReadOnlySpan<int> Tokens(int count)
        {
            var need = count * 4;
            if (_bytes.Length < need) _bytes = new byte[Math.Max(need, _bytes.Length * 2)];
            if (_ids.Length < count) _ids = new int[Math.Max(count, _ids.Length * 2)];
            _tok.ReadExactly(_bytes, 0, need);
            for (var i = 0; i < count; i++) _ids[i] = BinaryPrimitives.ReadInt32LittleEndian(_bytes.AsSpan(i * 4));
            return _ids.AsSpan(0, count);
        }

        public void SkipTokens(int count) => _tok.Seek(4L * count, SeekOrigin.Current);

        public void Dispose()
        {
            _meta.Dispose();
            _tok.Dispose();
        }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { }
    }
}
