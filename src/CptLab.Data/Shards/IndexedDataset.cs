using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using CptLab.Core;

namespace CptLab.Data.Shards;

/// <summary>
/// Megatron-LM's indexed dataset (`MMIDIDX`), the format of every tokenized shard, so the same files feed
/// Megatron-LM for a full-size run. `.bin` is the concatenated token arrays; `.idx`, little-endian:
/// <code>
///   magic "MMIDIDX\0\0" (9 bytes) | uint64 version = 1 | uint8 dtype code (8 = uint16, 4 = int32)
///   uint64 N (sequences) | uint64 D (document boundaries = documents + 1)
///   int32[N] sequence lengths (tokens) | int64[N] byte offsets into .bin | int64[D] document indices (0 … N)
/// </code>
/// Each document is one sequence here; Megatron's document indices are then simply 0, 1, …, N.
/// </summary>
public static class IndexedFormat
{
    public static ReadOnlySpan<byte> Magic => "MMIDIDX\0\0"u8;
    public const ulong Version = 1;
    public const byte DTypeInt32 = 4;
    public const byte DTypeUInt16 = 8;

    /// <summary>Megatron's rule: uint16 when every id fits below 65,500, int32 otherwise.</summary>
    public static byte DTypeFor(int vocabSize) => vocabSize < 65_500 ? DTypeUInt16 : DTypeInt32;

    public static int ItemSize(byte dtype) => dtype switch
    {
        DTypeUInt16 => 2,
        DTypeInt32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "only uint16 (8) and int32 (4) token arrays are used"),
    };

    public static string BinPath(string prefix) => prefix + ".bin";
    public static string IdxPath(string prefix) => prefix + ".idx";
}

/// <summary>Writes one `.bin` + `.idx` pair, one document at a time; the pair appears only on <see cref="Finish"/>.</summary>
public sealed class IndexedDatasetWriter : IDisposable
{
    readonly string _prefix;
    readonly string _tmpBin;
    readonly FileStream _bin;
    readonly byte _dtype;
    readonly int _vocabSize;
    readonly List<int> _lengths = [];
    byte[] _buffer = new byte[1 << 16];
    bool _finished;

    public long TokenCount { get; private set; }
    public int SequenceCount => _lengths.Count;

    public IndexedDatasetWriter(string pathPrefix, int vocabSize)
    {
        _prefix = pathPrefix;
        _vocabSize = vocabSize;
        _dtype = IndexedFormat.DTypeFor(vocabSize);
        var dir = Path.GetDirectoryName(Path.GetFullPath(pathPrefix))!;
        Directory.CreateDirectory(dir);
        _tmpBin = Path.Combine(dir, $".{Path.GetFileName(pathPrefix)}.bin.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        _bin = new FileStream(_tmpBin, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
    }

    public void Add(ReadOnlySpan<int> tokens)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        var size = IndexedFormat.ItemSize(_dtype);
        var bytes = tokens.Length * size;
        if (_buffer.Length < bytes) _buffer = new byte[Math.Max(bytes, _buffer.Length * 2)];
        for (var i = 0; i < tokens.Length; i++)
        {
            var t = tokens[i];
            if ((uint)t >= (uint)_vocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"token id outside the vocabulary of {_vocabSize}");
            if (size == 2) BitConverterLE.WriteUInt16(_buffer.AsSpan(i * 2), (ushort)t);
            else BitConverterLE.WriteInt32(_buffer.AsSpan(i * 4), t);
        }
        _bin.Write(_buffer, 0, bytes);
        _lengths.Add(tokens.Length);
        TokenCount += tokens.Length;
    }

    /// <summary>Flushes `.bin`, writes `.idx` atomically, then moves `.bin` into place.</summary>
    public void Finish()
    {
        if (_finished) return;
        _bin.Flush(flushToDisk: true);
        _bin.Dispose();
        var size = IndexedFormat.ItemSize(_dtype);
        AtomicFile.Write(IndexedFormat.IdxPath(_prefix), s =>
        {
            using var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true); // BinaryWriter is little-endian on every platform
            w.Write(IndexedFormat.Magic);
            w.Write(IndexedFormat.Version);
            w.Write(_dtype);
            w.Write((ulong)_lengths.Count);
            w.Write((ulong)_lengths.Count + 1);
            foreach (var n in _lengths) w.Write(n);
            long offset = 0;
            foreach (var n in _lengths) { w.Write(offset); offset += (long)n * size; }
            for (long d = 0; d <= _lengths.Count; d++) w.Write(d);
        });
        File.Move(_tmpBin, IndexedFormat.BinPath(_prefix), overwrite: true);
        _finished = true;
    }

    public void Dispose()
    {
        if (_finished) return;
        _bin.Dispose();
        try { File.Delete(_tmpBin); } catch (IOException) { }
        _finished = true;
    }
}

static class BitConverterLE
{
    public static void WriteUInt16(Span<byte> s, ushort v) => System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(s, v);
    public static void WriteInt32(Span<byte> s, int v) => System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(s, v);
}

