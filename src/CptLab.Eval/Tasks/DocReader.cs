using System.IO.Compression;
using System.Text;
using System.Text.Json;
using CptLab.Core;

namespace CptLab.Eval.Tasks;

/// <summary>One record of a benchmark file: its fields (strings, numbers, lists) and where it came from.</summary>
public sealed record EvalDoc(IReadOnlyDictionary<string, object?> Fields, string File, long Line)
{
    public object? this[string key] => Fields.TryGetValue(key, out var v) ? v : null;
}

/// <summary>A record or a whole file left out, with where and why; counted in results.json.</summary>
public sealed record SkippedDoc(string File, long Line, string Reason)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}: {Reason}" : $"{File}: {Reason}";
}

/// <summary>
/// Reads benchmark files as they are published: CSV (RFC 4180, quoted fields may span lines; CMMLU's unnamed index
/// column is kept as ""), JSON Lines, a JSON array (or an object of records keyed by id), or Parquet (the Hub's exports; list columns become lists), each
/// optionally gzip-compressed. A record that cannot be read is skipped with file, line and reason; a file that cannot
/// be read at all is one skip with line 0.
/// </summary>
public static class DocReader
{
    public static (List<EvalDoc> Docs, List<SkippedDoc> Skipped) Read(string file, string? format = null)
    {
        var docs = new List<EvalDoc>();
        var skipped = new List<SkippedDoc>();
        var name = file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? file[..^3] : file;
        var kind = format ?? Path.GetExtension(name).TrimStart('.').ToLowerInvariant();
        try
        {
            switch (kind)
            {
                case "csv": ReadCsv(file, OpenText(file), docs, skipped); break;
                case "jsonl": ReadJsonl(file, OpenText(file), docs, skipped); break;
                case "json": ReadJsonArray(file, OpenText(file), docs, skipped); break;
                case "parquet": ReadParquet(file, docs); break;
                default: skipped.Add(new SkippedDoc(file, 0, $"unknown format '{kind}': give csv, jsonl, json or parquet (optionally .gz)")); break;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or DecoderFallbackException or JsonException or Parquet.ParquetException or NotSupportedException)
        {
            docs.Clear();
            skipped.Add(new SkippedDoc(file, 0, $"unreadable file: {e.Message}"));
        }
        return (docs, skipped);
    }

    static TextReader OpenText(string file)
    {
        Stream s = File.OpenRead(file);
        if (file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) s = new GZipStream(s, CompressionMode.Decompress);
        return new StreamReader(s, new UTF8Encoding(false, throwOnInvalidBytes: true));
    }

    // ---- CSV ----------------------------------------------------------------------------------------------

    static void ReadCsv(string file, TextReader text, List<EvalDoc> docs, List<SkippedDoc> skipped)
    {
        using var reader = text;
        long line = 1;
        var header = ReadRecord(reader, ref line, out _);
        if (header is null) { skipped.Add(new SkippedDoc(file, 0, "empty CSV file (no header)")); return; }
        if (header.Count > 0 && header[0].StartsWith('\uFEFF')) header[0] = header[0][1..];
        while (true)
        {
            long start = line;
            var rec = ReadRecord(reader, ref line, out var malformed);
            if (rec is null) break;
            if (rec.Count == 1 && rec[0].Length == 0) continue; // blank line
            if (malformed is not null) { skipped.Add(new SkippedDoc(file, start, malformed)); continue; }
            if (rec.Count != header.Count)
            {
                skipped.Add(new SkippedDoc(file, start, $"{rec.Count} fields where the header has {header.Count}"));
                continue;
            }
            var fields = new Dictionary<string, object?>(header.Count);
            for (int i = 0; i < header.Count; i++) fields[header[i]] = rec[i];
            docs.Add(new EvalDoc(fields, file, start));
        }
    }

    /// <summary>One record; null at the end of the input. Counts newlines (inside quotes too) in <paramref name="line"/>.</summary>
    static List<string>? ReadRecord(TextReader r, ref long line, out string? malformed)
    {
        malformed = null;
        if (r.Peek() < 0) return null;
        var fields = new List<string>();
        var sb = new StringBuilder();
        bool quoted = false, wasQuoted = false;
        while (true)
        {
            int c = r.Read();
            if (c < 0)
            {
                if (quoted) malformed = "unterminated quoted field at the end of the file";
                fields.Add(sb.ToString());
                return fields;
            }
            if (quoted)
            {
                if (c == '"')
                {
                    if (r.Peek() == '"') { r.Read(); sb.Append('"'); }
                    else quoted = false;
                }
                else
                {
                    if (c == '\n') line++;
                    sb.Append((char)c);
                }
                continue;
            }
            switch (c)
            {
                case '"' when sb.Length == 0 && !wasQuoted: quoted = wasQuoted = true; break;
                case ',': fields.Add(sb.ToString()); sb.Clear(); wasQuoted = false; break;
                case '\r' when r.Peek() == '\n': break;
                case '\n':
                    line++;
                    fields.Add(sb.ToString());
                    return fields;
                default: sb.Append((char)c); break;
            }
        }
    }

    // ---- JSON ---------------------------------------------------------------------------------------------

    static void ReadJsonl(string file, TextReader text, List<EvalDoc> docs, List<SkippedDoc> skipped)
    {
        using var reader = text;
        long n = 0;
        while (reader.ReadLine() is { } l)
        {
            n++;
            if (string.IsNullOrWhiteSpace(l)) continue;
            try
            {
                using var d = JsonDocument.Parse(l);
                if (d.RootElement.ValueKind != JsonValueKind.Object) { skipped.Add(new SkippedDoc(file, n, "not a JSON object")); continue; }
                docs.Add(new EvalDoc(ToFields(d.RootElement), file, n));
            }
            catch (JsonException e) { skipped.Add(new SkippedDoc(file, n, $"malformed JSON: {e.Message.Split(" LineNumber")[0]}")); }
        }
    }

    static void ReadJsonArray(string file, TextReader text, List<EvalDoc> docs, List<SkippedDoc> skipped)
    {
        using var reader = text;
        using var d = JsonDocument.Parse(reader.ReadToEnd());
        long i = 0;
        if (d.RootElement.ValueKind == JsonValueKind.Object)
        {
            // An object of records keyed by id (EQ-Bench's eq_bench_v2_questions_171.json): the key becomes field "key".
            foreach (var p in d.RootElement.EnumerateObject())
            {
                i++;
                if (p.Value.ValueKind != JsonValueKind.Object) { skipped.Add(new SkippedDoc(file, i, $"value of key '{p.Name}' is not an object (line = element number)")); continue; }
                var fields = ToFields(p.Value);
                fields.TryAdd("key", p.Name);
                docs.Add(new EvalDoc(fields, file, i));
            }
            return;
        }
        if (d.RootElement.ValueKind != JsonValueKind.Array) { skipped.Add(new SkippedDoc(file, 0, "expected a JSON array of objects, or an object of objects keyed by id")); return; }
        foreach (var e in d.RootElement.EnumerateArray())
        {
            i++;
            if (e.ValueKind == JsonValueKind.Object) docs.Add(new EvalDoc(ToFields(e), file, i));
            else skipped.Add(new SkippedDoc(file, i, "array element is not an object (line = element number)"));
        }
    }

    static Dictionary<string, object?> ToFields(JsonElement o) => o.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value));

    static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => ToFields(e),
        _ => null,
    };

    // ---- Parquet ------------------------------------------------------------------------------------------

    static void ReadParquet(string file, List<EvalDoc> docs)
    {
        using Stream s = file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? Decompressed(file) : File.OpenRead(file);
        var result = Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(s).GetAwaiter().GetResult();
        long row = 0;
        foreach (var r in result.Data)
            docs.Add(new EvalDoc(r.ToDictionary(kv => kv.Key, kv => Normalise(kv.Value)), file, ++row));
    }

    static MemoryStream Decompressed(string file)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(File.OpenRead(file), CompressionMode.Decompress)) gz.CopyTo(ms);
        ms.Position = 0;
        return ms;
    }

    /// <summary>Parquet values as the JSON reader gives them: whole numbers as long, lists as List&lt;object?&gt;.</summary>
    static object? Normalise(object? v) => v switch
    {
        null or string or bool or long or double => v,
        int or short or byte or sbyte or uint or ushort => Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture),
        float f => (double)f,
        System.Collections.IDictionary d => d.Keys.Cast<object>().ToDictionary(k => k.ToString()!, k => Normalise(d[k])),
        System.Collections.IEnumerable e => e.Cast<object?>().Select(Normalise).ToList(),
        _ => v.ToString(),
    };
}
