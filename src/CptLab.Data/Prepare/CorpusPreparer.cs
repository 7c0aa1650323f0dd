using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Cleaning;
using CptLab.Data.Shards;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Prepare;

public sealed record PrepareOptions
{
    public required IReadOnlyList<SourceSpec> Sources { get; init; }
    public required string OutputDir { get; init; }
    /// <summary>Path recorded in the manifest for the tokenizer used.</summary>
    public required string TokenizerPath { get; init; }
    public double ValidationFraction { get; init; } = 0.01;
    public CleaningOptions Cleaning { get; init; } = new();
    /// <summary>Stop with an error at the first unreadable record instead of counting and skipping it.</summary>
    public bool Strict { get; init; }
    /// <summary>Prepend BOS to every document (Llama-3 base models see one at the start of each document).</summary>
    public bool AddBos { get; init; } = true;
    public int BatchSize { get; init; } = 512;
    public string? BaseDir { get; init; }
}

public sealed record PrepareProgress(string Source, int FileIndex, int FileCount, long DocumentsRead, long TokensWritten);

/// <summary>
/// Sources → cleaned, deduplicated, tokenized Megatron shards plus a manifest that accounts for every document.
/// Per batch of documents: cleaning and hashing run on all cores, the order-dependent decisions (exact and
/// near duplicates, first one wins) run in input order, tokenization runs on all cores again, and the writes
/// go in input order; so the output is the same for any number of cores.
/// </summary>
public static class CorpusPreparer
{
    static readonly JsonSerializerOptions OneLine = new(Json.SnakeCase) { WriteIndented = false };

