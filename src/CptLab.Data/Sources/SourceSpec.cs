using System.Text.RegularExpressions;
using CptLab.Core;

namespace CptLab.Data.Sources;

/// <summary>How a `.txt` file is cut into documents.</summary>
public enum TxtDocuments
{
    /// <summary>Blank lines separate documents (paragraphs, articles).</summary>
    Paragraph,
    /// <summary>Every non-blank line is a document.</summary>
    Line,
    /// <summary>The whole file is one document.</summary>
    File,
}

/// <summary>
/// A named corpus: a tag (a language such as "en" or "zh", or a domain such as "code"), files by glob
/// (`.txt`, `.jsonl`, `.json` arrays, `.parquet`, each optionally `.gz` or `.zst`) and how to find the text.
/// </summary>
public sealed record SourceSpec
{
    public required string Name { get; init; }
    public required string Tag { get; init; }
    public required IReadOnlyList<string> Files { get; init; }

    /// <summary>Field holding the text in JSONL/JSON/Parquet records; an array of strings is joined by newlines.</summary>
    public string TextField { get; init; } = "text";

    public TxtDocuments TxtDocuments { get; init; } = TxtDocuments.Paragraph;

    /// <summary>Expected script for the language check ("zh" = Han, "en" = Latin, …); null: no check.</summary>
    public string? Language { get; init; }

    static readonly Regex _name = new("^[A-Za-z0-9][A-Za-z0-9_.-]*$");

    public void Validate()
    {
        if (!_name.IsMatch(Name)) throw new CptLabException($"source name '{Name}': use letters, digits, '_', '-', '.' (it names the shard files)");
        if (Files.Count == 0) throw new CptLabException($"source '{Name}': no file patterns given");
    }

    /// <summary>Parses the command-line form NAME=TAG:GLOB[,GLOB…] (the tag doubles as the language when it is a known one).</summary>
    public static SourceSpec Parse(string spec)
    {
        var eq = spec.IndexOf('=');
        var colon = eq < 0 ? -1 : spec.IndexOf(':', eq);
        if (eq <= 0 || colon < 0 || colon == spec.Length - 1)
            throw new CptLabException($"--source '{spec}': expected NAME=TAG:GLOB[,GLOB…], for example brown=en:corpora/brown/*.jsonl");
        var tag = spec[(eq + 1)..colon];
        var s = new SourceSpec
        {
            Name = spec[..eq],
            Tag = tag,
            Files = spec[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Language = ScriptCheck.Knows(tag) ? tag : null,
        };
        s.Validate();
        return s;
    }

    /// <summary>The files the globs match, sorted, each once; a pattern that matches nothing is an error.</summary>
    public IReadOnlyList<string> ResolveFiles(string? baseDir = null)
    {
        var result = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var pattern in Files)
        {
            var matches = Glob.Expand(pattern, baseDir);
            if (matches.Count == 0) throw new CptLabException($"source '{Name}': no file matches '{pattern}'");
            result.UnionWith(matches);
        }
        return [.. result];
    }
}

/// <summary>Minimal globbing: `*` and `?` within a path segment, `**` across segments.</summary>
public static class Glob
{
    public static IReadOnlyList<string> Expand(string pattern, string? baseDir = null)
    {
        var full = Path.IsPathRooted(pattern) ? pattern : Path.Combine(baseDir ?? Directory.GetCurrentDirectory(), pattern);
        full = full.Replace('\\', '/');
        var firstWild = full.IndexOfAny(['*', '?']);
        if (firstWild < 0) return File.Exists(full) ? [Path.GetFullPath(full)] : [];
        var root = full[..(full.LastIndexOf('/', firstWild) + 1)];
        if (!Directory.Exists(root)) return [];
        var rest = full[root.Length..];
        var regex = new Regex("^" + Regex.Escape(rest)
            .Replace(@"\*\*/", "(.*/)?").Replace(@"\*\*", ".*").Replace(@"\*", "[^/]*").Replace(@"\?", "[^/]") + "$");
        var option = rest.Contains('/') ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly;
        return Directory.EnumerateFiles(root, "*", option)
            .Where(f => regex.IsMatch(f.Replace('\\', '/')[root.Length..]))
            .Select(Path.GetFullPath)
            .Order(StringComparer.Ordinal)
            .ToList();
    }
}
