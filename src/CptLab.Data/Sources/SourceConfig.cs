using System.Text.Json;
using System.Text.Json.Serialization;
using CptLab.Core;
using CptLab.Data.Cleaning;

namespace CptLab.Data.Sources;

/// <summary>
/// A sources file, for corpora too many for --source flags:
/// <code>{ "sources": [ { "name": "poetry", "tag": "zh", "files": ["…/*.json"], "text_field": "paragraphs", "language": "zh" } ] }</code>
/// Relative globs are relative to the file's folder.
/// </summary>
public static class SourceConfig
{
    static readonly JsonSerializerOptions Options = new(Json.SnakeCase) { Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) } };

    sealed record FileShape(List<SourceSpec>? Sources);

    public static IReadOnlyList<SourceSpec> Load(string path)
    {
        using var doc = Json.ParseFile(path);
        FileShape? shape;
        try { shape = doc.Deserialize<FileShape>(Options); }
        catch (JsonException e) { throw new ConfigException(path, e.Path ?? "sources", e.Message.Split(" Path:")[0]); }
        if (shape?.Sources is not { Count: > 0 } sources) throw new ConfigException(path, "sources", "missing or empty: list the corpora to prepare");
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return sources.Select(s =>
        {
            s.Validate();
            return s with { Files = s.Files.Select(f => Path.IsPathRooted(f) ? f : Path.Combine(baseDir, f)).ToList() };
        }).ToList();
    }

    /// <summary>
    /// Up to <paramref name="bytesPerSource"/> UTF-16 bytes of normalized text from each source, interleaved
    /// (one document from each in turn), for training a tokenizer. Unreadable records are skipped.
    /// </summary>
    public static IEnumerable<string> Sample(IReadOnlyList<SourceSpec> sources, long bytesPerSource, string? baseDir = null)
    {
        TextCleaner.EnsureNormalizationWorks();
        var readers = sources.Select(s => s.ResolveFiles(baseDir).SelectMany(f => DocumentReader.Read(f, s)).GetEnumerator()).ToList();
        var taken = new long[readers.Count];
        var firstProblem = new string?[readers.Count];
        try
        {
            var any = true;
            while (any)
            {
                any = false;
                for (var i = 0; i < readers.Count; i++)
                {
                    if (taken[i] >= bytesPerSource) continue;
                    while (readers[i].MoveNext())
                    {
                        var doc = readers[i].Current;
                        if (doc.Text is not { } raw) { firstProblem[i] ??= $"{doc.File}:{doc.Line}: {doc.Error?.Key()}: {doc.Detail}"; continue; }
                        var text = TextCleaner.Normalize(raw);
                        if (text.Length == 0) continue;
                        taken[i] += 2L * text.Length;
                        any = true;
                        yield return text;
                        break;
                    }
                }
            }
        }
        finally
        {
            foreach (var r in readers) r.Dispose();
        }
        for (var i = 0; i < sources.Count; i++)
            if (taken[i] == 0)
                throw new CptLabException($"source '{sources[i].Name}' gave no text to sample" + (firstProblem[i] is { } p ? $"; first problem: {p}" : ""));
    }
}
