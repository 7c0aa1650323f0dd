using System.Collections;
using System.Text.Json;

namespace CptLab.Data.Sources;

/// <summary>
/// Parquet rows as JSON objects, one row group in memory at a time. Hub exports of chat data store
/// <c>messages</c> as a list of structs; Parquet.Net's untyped reader gives those as dictionaries and lists,
/// which are written out as JSON so the chat readers see the same shape as in a JSONL file.
/// </summary>
static class ParquetRows
{
    public static IEnumerable<JsonRecord> Read(string file)
    {
        int groups;
        try
        {
            var reader = Parquet.ParquetReader.CreateAsync(file).GetAwaiter().GetResult();
            groups = reader.RowGroupCount;
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (DocumentReader.IsParquetFailure(e) || e is UnauthorizedAccessException)
        {
            return [JsonRecord.Bad(file, 0, DropReason.UnreadableFile, $"not a readable Parquet file: {e.Message}")];
        }
        return Rows(file, groups);
    }

    static IEnumerable<JsonRecord> Rows(string file, int groups)
    {
        long row = 1;
        for (var g = 0; g < groups; g++)
        {
            IList<Dictionary<string, object>>? data = null;
            string? failure = null;
            try
            {
                using var stream = File.OpenRead(file);
                data = Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult().Data;
            }
            catch (Exception e) when (DocumentReader.IsParquetFailure(e)) { failure = e.Message; }
            if (failure is not null)
            {
                yield return JsonRecord.Bad(file, row, DropReason.UnreadableFile, $"row group {g} (rows from {row}): {failure}");
                yield break; // the row count of a broken group is unknown; later groups would be misnumbered
            }
            foreach (var values in data!)
                yield return new JsonRecord(file, row++, ToJson(values));
        }
    }

    static JsonElement ToJson(object value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) Write(w, value);
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    static void Write(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case IDictionary d:
                w.WriteStartObject();
                foreach (DictionaryEntry kv in d) { w.WritePropertyName(kv.Key.ToString()!); Write(w, kv.Value); }
                w.WriteEndObject();
                break;
            case byte[] bytes: w.WriteBase64StringValue(bytes); break;
            case IEnumerable list:
                w.WriteStartArray();
                foreach (var item in list) Write(w, item);
                w.WriteEndArray();
                break;
            case DateTime or DateTimeOffset or TimeSpan or Guid: w.WriteStringValue(value.ToString()); break;
            default: w.WriteRawValue(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!); break; // numbers
        }
    }
}
