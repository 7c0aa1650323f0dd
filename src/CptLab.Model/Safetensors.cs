using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads a .safetensors file: an 8-byte little-endian header length N, N bytes of JSON
/// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}), then the tensor bytes.
/// The header is checked in full when the file is opened (dtype known, sizes agree with shapes, offsets inside
/// the file and not overlapping), so that a truncated or malformed file is refused before anything is read.
/// Tensors are then read one at a time straight into their destination.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    const long MaxHeaderBytes = 100L << 20;
    readonly FileStream _stream;
    readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public SafetensorsReader(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new CptLabException($"{path}: file not found");
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            (Entries, Metadata, _dataStart) = ReadHeader();
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>, long) ReadHeader()
    {
        long fileLength = _stream.Length;
        if (fileLength < 8) throw new CorruptFileException(Path, $"not a safetensors file: {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        _stream.ReadExactly(lenBytes);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes)
            throw new CorruptFileException(Path, $"malformed safetensors header: header length {headerLength} is not in (0, {MaxHeaderBytes}]");
        if (8 + headerLength > fileLength)
            throw new CorruptFileException(Path, $"truncated: header says {headerLength} bytes of JSON but the file has {fileLength - 8} after the length");
        var headerBytes = new byte[headerLength];
        _stream.ReadExactly(headerBytes);

        JsonNode? root;
        try { root = JsonNode.Parse(headerBytes); }
        catch (JsonException e) { throw new CorruptFileException(Path, $"malformed safetensors header: invalid JSON ({e.Message})"); }
        if (root is not JsonObject obj) throw new CorruptFileException(Path, "malformed safetensors header: not a JSON object");

        long dataStart = 8 + headerLength, dataLength = fileLength - dataStart;
        var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in obj)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject m)
                    foreach (var (k, v) in m) metadata[k] = v?.ToString() ?? "";
                continue;
            }
            entries[name] = ParseEntry(name, node, dataLength);
        }

        // Offsets may not overlap (the format also forbids gaps; a gap is harmless, so it is not refused).
        SafetensorsEntry? previous = null;
        foreach (var e in entries.Values.OrderBy(e => e.Begin))
        {
            if (previous is not null && e.Begin < previous.End && e.End > e.Begin)
                throw new CorruptFileException(Path, $"malformed safetensors header: tensor '{e.Name}' overlaps '{previous.Name}'");
            previous = e;
        }
        return (entries, metadata, dataStart);
    }

    SafetensorsEntry ParseEntry(string name, JsonNode? node, long dataLength)
    {
        string Bad(string why) => $"malformed safetensors header: tensor '{name}': {why}";
        if (node is not JsonObject o) throw new CorruptFileException(Path, Bad("entry is not an object"));
        var dtype = (o["dtype"] as JsonValue)?.TryGetValue<string>(out var d) == true ? d : throw new CorruptFileException(Path, Bad("no dtype"));
        if (ElementSize(dtype) is not { } size) throw new CorruptFileException(Path, Bad($"unknown dtype '{dtype}'"));
        if (o["shape"] is not JsonArray shapeArray) throw new CorruptFileException(Path, Bad("no shape"));
        var shape = new long[shapeArray.Count];
        for (int i = 0; i < shape.Length; i++)
        {
            if (shapeArray[i] is not JsonValue v || !v.TryGetValue<long>(out shape[i]) || shape[i] < 0)
                throw new CorruptFileException(Path, Bad($"shape {shapeArray.ToJsonString()} is not a list of non-negative integers"));
        }
        if (o["data_offsets"] is not JsonArray offsets || offsets.Count != 2
            || offsets[0] is not JsonValue b0 || !b0.TryGetValue<long>(out var begin)
            || offsets[1] is not JsonValue e0 || !e0.TryGetValue<long>(out var end) || begin < 0 || end < begin)
            throw new CorruptFileException(Path, Bad("data_offsets is not [begin, end] with 0 ≤ begin ≤ end"));
        var entry = new SafetensorsEntry(name, dtype, shape, begin, end);
        if (entry.ElementCount * size != end - begin)
            throw new CorruptFileException(Path, Bad($"{end - begin} bytes for shape [{string.Join(", ", shape)}] of {dtype}, expected {entry.ElementCount * size}"));
        if (end > dataLength)
            throw new CorruptFileException(Path, $"truncated: tensor '{name}' ends at byte {end} of the data but the file holds only {dataLength} bytes of data");
        return entry;
    }

    /// <summary>
    /// Reads a tensor into <paramref name="destination"/> (same shape; any float dtype, converted as needed).
    /// When the dtypes match, the bytes go straight into the destination's storage: no second copy.
    /// </summary>
    public void ReadInto(string name, Tensor destination)
    {
        var e = Entries.TryGetValue(name, out var entry) ? entry : throw new CorruptFileException(Path, $"no tensor '{name}'");
        if (!destination.shape.SequenceEqual(e.Shape))
            throw new CorruptFileException(Path, $"tensor '{name}' has shape [{string.Join(", ", e.Shape)}], the model expects [{string.Join(", ", destination.shape)}]");
        var fileType = ScalarTypeOf(e.Dtype)
            ?? throw new CorruptFileException(Path, $"tensor '{name}' has dtype {e.Dtype}; model weights must be F32, BF16 or F16");
        using var _ = no_grad();
        if (fileType == destination.dtype && destination.is_contiguous() && destination.device_type == TorchSharp.DeviceType.CPU)
        {
            ReadBytes(e, destination);
            return;
        }
        using var staging = empty(e.Shape, fileType);
        ReadBytes(e, staging);
        destination.copy_(staging);
    }

    /// <summary>Reads the entry's bytes into a contiguous CPU tensor, in pieces (a Span cannot cover a tensor over 2 GiB).</summary>
    void ReadBytes(SafetensorsEntry e, Tensor target)
    {
        _stream.Seek(_dataStart + e.Begin, SeekOrigin.Begin);
        long done = 0;
        foreach (var piece in TensorBytes.Pieces(target))
            using (piece)
            {
                var span = piece.bytes;
                int read = _stream.ReadAtLeast(span, span.Length, throwOnEndOfStream: false);
                done += read;
                if (read != span.Length)
                    throw new CorruptFileException(Path, $"truncated: tensor '{e.Name}' needs {e.End - e.Begin} bytes, only {done} could be read");
            }
    }

    public static int? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => null,
    };

    /// <summary>The torch type of a checkpoint weight dtype; null for dtypes that are not model weights.</summary>
    public static ScalarType? ScalarTypeOf(string dtype) => dtype switch
    {
        "F32" => ScalarType.Float32,
        "BF16" => ScalarType.BFloat16,
        "F16" => ScalarType.Float16,
        _ => null,
    };

    public static string DtypeOf(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Float16 => "F16",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a checkpoint dtype"),
    };

    public void Dispose() => _stream.Dispose();
}