    public static PrepareManifest Run(PrepareOptions options, ITextTokenizer tokenizer, IProgress<PrepareProgress>? progress = null, CancellationToken ct = default)
    {
        if (options.Sources.Count == 0) throw new CptLabException("no sources given: add --source NAME=TAG:GLOB or a sources list in the config");
        if (options.ValidationFraction is < 0 or > 0.5) throw new ConfigException("prepare", "validation_fraction", $"{options.ValidationFraction} is not in [0, 0.5]");
        options.Cleaning.Validate();
        var dupNames = options.Sources.GroupBy(s => s.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (dupNames.Count > 0) throw new CptLabException($"source name '{dupNames[0]}' is used twice; source names name the shard files");
        foreach (var s in options.Sources) s.Validate();
        var files = options.Sources.ToDictionary(s => s.Name, s => s.ResolveFiles(options.BaseDir)); // fail on a missing file before any work

        Directory.CreateDirectory(options.OutputDir);
        var cleaner = new TextCleaner(options.Cleaning);
        var exactSeen = new HashSet<ulong>();
        var nearIndex = new NearDuplicateIndex(options.Cleaning.NumPermutations, options.Cleaning.JaccardThreshold);
        var rejectsPath = Path.Combine(options.OutputDir, "rejects.jsonl");
        var rejectsTmp = rejectsPath + ".tmp";
        var accounts = new List<SourceAccount>();

        using (var rejects = new StreamWriter(rejectsTmp, false, new System.Text.UTF8Encoding(false)))
        {
            foreach (var source in options.Sources)
            {
                var account = new SourceAccount
                {
                    Name = source.Name, Tag = source.Tag, Language = source.Language,
                    Files = files[source.Name].Select(f => Path.GetRelativePath(options.OutputDir, f)).ToList(),
                    TrainPrefix = source.Name + ".train", ValidationPrefix = source.Name + ".val",
                };
                PrepareSource(source, files[source.Name], account, options, tokenizer, cleaner, exactSeen, nearIndex, rejects, progress, ct);
                if (!account.Balances)
                    throw new InvalidOperationException($"source {source.Name}: read {account.DocumentsRead} != kept + dropped; this is a bug");
                if (account.KeptTrain == 0)
                    throw new CptLabException($"source '{source.Name}': no document survived for training ({account.DocumentsRead} read; dropped: {Describe(account.Dropped)}); see {rejectsPath}");
                accounts.Add(account);
            }
        }
        File.Move(rejectsTmp, rejectsPath, overwrite: true);

        var manifest = new PrepareManifest
        {
            Tokenizer = Path.GetFullPath(options.TokenizerPath),
            VocabSize = tokenizer.VocabSize, BosId = tokenizer.BosId, EosId = tokenizer.EosId,
            AddBos = options.AddBos && tokenizer.BosId is not null,
            ValidationFraction = options.ValidationFraction,
            Cleaning = options.Cleaning,
            Sources = accounts,
            RejectsFile = "rejects.jsonl",
        };
        manifest.Save(options.OutputDir);
        return manifest;
    }

    static string Describe(IDictionary<string, long> dropped) =>
        dropped.Count == 0 ? "none" : string.Join(", ", dropped.Select(kv => $"{kv.Key} {kv.Value}"));

    sealed class Item
    {
        public required RawDocument Raw;
        public CleanedDocument? Clean;
        public DropReason? Drop;
        public string? Detail;
        public bool Validation;
        public int[]? Tokens;
    }

    static void PrepareSource(SourceSpec source, IReadOnlyList<string> files, SourceAccount account, PrepareOptions options,
        ITextTokenizer tokenizer, TextCleaner cleaner, HashSet<ulong> exactSeen, NearDuplicateIndex nearIndex,
        StreamWriter rejects, IProgress<PrepareProgress>? progress, CancellationToken ct)
    {
        using var train = new IndexedDatasetWriter(Path.Combine(options.OutputDir, account.TrainPrefix), tokenizer.VocabSize);
        using var val = new IndexedDatasetWriter(Path.Combine(options.OutputDir, account.ValidationPrefix), tokenizer.VocabSize);
        var addBos = options.AddBos && tokenizer.BosId is not null;
        var batch = new List<Item>(options.BatchSize);

        for (var f = 0; f < files.Count; f++)
        {
            foreach (var raw in DocumentReader.Read(files[f], source))
            {
                batch.Add(new Item { Raw = raw });
                if (batch.Count == options.BatchSize) Flush();
            }
            Flush();
            progress?.Report(new PrepareProgress(source.Name, f + 1, files.Count, account.DocumentsRead, train.TokenCount + val.TokenCount));
        }
        train.Finish();
        val.Finish();
        account.TokensTrain = train.TokenCount;
        account.TokensValidation = val.TokenCount;

        void Flush()
        {
            if (batch.Count == 0) return;
            ct.ThrowIfCancellationRequested();
            // 1. per-document cleaning, all cores
            Parallel.ForEach(batch, item =>
            {
                if (item.Raw.Error is { } e) { item.Drop = e; item.Detail = item.Raw.Detail; return; }
                item.Clean = cleaner.Clean(item.Raw.Text!, source.Language);
                item.Drop = item.Clean.Drop;
                item.Detail = item.Clean.Detail;
            });
            // 2. order-dependent decisions, in input order
            foreach (var item in batch)
            {
                account.DocumentsRead++;
                if (item.Drop is { } bad && bad.IsBadInput() && options.Strict)
                    throw new CptLabException($"{item.Raw.File}:{item.Raw.Line}: {bad.Key()}: {item.Detail} (--strict; without it such records are counted, logged and skipped)");
                if (item.Drop is null)
                {
                    var c = item.Clean!;
                    if (options.Cleaning.ExactDedup && !exactSeen.Add(c.ExactHash)) item.Drop = DropReason.ExactDuplicate;
                    else if (c.Signature is not null && nearIndex.FindOrAdd(c.Signature) is not null)
                    {
                        item.Drop = DropReason.NearDuplicate;
                        item.Detail = $"estimated Jaccard >= {options.Cleaning.JaccardThreshold} with an earlier document";
                    }
                    item.Validation = c.SplitValue < options.ValidationFraction;
                }
                if (item.Drop is { } reason)
                {
                    account.Dropped[reason.Key()] = account.Dropped.GetValueOrDefault(reason.Key()) + 1;
                    rejects.WriteLine(JsonSerializer.Serialize(new { source = source.Name, file = item.Raw.File, line = item.Raw.Line, reason = reason.Key(), detail = item.Detail }, OneLine));
                }
            }
            // 3. tokenization of the kept documents, all cores
            Parallel.ForEach(batch, item =>
            {
                if (item.Drop is not null) return;
                var ids = new List<int>(item.Clean!.Text.Length / 2 + 2);
                if (addBos) ids.Add(tokenizer.BosId!.Value);
                tokenizer.Encode(item.Clean.Text, ids);
                ids.Add(tokenizer.EosId);
                item.Tokens = [.. ids];
            });
            // 4. writes, in input order
            foreach (var item in batch)
            {
                if (item.Tokens is null) continue;
                (item.Validation ? val : train).Add(item.Tokens);
                if (item.Validation) account.KeptValidation++; else account.KeptTrain++;
                account.CharsKept += item.Clean!.Text.Length;
            }
            batch.Clear();
        }
    }
}
