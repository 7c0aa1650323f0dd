using System.Text.Json;
using CptLab.Core;

namespace CptLab.Data.Chat;

public sealed record PostTrainSetOptions
{
    public required string OutputDir { get; init; }
    /// <summary>GSM8K's train.jsonl; null leaves the GSM8K sets out.</summary>
    public string? Gsm8kFile { get; init; }
    /// <summary>A folder of zh_CN gettext catalogs; null leaves the translation sets out.</summary>
    public string? LocaleDir { get; init; }
    public int Seed { get; init; } = 1234;
    public double ValidationFraction { get; init; } = 0.02;
    public bool KeepCalculatorAnnotations { get; init; }
    /// <summary>Catalog strings longer than this (either side, characters) are dropped as too_long.</summary>
    public int MaxTranslationChars { get; init; } = 400;
}

public sealed record PostTrainProgress(string Stage, long Done, long Total);

public sealed record PostTrainSetCounts(string File, string ValidationFile, string Format, int Train, int Validation);

public sealed record PostTrainSource(string Name, string Path, string Licence, long Records, long Used, IReadOnlyDictionary<string, long> Dropped, IReadOnlyDictionary<string, object> Notes);

public sealed record PostTrainManifest(int Seed, double ValidationFraction, IReadOnlyDictionary<string, PostTrainSetCounts> Sets, IReadOnlyList<PostTrainSource> Sources);

/// <summary>
/// `cptlab data post-train-sets`: GSM8K and gettext catalogs → SFT sets in the messages layout and DPO sets in TRL's
/// explicit-prompt layout, each with a held-out <c>.val.jsonl</c> chosen by content hash, and a manifest.json with
/// the counts, the sources and every drop by reason. Deterministic for a seed; every file is written atomically.
/// </summary>
public static class PostTrainSets
{
    public const string ManifestFile = "manifest.json";

    public static PostTrainManifest Build(PostTrainSetOptions o, IProgress<PostTrainProgress>? progress = null)
    {
        if (o.Gsm8kFile is null && o.LocaleDir is null) throw new CptLabException("nothing to build: give --gsm8k FILE and/or --locale-dir DIR");
        if (o.ValidationFraction is < 0 or >= 1) throw new CptLabException($"--validation-fraction {o.ValidationFraction}: must be in [0, 1)");
        var sets = new SortedDictionary<string, PostTrainSetCounts>(StringComparer.Ordinal);
        var sources = new List<PostTrainSource>();

        if (o.Gsm8kFile is { } gsm)
        {
            if (!File.Exists(gsm)) throw new CptLabException($"--gsm8k {gsm}: file not found (GSM8K's train.jsonl, github openai/grade-school-math)");
            progress?.Report(new PostTrainProgress("gsm8k", 0, 1));
            // Each source has its own RNG, so adding or leaving out the other one does not change its sets.
            var g = Gsm8kItems.Read(gsm, o.KeepCalculatorAnnotations, new Random(o.Seed));
            Write(o, "gsm8k", g.Items, sets);
            sources.Add(new PostTrainSource("gsm8k", Path.GetFullPath(gsm), "MIT (GSM8K, Cobbe et al. 2021)", g.Records, g.Items.Count, g.Dropped, new SortedDictionary<string, object>
            {
                ["calculator_annotations"] = o.KeepCalculatorAnnotations ? "kept" : "stripped",
                ["rejected"] = "the same solution with the final answer N changed to N ± d (d in 1..10, ≥ 0 when N ≥ 0) on the #### line and at N's last occurrence in the text",
                ["rejected_final_line_only"] = g.FinalLineOnly,
            }));
            progress?.Report(new PostTrainProgress("gsm8k", 1, 1));
        }

        if (o.LocaleDir is { } locale)
        {
            var t = TranslationPairs.Collect(locale, o.MaxTranslationChars, new SyncProgress<(int Done, int Total)>(p => progress?.Report(new PostTrainProgress("translation", p.Done, p.Total))));
            var (items, noRejected) = TranslationItems.Build(t.Pairs, new Random(unchecked(o.Seed * 31 + 7)));
            var dropped = new SortedDictionary<string, long>(t.Dropped, StringComparer.Ordinal);
            if (noRejected > 0) dropped["no_distinct_rejected"] = noRejected;
            Write(o, "translation", items, sets);
            sources.Add(new PostTrainSource("translation", Path.GetFullPath(locale),
                "each catalog carries the licence of the package it comes from (see /usr/share/doc/PACKAGE/copyright)",
                t.Catalogs.Sum(c => c.Entries), items.Count, dropped, new SortedDictionary<string, object>
                {
                    ["catalogs"] = t.Catalogs,
                    ["directions"] = "English → Chinese or Chinese → English per pair, by seeded coin toss",
                    ["rejected"] = "the translation of another pair (seeded draw), in the same target language, different from the true one",
                }));
        }

        var manifest = new PostTrainManifest(o.Seed, o.ValidationFraction, sets, sources);
        AtomicFile.WriteAllText(Path.Combine(o.OutputDir, ManifestFile), JsonSerializer.Serialize(manifest, Json.SnakeCase) + "\n");
        return manifest;
    }

    static void Write(PostTrainSetOptions o, string name, List<PostTrainItem> items, SortedDictionary<string, PostTrainSetCounts> sets)
    {
        var validation = items.Select(i => i.IsValidation(o.ValidationFraction)).ToArray();
        foreach (var (kind, format, line) in new (string, string, Func<PostTrainItem, string>)[] { ("sft", "messages", i => i.SftLine()), ("dpo", "messages (TRL preference, explicit prompt)", i => i.DpoLine()) })
        {
            var set = $"{name}_{kind}";
            WriteLines(Path.Combine(o.OutputDir, $"{set}.jsonl"), items.Where((_, k) => !validation[k]).Select(line));
            WriteLines(Path.Combine(o.OutputDir, $"{set}.val.jsonl"), items.Where((_, k) => validation[k]).Select(line));
            var val = validation.Count(v => v);
            sets[set] = new PostTrainSetCounts($"{set}.jsonl", $"{set}.val.jsonl", format, items.Count - val, val);
        }
    }

    static void WriteLines(string path, IEnumerable<string> lines) =>
        AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
            foreach (var l in lines) w.WriteLine(l);
        });
}
