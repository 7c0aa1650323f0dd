using System.Text;
using CptLab.Core;

namespace CptLab.Export;

/// <summary>The value types of GGUF metadata (gguf.h <c>enum gguf_type</c>; stored as a u32).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>The ggml tensor types CptLab writes (ggml.h <c>enum ggml_type</c>; not the same numbers as general.file_type).</summary>
public enum GgmlType : uint { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 }

/// <summary>One metadata value; arrays carry their element type (GGUF arrays are homogeneous, untagged per element).</summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue I32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue F32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Str(string v) => new(GgufValueType.String, v);
    public static GgufValue Strings(IReadOnlyList<string> v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Int32s(IReadOnlyList<int> v) => new(GgufValueType.Array, v, GgufValueType.Int32);
    public static GgufValue Float32s(IReadOnlyList<float> v) => new(GgufValueType.Array, v, GgufValueType.Float32);
}

/// <summary>A tensor's entry in the GGUF header. <see cref="Ne"/> is in ggml order: ne[0] is the innermost
/// (contiguous) dimension, i.e. PyTorch's shape reversed.</summary>
public sealed record GgufTensorInfo(string Name, long[] Ne, GgmlType Type)
{
    public long ElementCount => Ne.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of the tensor's data: Q8_0 packs each run of 32 values along ne[0] into 34 bytes.</summary>
    public long ByteSize => Type switch
    {
        GgmlType.F32 => ElementCount * 4,
        GgmlType.F16 or GgmlType.BF16 => ElementCount * 2,
        GgmlType.Q8_0 => ElementCount / Q8_0.BlockSize * Q8_0.BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(Type), Type, null),
    };
}

/// <summary>
/// A GGUF version 3 file (ggml's docs/gguf.md), little-endian:
/// <code>
/// "GGUF" u32 version=3 | i64 tensor_count | i64 kv_count
/// kv × (string key, u32 type, value)          string = u64 byte length + UTF-8, no NUL; array = u32 elem type, u64 n, elements
/// tensor × (string name, u32 n_dims, i64 ne[n_dims], u32 ggml_type, u64 offset)
/// zero padding to the alignment, then each tensor's data padded to the alignment, in header order
/// </code>
/// llama.cpp's reader insists that tensor i's offset equals the padded sizes of tensors 0…i−1, and checks metadata
/// types strictly (a u64 where it wants a u32 is an error), so the caller chooses each key's type deliberately.
/// The writer holds no tensor data: <see cref="Write"/> streams the header, then asks for each tensor's bytes in order.
/// </summary>
public sealed class GgufWriter
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    public const uint Version = 3;
    public const int MaxTensorNameBytes = 63; // GGML_MAX_NAME = 64 with the NUL

    readonly List<(string Key, GgufValue Value)> _metadata = [];
    readonly List<GgufTensorInfo> _tensors = [];

    public GgufWriter(uint alignment = 32)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "GGUF alignment must be a power of two");
        Alignment = alignment;
        if (alignment != 32) Add("general.alignment", GgufValue.U32(alignment));
    }

    public uint Alignment { get; }
    public IReadOnlyList<(string Key, GgufValue Value)> Metadata => _metadata;
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors;

    public void Add(string key, GgufValue value)
    {
        if (_metadata.Any(m => m.Key == key)) throw new InvalidOperationException($"GGUF key '{key}' is set twice");
        _metadata.Add((key, value));
    }

    public void AddTensor(GgufTensorInfo info)
    {
        if (Encoding.UTF8.GetByteCount(info.Name) > MaxTensorNameBytes)
            throw new CptLabException($"GGUF tensor name '{info.Name}' is longer than {MaxTensorNameBytes} bytes");
        if (_tensors.Any(t => t.Name == info.Name)) throw new InvalidOperationException($"GGUF tensor '{info.Name}' is added twice");
        if (info.Ne.Length is < 1 or > 4) throw new ArgumentException($"tensor '{info.Name}': {info.Ne.Length} dimensions (GGUF allows 1 to 4)");
        if (info.Type == GgmlType.Q8_0 && info.Ne[0] % Q8_0.BlockSize != 0)
            throw new ArgumentException($"tensor '{info.Name}': ne[0] = {info.Ne[0]} is not a multiple of the Q8_0 block ({Q8_0.BlockSize})");
        _tensors.Add(info);
    }

    /// <summary>Bytes of the whole file (header, padding, data) — for progress reports.</summary>
    public long TotalBytes => DataStart() + _tensors.Sum(t => Pad(t.ByteSize));

    /// <summary>
    /// Writes the file. <paramref name="writeTensor"/> is called once per tensor, in header order, and must write
    /// exactly <see cref="GgufTensorInfo.ByteSize"/> bytes; the writer checks that and adds the padding.
    /// </summary>
    public void Write(Stream output, Action<int, Stream> writeTensor)
    {
        var header = new MemoryStream();
        WriteHeader(header);
        header.WriteTo(output);
        long position = header.Length;
        position += WriteZeros(output, Pad(position) - position);
        for (int i = 0; i < _tensors.Count; i++)
        {
            var counting = new CountingStream(output);
            writeTensor(i, counting);
            if (counting.Written != _tensors[i].ByteSize)
                throw new InvalidOperationException($"tensor '{_tensors[i].Name}': wrote {counting.Written} bytes, its header says {_tensors[i].ByteSize}");
            position += counting.Written;
            position += WriteZeros(output, Pad(position) - position);
        }
    }

    long Pad(long n) => (n + Alignment - 1) / Alignment * Alignment;

    long DataStart()
    {
        var header = new MemoryStream();
        WriteHeader(header);
        return Pad(header.Length);
    }

    void WriteHeader(Stream s)
    {
        var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true); // BinaryWriter is little-endian on every platform
        w.Write(Magic);
        w.Write(Version);
        w.Write((long)_tensors.Count);
        w.Write((long)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            if (value.Type == GgufValueType.Array)
            {
                w.Write((uint)value.ElementType);
                WriteArray(w, value);
            }
            else WriteScalar(w, value.Type, value.Value);
        }
        long offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Ne.Length);
            foreach (var n in t.Ne) w.Write(n);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset += Pad(t.ByteSize);
        }
        w.Flush();
    }

    static void WriteArray(BinaryWriter w, GgufValue value)
    {
        switch (value.Value)
        {
            case IReadOnlyList<string> strings:
                w.Write((ulong)strings.Count);
                foreach (var s in strings) WriteString(w, s);
                break;
            case IReadOnlyList<int> ints:
                w.Write((ulong)ints.Count);
                foreach (var i in ints) w.Write(i);
                break;
            case IReadOnlyList<float> floats:
                w.Write((ulong)floats.Count);
                foreach (var f in floats) w.Write(f);
                break;
            default:
                throw new ArgumentException($"unsupported GGUF array payload {value.Value.GetType().Name}");
        }
    }

    static void WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((byte)((bool)v ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            default: throw new ArgumentException($"unsupported GGUF scalar type {type}");
        }
    }

    static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    static long WriteZeros(Stream s, long n)
    {
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        for (long left = n; left > 0; left -= Math.Min(left, zeros.Length)) s.Write(zeros[..(int)Math.Min(left, zeros.Length)]);
        return n;
    }

    /// <summary>Passes writes through and counts them, so a tensor writer that writes the wrong size is caught here.</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }
    }
}