/// <summary>Writes a .safetensors file atomically, tensor by tensor (at most one tensor converted at a time).</summary>
public static class SafetensorsWriter
{
    /// <param name="tensors">Names and tensors, written in the given order.</param>
    /// <param name="dtype">The stored dtype; each tensor is converted on its way out.</param>
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors, ScalarType dtype, IReadOnlyDictionary<string, string>? metadata = null)
    {
        int size = SafetensorsReader.ElementSize(SafetensorsReader.DtypeOf(dtype))!.Value;
        var header = new JsonObject();
        var meta = new JsonObject { ["format"] = "pt" };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        header["__metadata__"] = meta;
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            long bytes = t.numel() * size;
            header[name] = new JsonObject
            {
                ["dtype"] = SafetensorsReader.DtypeOf(dtype),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // Pad the header with spaces so that the data starts 8-byte aligned, as the reference writer does.
        int padded = (json.Length + 7) / 8 * 8;
        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            stream.Write(len);
            stream.Write(json);
            for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var (_, t) in tensors)
            {
                using var scope = NewDisposeScope();
                var c = t.detach().to(dtype).cpu().contiguous();
                foreach (var piece in TensorBytes.Pieces(c))
                    using (piece) stream.Write(piece.bytes);
            }
        });
    }
}

/// <summary>
/// The storage of a contiguous CPU tensor as flat views of at most <see cref="MaxPieceBytes"/> each, whose <c>bytes</c>
/// spans cover it in order: TorchSharp's <c>bytes</c> is a Span, limited to 2 GiB, and Llama-3-70B's embedding in float32
/// (128,256 × 8,192 × 4 bytes = 4.2 GB) or 405B's in bf16 are larger.
/// </summary>
public static class TensorBytes
{
    public const long MaxPieceBytes = 1L << 30;

    public static IEnumerable<Tensor> Pieces(Tensor contiguous)
    {
        if (!contiguous.is_contiguous()) throw new ArgumentException("the tensor must be contiguous", nameof(contiguous));
        long n = contiguous.numel();
        long perPiece = Math.Max(1, MaxPieceBytes / contiguous.ElementSize);
        using var flat = contiguous.view(-1);
        for (long start = 0; start < n; start += perPiece)
            yield return flat.narrow(0, start, Math.Min(perPiece, n - start));
    }
}
