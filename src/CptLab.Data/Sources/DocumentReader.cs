using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using CptLab.Core;

namespace CptLab.Data.Sources;

/// <summary>
/// Streams the documents of one source file. Nothing is held whole: text files are read line by line from
/// the (possibly decompressing) stream, JSON arrays element by element, Parquet row group by row group.
/// Bad input never throws: it comes out as a <see cref="RawDocument"/> with an <see cref="RawDocument.Error"/>,
/// and reading goes on with the next record (or, for a broken compressed stream, the next file).
/// </summary>
public static class DocumentReader
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static IEnumerable<RawDocument> Read(string file, SourceSpec source)
    {
        var (format, compression) = Classify(file);
        return format switch
        {
            ".jsonl" => ReadJsonl(file, compression, source.TextField),
            ".json" => ReadJsonArray(file, compression, source.TextField),
            ".parquet" when compression is null => ReadParquet(file, source.TextField),
            ".parquet" => [RawDocument.Bad(file, 0, DropReason.UnreadableFile, "compressed Parquet is not supported: Parquet compresses its own pages, store it uncompressed")],
            _ => ReadTxt(file, compression, source.TxtDocuments),
        };
    }

    /// <summary>(".jsonl" | ".json" | ".parquet" | ".txt", ".gz" | ".zst" | null) from the file name.</summary>
    public static (string Format, string? Compression) Classify(string file)
    {
        var name = file.ToLowerInvariant();
        string? compression = null;
        if (name.EndsWith(".gz")) { compression = ".gz"; name = name[..^3]; }
        else if (name.EndsWith(".zst")) { compression = ".zst"; name = name[..^4]; }
        var ext = Path.GetExtension(name);
        return (ext is ".jsonl" or ".json" or ".parquet" ? ext : ".txt", compression);
    }

    internal static Stream Open(string file, string? compression)
    {
        Stream s = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return compression switch
        {
            ".gz" => new CheckedGzipStream(file, new GZipStream(s, CompressionMode.Decompress)),
            ".zst" => new ZstdSharp.DecompressionStream(s),
            _ => s,
        };
    }

    internal static bool IsStreamFailure(Exception e) =>
        e is InvalidDataException or EndOfStreamException or ZstdSharp.ZstdException or IOException;

    // ---- line-oriented formats ----------------------------------------------------------------------

    /// <summary>Lines as bytes with their 1-based numbers; a broken stream ends with one TruncatedStream record.</summary>
    internal static IEnumerable<(long Line, byte[]? Bytes, RawDocument? Failure)> Lines(string file, string? compression)
    {
        Stream? stream = null;
        string? openError = null;
        try { stream = Open(file, compression); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { openError = e.Message; }
        if (stream is null)
        {
            yield return (0, null, RawDocument.Bad(file, 0, DropReason.UnreadableFile, openError ?? "cannot open"));
            yield break;
        }
        using (stream)
        {
            var buffer = new byte[1 << 16];
            var line = new MemoryStream();
            long lineNo = 1;
            while (true)
            {
                int n;
                string? failure = null;
                try { n = stream.Read(buffer, 0, buffer.Length); }
                catch (Exception e) when (IsStreamFailure(e)) { n = 0; failure = e.Message; }
                if (failure is not null)
                {
                    yield return (lineNo, null, RawDocument.Bad(file, lineNo, DropReason.TruncatedStream, $"{compression ?? "file"} stream broke off: {failure}; the lines before it were read"));
                    yield break;
                }
                if (n == 0) break;
                var start = 0;
                for (var i = 0; i < n; i++)
                {
                    if (buffer[i] != (byte)'\n') continue;
                    line.Write(buffer, start, i - start);
                    yield return (lineNo++, TakeLine(line), null);
                    start = i + 1;
                }
                line.Write(buffer, start, n - start);
            }
            if (line.Length > 0) yield return (lineNo, TakeLine(line), null);
        }
    }

    static byte[] TakeLine(MemoryStream line)
    {
        var bytes = line.ToArray();
        line.SetLength(0);
        var len = bytes.Length;
        if (len > 0 && bytes[len - 1] == (byte)'\r') len--;
        var start = len >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        return start == 0 && len == bytes.Length ? bytes : bytes[start..len];
    }

    // JSON records come from RecordReader, which shares this file's line splitting and decompression.
    static IEnumerable<RawDocument> ReadJsonl(string file, string? compression, string field) =>
        RecordReader.Jsonl(file, compression).Select(r => FromRecord(r, field));

    static RawDocument FromRecord(JsonRecord r, string field) =>
        r.Error is { } e ? RawDocument.Bad(r.File, r.Line, e, r.Detail ?? "") : FromRecord(r.File, r.Line, r.Value, field);

    static RawDocument FromRecord(string file, long line, JsonElement record, string field)
    {
        if (record.ValueKind != JsonValueKind.Object)
            return RawDocument.Bad(file, line, DropReason.MalformedJson, $"expected a JSON object, found {record.ValueKind}");
        if (!record.TryGetProperty(field, out var value))
            return RawDocument.Bad(file, line, DropReason.MissingField, $"no \"{field}\" field (set text_field for this source)");
        return value.ValueKind switch
        {
            JsonValueKind.String => new RawDocument(file, line, value.GetString()),
            JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                new RawDocument(file, line, string.Join('\n', value.EnumerateArray().Select(e => e.GetString()))),
            _ => RawDocument.Bad(file, line, DropReason.MissingField, $"field \"{field}\" is {value.ValueKind}, not a string"),
        };
    }

    static IEnumerable<RawDocument> ReadTxt(string file, string? compression, TxtDocuments mode)
    {
        var paragraph = new StringBuilder();
        long paragraphStart = 0;
        string? badUtf8 = null;
        foreach (var (lineNo, bytes, failure) in Lines(file, compression))
        {
            if (failure is { } f)
            {
                if (paragraph.Length > 0 || badUtf8 is not null) yield return Flush(paragraphStart);
                yield return f;
                yield break;
            }
            var text = TryDecode(bytes!);
            if (text is null)
            {
                if (mode == TxtDocuments.Line) { yield return RawDocument.Bad(file, lineNo, DropReason.InvalidUtf8, "invalid UTF-8 bytes"); continue; }
                badUtf8 ??= $"invalid UTF-8 bytes on line {lineNo}";
                if (paragraph.Length == 0) paragraphStart = lineNo;
                paragraph.Append('\uFFFD'); // keeps the paragraph non-empty so it is reported
                continue;
            }
            var blank = string.IsNullOrWhiteSpace(text);
            switch (mode)
            {
                case TxtDocuments.Line:
                    if (!blank) yield return new RawDocument(file, lineNo, text);
                    break;
                case TxtDocuments.Paragraph when blank:
                    if (paragraph.Length > 0) yield return Flush(paragraphStart);
                    break;
                default:
                    if (paragraph.Length == 0) paragraphStart = lineNo;
                    else paragraph.Append('\n');
                    paragraph.Append(text);
                    break;
            }
        }
        if (paragraph.Length > 0) yield return Flush(paragraphStart);

        RawDocument Flush(long start)
        {
            var doc = badUtf8 is null ? new RawDocument(file, start, paragraph.ToString()) : RawDocument.Bad(file, start, DropReason.InvalidUtf8, badUtf8);
            paragraph.Clear();
            badUtf8 = null;
            return doc;
        }
    }

    static string? TryDecode(byte[] bytes)
    {
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { return null; }
    }

    // ---- JSON arrays and Parquet ------------------------------------------------------------------------

    static IEnumerable<RawDocument> ReadJsonArray(string file, string? compression, string field) =>
        RecordReader.JsonArray(file, compression).Select(r => FromRecord(r, field));

    /// <summary>
    /// What Parquet.Net throws for a damaged or foreign file (measured in ParquetReadTests: "not a parquet file"
    /// IOExceptions for a text file and for one cut in half, a ThriftProtocolException for overwritten data pages).
    /// Anything else is a bug and is not turned into a dropped file.
    /// </summary>
    internal static bool IsParquetFailure(Exception e) =>
        e is IOException or InvalidDataException or NotSupportedException or Parquet.ParquetException or Parquet.Meta.Proto.ThriftProtocolException;

    static IEnumerable<RawDocument> ReadParquet(string file, string field)
    {
        Parquet.ParquetReader reader;
        try { reader = Parquet.ParquetReader.CreateAsync(file).GetAwaiter().GetResult(); }
        catch (Exception e) when (IsParquetFailure(e))
        {
            return [RawDocument.Bad(file, 0, DropReason.UnreadableFile, $"not a readable Parquet file: {e.Message}")];
        }
        return Rows(reader);

        IEnumerable<RawDocument> Rows(Parquet.ParquetReader r)
        {
            try
            {
                var column = r.Schema.DataFields.FirstOrDefault(f => f.Name == field);
                long row = 1;
                for (var g = 0; g < r.RowGroupCount; g++)
                {
                    using var group = r.OpenRowGroupReader(g);
                    var count = (int)group.RowCount;
                    if (column is null || (column.ClrType != typeof(string) && column.ClrType != typeof(ReadOnlyMemory<char>)))
                    {
                        var why = column is null ? $"no \"{field}\" column (columns: {string.Join(", ", r.Schema.DataFields.Select(f => f.Name))})" : $"column \"{field}\" is {column.ClrType.Name}, not text";
                        for (var i = 0; i < count; i++) yield return RawDocument.Bad(file, row++, DropReason.MissingField, why);
                        continue;
                    }
                    var values = new string?[count];
                    string? failure = null;
                    try { group.ReadAsync(column, values.AsMemory()!, null, default).AsTask().GetAwaiter().GetResult(); }
                    catch (Exception e) when (IsParquetFailure(e)) { failure = e.Message; }
                    if (failure is not null)
                    {
                        for (var i = 0; i < count; i++) yield return RawDocument.Bad(file, row++, DropReason.UnreadableFile, $"row group {g}: {failure}");
                        continue;
                    }
                    foreach (var v in values)
                        yield return v is null ? RawDocument.Bad(file, row++, DropReason.MissingField, $"\"{field}\" is null") : new RawDocument(file, row++, v);
                }
            }
            finally
            {
                r.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
    }
}

/// <summary>
/// .NET's GZipStream returns a truncated file's data without complaint; this wrapper checks the gzip trailer
/// (CRC-32 and length of the decompressed data) at the end and throws when it does not match.
/// Multi-member gzip files (bgzip, pigz --independent) are checked as a whole against the last member's
/// trailer, so they read as corrupt: decompress and recompress them with plain gzip.
/// </summary>
sealed class CheckedGzipStream(string path, GZipStream inner) : Stream
{
    readonly Crc32 _crc = new();
    long _length;
    bool _verified;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        if (n > 0) { _crc.Append(buffer[..n]); _length += n; return n; }
        if (!_verified && buffer.Length > 0) Verify();
        return 0;
    }

    void Verify()
    {
        _verified = true;
        Span<byte> trailer = stackalloc byte[8];
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            if (f.Length < 18) throw new InvalidDataException("gzip file shorter than its header and trailer");
            f.Seek(-8, SeekOrigin.End);
            f.ReadExactly(trailer);
        }
        var crc = BitConverter.ToUInt32(trailer[..4]);
        var size = BitConverter.ToUInt32(trailer[4..]);
        if (crc != _crc.GetCurrentHashAsUInt32() || size != (uint)_length)
            throw new InvalidDataException($"gzip data ends after {_length} bytes without a matching CRC/size trailer: the file is truncated or corrupt");
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _length; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