/// <summary>
/// A memory-mapped, random-access reader of a `.bin`/`.idx` pair. Nothing is read into memory but the index
/// arrays' pages the OS maps in; thread-safe for reads.
/// </summary>
public sealed unsafe class IndexedDataset : IDisposable
{
    readonly MemoryMappedFile? _idxMap, _binMap;
    readonly MemoryMappedViewAccessor? _idxView, _binView;
    readonly byte* _idx, _bin;
    readonly long _lengthsAt, _offsetsAt;
    readonly long _binLength;
    bool _disposed;

    public string Prefix { get; }
    public byte DType { get; }
    public int Count { get; }
    public long DocumentCount { get; }
    public long TokenCount { get; }

    public IndexedDataset(string pathPrefix)
    {
        Prefix = pathPrefix;
        var idxPath = IndexedFormat.IdxPath(pathPrefix);
        var binPath = IndexedFormat.BinPath(pathPrefix);
        if (!File.Exists(idxPath)) throw new CptLabException($"{idxPath}: index file not found; run `cptlab data prepare` to write the shards");
        if (!File.Exists(binPath)) throw new CptLabException($"{binPath}: token file not found next to its .idx");
        var idxLength = new FileInfo(idxPath).Length;
        const int header = 9 + 8 + 1 + 8 + 8;
        if (idxLength < header) throw new CorruptFileException(idxPath, $"{idxLength} bytes is shorter than the {header}-byte MMIDIDX header");

        _idxMap = MemoryMappedFile.CreateFromFile(idxPath, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _idxView = _idxMap.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _idxView.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _idx = p + _idxView.PointerOffset;

        if (!new ReadOnlySpan<byte>(_idx, 9).SequenceEqual(IndexedFormat.Magic))
            Fail(idxPath, "bad magic: not a Megatron MMIDIDX index");
        var version = ReadU64(9);
        if (version != IndexedFormat.Version) Fail(idxPath, $"version {version}, expected {IndexedFormat.Version}");
        DType = _idx[17];
        if (DType != IndexedFormat.DTypeUInt16 && DType != IndexedFormat.DTypeInt32)
            Fail(idxPath, $"dtype code {DType}: CptLab reads uint16 (8) and int32 (4) token arrays");
        var n = ReadU64(18);
        var d = ReadU64(26);
        if (n > int.MaxValue) Fail(idxPath, $"{n} sequences is more than one shard may hold");
        Count = (int)n;
        DocumentCount = (long)d - 1;
        _lengthsAt = header;
        _offsetsAt = _lengthsAt + 4L * Count;
        var expected = _offsetsAt + 8L * Count + 8L * (long)d;
        if (idxLength != expected) Fail(idxPath, $"{idxLength} bytes, expected {expected} for {n} sequences and {d} document indices (truncated or damaged)");

        long tokens = 0;
        for (var i = 0; i < Count; i++) tokens += Length(i);
        TokenCount = tokens;
        _binLength = new FileInfo(binPath).Length;
        var itemSize = IndexedFormat.ItemSize(DType);
        if (_binLength != tokens * itemSize) Fail(binPath, $"{_binLength} bytes, but the index describes {tokens} tokens of {itemSize} bytes");
        if (_binLength > 0)
        {
            _binMap = MemoryMappedFile.CreateFromFile(binPath, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _binView = _binMap.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* b = null;
            _binView.SafeMemoryMappedViewHandle.AcquirePointer(ref b);
            _bin = b + _binView.PointerOffset;
        }
    }

    void Fail(string path, string problem)
    {
        Dispose();
        throw new CorruptFileException(path, problem);
    }

    ulong ReadU64(long at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_idx + at, 8));

    public int Length(int sequence)
    {
        if ((uint)sequence >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(sequence));
        return System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(_idx + _lengthsAt + 4L * sequence, 4));
    }

    public long ByteOffset(int sequence)
    {
        if ((uint)sequence >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(sequence));
        return System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(_idx + _offsetsAt + 8L * sequence, 8));
    }

    /// <summary>Copies tokens [<paramref name="start"/>, start + dest.Length) of a sequence into <paramref name="dest"/>.</summary>
    public void Read(int sequence, int start, Span<int> dest)
    {
        var length = Length(sequence);
        if (start < 0 || start + dest.Length > length) throw new ArgumentOutOfRangeException(nameof(start), $"tokens {start}..{start + dest.Length} of a {length}-token sequence");
        var at = ByteOffset(sequence);
        if (DType == IndexedFormat.DTypeUInt16)
        {
            var src = new ReadOnlySpan<ushort>(_bin + at + 2L * start, dest.Length);
            for (var i = 0; i < src.Length; i++) dest[i] = src[i]; // little-endian hosts only (x64, arm64)
        }
        else
        {
            new ReadOnlySpan<int>(_bin + at + 4L * start, dest.Length).CopyTo(dest);
        }
    }

    public int[] Get(int sequence)
    {
        var tokens = new int[Length(sequence)];
        Read(sequence, 0, tokens);
        return tokens;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_idxView is not null) { _idxView.SafeMemoryMappedViewHandle.ReleasePointer(); _idxView.Dispose(); }
        _idxMap?.Dispose();
        if (_binView is not null) { _binView.SafeMemoryMappedViewHandle.ReleasePointer(); _binView.Dispose(); }
        _binMap?.Dispose();
    }
}
