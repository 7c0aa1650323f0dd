using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Cleaning;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Prepare;

/// <summary>One input file of a prepare run: which source, where, and the identity its part was made from.</summary>
public sealed record PrepareFile
{
    public required string Source { get; init; }
    public required string Path { get; init; }
    public required long Size { get; init; }
    /// <summary>Last write time, UTC ticks.</summary>
    public required long ModifiedTicks { get; init; }
    /// <summary>Name of its part in `.prepare-parts/` (a hash of source and path).</summary>
    public required string Part { get; init; }

    public static PrepareFile Of(string source, string path)
    {
        var info = new FileInfo(path);
        var key = XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(source + "\0" + path));
        return new PrepareFile { Source = source, Path = path, Size = info.Length, ModifiedTicks = info.LastWriteTimeUtc.Ticks, Part = $"{source}-{key:x16}" };
    }
}

/// <summary>
/// `prepare.state.json`: what an unfinished `data prepare` in this folder was doing, so that the same command
/// resumes it. It holds the fingerprint of everything that shapes a part (options, tokenizer file, part format)
/// and each input file's size and modification time; a part in `.prepare-parts/` is reused only when both still
/// match. Written once per run, before any part; a part's own completion is marked by its `.meta` file appearing
/// (renamed into place last), so completing a file costs no rewrite of this file. Removed with the parts when the
/// run finishes.
/// </summary>
public sealed record PrepareState
{
    public const string FileName = "prepare.state.json";
    public int Format { get; init; } = FilePart.Format;
    public required string Fingerprint { get; init; }
    /// <summary>What the fingerprint was computed from, for a person comparing two runs.</summary>
    public required JsonElement Inputs { get; init; }
    public required List<PrepareFile> Files { get; init; }

    public static string PathIn(string outDir) => System.IO.Path.Combine(outDir, FileName);

    /// <summary>The options, tokenizer and part format as one JSON object: equal objects make equal parts.</summary>
    public static JsonElement InputsOf(PrepareOptions o, ITextTokenizer tokenizer) => JsonSerializer.SerializeToElement(new
    {
        part_format = FilePart.Format,
        sources = o.Sources.Select(s => new { s.Name, s.Tag, s.TextField, TxtDocuments = s.TxtDocuments.ToString(), s.Language }),
        o.ValidationFraction,
        o.Strict,
        AddBos = o.AddBos && tokenizer.BosId is not null,
        cleaning = o.Cleaning,
        tokenizer = new { tokenizer.VocabSize, tokenizer.BosId, tokenizer.EosId, file_xxhash64 = HashFile(o.TokenizerPath) },
    }, Json.SnakeCase);

    public static string FingerprintOf(JsonElement inputs) =>
        XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(inputs.GetRawText())).ToString("x16");

    static string HashFile(string path)
    {
        if (!File.Exists(path)) return "none";
        var h = new XxHash64();
        using var s = File.OpenRead(path);
        h.Append(s);
        return h.GetCurrentHashAsUInt64().ToString("x16");
    }

    /// <summary>The state of an earlier run in <paramref name="outDir"/>, or null when there is none or it cannot be read.</summary>
    public static PrepareState? TryLoad(string outDir)
    {
        var path = PathIn(outDir);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<PrepareState>(File.ReadAllText(path), Json.SnakeCase); }
        catch (JsonException) { return null; }
    }

    public void Save(string outDir) => AtomicFile.WriteAllText(PathIn(outDir), JsonSerializer.Serialize(this, Json.SnakeCase));

    /// <summary>
    /// Decides which parts of an earlier run can be kept: all of those whose file is unchanged when the
    /// fingerprint matches, none otherwise. Deletes the others (and leftovers of files no longer in the input),
    /// saves the new state, and returns the part names that are already done, with notes for the user.
    /// </summary>
    public static (HashSet<string> Done, List<string> Notes) Begin(string outDir, PrepareState next)
    {
        var notes = new List<string>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        var partsDir = System.IO.Path.Combine(outDir, FilePart.Dir);
        var old = TryLoad(outDir);
        if (old is null && File.Exists(PathIn(outDir)))
            notes.Add($"{PathIn(outDir)} cannot be read; starting over");
        else if (old is not null && (old.Format != next.Format || old.Fingerprint != next.Fingerprint))
            notes.Add($"the options or the tokenizer differ from those of the unfinished run in {outDir} (fingerprint {old.Fingerprint} → {next.Fingerprint}); starting over");
        else if (old is not null)
        {
            var before = old.Files.ToDictionary(f => f.Part, StringComparer.Ordinal);
            foreach (var f in next.Files)
            {
                if (!before.TryGetValue(f.Part, out var was) || !FilePart.Exists(outDir, f.Part)) continue;
                if (was.Size == f.Size && was.ModifiedTicks == f.ModifiedTicks) done.Add(f.Part);
                else notes.Add($"{f.Path} changed since the unfinished run (size or modification time); preparing it again");
            }
            if (done.Count > 0) notes.Add($"resuming: {done.Count} of {next.Files.Count} files already prepared");
        }
        if (Directory.Exists(partsDir))
            foreach (var file in Directory.EnumerateFiles(partsDir).ToList())
                if (!done.Contains(System.IO.Path.GetFileNameWithoutExtension(file))) File.Delete(file); // KEY.meta.tmp reads as "KEY.meta": deleted too
        Directory.CreateDirectory(partsDir);
        next.Save(outDir);
        return (done, notes);
    }

    /// <summary>After the shards and manifest are written: the parts and this state are no longer needed.</summary>
    public static void Finish(string outDir)
    {
        var partsDir = System.IO.Path.Combine(outDir, FilePart.Dir);
        if (Directory.Exists(partsDir)) Directory.Delete(partsDir, recursive: true);
        File.Delete(PathIn(outDir));
    }
}
