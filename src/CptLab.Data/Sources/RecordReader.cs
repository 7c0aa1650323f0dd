using System.Text.Json;

namespace CptLab.Data.Sources;

/// <summary>
/// One record of a JSONL / JSON-array / Parquet file as a JSON value, or why it could not be read.
/// <see cref="Line"/> is the 1-based line (jsonl), record (json) or row (parquet); 0 for the whole file.
/// <see cref="Excerpt"/> is the start of the raw text of a bad record, where there is one.
/// </summary>
public readonly record struct JsonRecord(string File, long Line, JsonElement Value, DropReason? Error = null, string? Detail = null, string? Excerpt = null)
{
    public static JsonRecord Bad(string file, long line, DropReason reason, string detail, string? excerpt = null) =>
        new(file, line, default, reason, detail, excerpt);

    internal static JsonRecord From(RawDocument failure) => Bad(failure.File, failure.Line, failure.Error!.Value, failure.Detail ?? "");
}

/// <summary>
/// Streams whole records (not one text field, as <see cref="DocumentReader"/> does) for readers of structured data
/// such as chat conversations. Same files, same decompression and the same contract: nothing is held whole, and bad
/// input comes out as a record with an error, never as an exception. Parquet rows become JSON objects (nested lists
/// and structs included), so one parser serves all three formats.
/// </summary>
public static class RecordReader
{
    const int ExcerptChars = 200;

    public static IEnumerable<JsonRecord> Read(string file)
    {
        var (format, compression) = DocumentReader.Classify(file);
        return format switch
        {
            ".jsonl" => Jsonl(file, compression),
            ".json" => JsonArray(file, compression),
            ".parquet" when compression is null => ParquetRows.Read(file),
            ".parquet" => [JsonRecord.Bad(file, 0, DropReason.UnreadableFile, "compressed Parquet is not supported: Parquet compresses its own pages, store it uncompressed")],
            _ => [JsonRecord.Bad(file, 0, DropReason.UnreadableFile, "not a record file: expected .jsonl, .json or .parquet (optionally .gz/.zst for the first two)")],
        };
    }

    /// <summary>Shortened text for rejects files and error messages.</summary>
    public static string Excerpt(string text) => text.Length <= ExcerptChars ? text : text[..ExcerptChars] + "…";

    internal static IEnumerable<JsonRecord> Jsonl(string file, string? compression)
    {
        foreach (var (lineNo, bytes, failure) in DocumentReader.Lines(file, compression))
        {
            if (failure is { } f) { yield return JsonRecord.From(f); continue; }
            if (bytes!.AsSpan().Trim(" \t"u8).Length == 0) continue; // blank line: no record
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) { yield return JsonRecord.Bad(file, lineNo, DropReason.InvalidUtf8, "invalid UTF-8 bytes"); continue; }
            yield return Parse(file, lineNo, bytes!);
        }
    }

    static JsonRecord Parse(string file, long line, byte[] bytes)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return new JsonRecord(file, line, doc.RootElement.Clone()); // Clone: the record outlives the pooled document
        }
        catch (JsonException e)
        {
            return JsonRecord.Bad(file, line, DropReason.MalformedJson, e.Message.Split(" LineNumber")[0], Excerpt(System.Text.Encoding.UTF8.GetString(bytes)));
        }
    }

    internal static IEnumerable<JsonRecord> JsonArray(string file, string? compression)
    {
        Stream stream;
        try { stream = DocumentReader.Open(file, compression); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [JsonRecord.Bad(file, 0, DropReason.UnreadableFile, e.Message)];
        }
        return Elements(stream);

        IEnumerable<JsonRecord> Elements(Stream s)
        {
            using var _ = s;
            using var e = JsonSerializer.DeserializeAsyncEnumerable<JsonElement>(s).ToBlockingEnumerable().GetEnumerator();
            for (long record = 1; ; record++)
            {
                JsonRecord? failure = null;
                bool more;
                try { more = e.MoveNext(); }
                catch (JsonException ex)
                {
                    more = false;
                    failure = JsonRecord.Bad(file, record, DropReason.MalformedJson, $"record {record}: {ex.Message.Split(" LineNumber")[0]}; the records before it were read");
                }
                catch (Exception ex) when (DocumentReader.IsStreamFailure(ex))
                {
                    more = false;
                    failure = JsonRecord.Bad(file, record, DropReason.TruncatedStream, $"stream broke off at record {record}: {ex.Message}");
                }
                if (failure is { } f) { yield return f; yield break; }
                if (!more) yield break;
                yield return new JsonRecord(file, record, e.Current);
            }
        }
    }
}
