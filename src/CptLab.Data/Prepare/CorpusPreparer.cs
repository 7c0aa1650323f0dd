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
    /// <summary>Records a file's worker cleans and tokenizes at once (fewer when <see cref="BatchChars"/> is reached first).</summary>
    public int BatchSize { get; init; } = 512;
    /// <summary>Characters of text a file's worker holds at once (one record may exceed it; <see cref="CleaningOptions.MaxChars"/> bounds what is kept).</summary>
    public long BatchChars { get; init; } = 4_000_000;
    /// <summary>Files prepared at once; with fewer files than threads, each file's batch is spread over the spare threads.</summary>
    public int Threads { get; init; } = Math.Max(1, Environment.ProcessorCount);
    public string? BaseDir { get; init; }
    /// <summary>Tests: called on the worker before a file's part is made (to hold one file back, so that later ones finish first).</summary>
    internal Action<PrepareFile>? BeforeFile { get; init; }
}

public enum PrepareStage
{
    /// <summary>A file's part is made (or was found made by an earlier, interrupted run).</summary>
    Tokenize,
    /// <summary>A file's part was read into the shards, in input order.</summary>
    Write,
}

/// <summary>
/// Where a prepare run is: per source, files done of the stage, documents read and tokens so far.
/// <see cref="Note"/> carries a line for the user (resuming, starting over, a changed file) and nothing else.
/// </summary>
public sealed record PrepareProgress(PrepareStage Stage, string Source, int FileIndex, int FileCount, long DocumentsRead, long TokensWritten)
{
    /// <summary>The file just done (FileIndex counts files done, in the order they finished).</summary>
    public string? File { get; init; }
    public string? Note { get; init; }
}

/// <summary>
/// Sources → cleaned, deduplicated, tokenized Megatron shards plus a manifest that accounts for every document,
/// for corpora larger than memory, in two passes:
/// <list type="number">
/// <item>Per file, <see cref="PrepareOptions.Threads"/> files at once: read, clean, hash and tokenize every record
/// into a part (<see cref="FilePart"/>). Nothing here depends on other files, so the order in which workers finish
/// does not matter, and a part survives an interrupted run (<see cref="PrepareState"/>).</item>
/// <item>One thread, in input order (sources in order, files sorted within a source, records in file order):
/// exact and near duplicate decisions (first one wins), the train/validation shards and rejects.jsonl.</item>
/// </list>
/// So shards, manifest and rejects are byte-identical for any thread count, batch size, and for a run that was
/// killed and resumed. Memory: each worker holds one batch (<see cref="PrepareOptions.BatchChars"/>); what grows with
/// the corpus is only the dedup state of the second pass (8 bytes per kept document for exact dedup, the MinHash
/// signature — 4 bytes × permutations — plus one LSH bucket entry per band for near dedup) and the shard index
/// being written (4 bytes per document). Disk: the parts take about 4 bytes per token until the run finishes.
/// </summary>
public static class CorpusPreparer
{
    static readonly JsonSerializerOptions OneLine = new(Json.SnakeCase) { WriteIndented = false };

    public static PrepareManifest Run(PrepareOptions options, ITextTokenizer tokenizer, IProgress<PrepareProgress>? progress = null, CancellationToken ct = default)
    {
        if (options.Sources.Count == 0) throw new CptLabException("no sources given: add --source NAME=TAG:GLOB or a sources list in the config");
        if (options.ValidationFraction is < 0 or > 0.5) throw new ConfigException("prepare", "validation_fraction", $"{options.ValidationFraction} is not in [0, 0.5]");
        if (options.Threads < 1) throw new ConfigException("prepare", "threads", $"{options.Threads} must be at least 1");
        if (options.BatchSize < 1 || options.BatchChars < 1) throw new ConfigException("prepare", "batch_size", "batch size and batch characters must be at least 1");
        options.Cleaning.Validate();
        var dupNames = options.Sources.GroupBy(s => s.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (dupNames.Count > 0) throw new CptLabException($"source name '{dupNames[0]}' is used twice; source names name the shard files");
        foreach (var s in options.Sources) s.Validate();
        var files = options.Sources.ToDictionary(s => s.Name, s => s.ResolveFiles(options.BaseDir)); // fail on a missing file before any work

        Directory.CreateDirectory(options.OutputDir);
        var plan = options.Sources.SelectMany(s => files[s.Name].Select(f => PrepareFile.Of(s.Name, f))).ToList();
        var inputs = PrepareState.InputsOf(options, tokenizer);
        var (done, notes) = PrepareState.Begin(options.OutputDir, new PrepareState { Fingerprint = PrepareState.FingerprintOf(inputs), Inputs = inputs, Files = plan });
        var reporter = new Reporter(progress, options.Sources.ToDictionary(s => s.Name, s => files[s.Name].Count));
        foreach (var n in notes) reporter.Note(n);

        MakeParts(options, tokenizer, plan, done, reporter, ct);
        var manifest = Assemble(options, tokenizer, files, plan, reporter, ct);
        PrepareState.Finish(options.OutputDir);
        return manifest;
    }

    /// <summary>Pass 1: the parts not already done, files in parallel. The first failure stops the others; of the failures, the one earliest in input order is reported.</summary>
    static void MakeParts(PrepareOptions options, ITextTokenizer tokenizer, List<PrepareFile> plan, HashSet<string> done, Reporter reporter, CancellationToken ct)
    {
        var cleaner = new TextCleaner(options.Cleaning);
        var specs = options.Sources.ToDictionary(s => s.Name);
        foreach (var f in plan.Where(f => done.Contains(f.Part))) reporter.FileDone(PrepareStage.Tokenize, f, 0, 0);
        var todo = plan.Select((f, i) => (File: f, Index: i)).Where(x => !done.Contains(x.File.Part)).ToList();
        if (todo.Count == 0) return;
        var outer = Math.Min(options.Threads, todo.Count);
        var inner = Math.Max(1, options.Threads / outer);
        var failures = new System.Collections.Concurrent.ConcurrentBag<(int Index, Exception Error)>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            // NoBuffering: one file at a time per worker (the default partitioner hands out growing chunks, which
            // leaves workers idle at the end when files are large).
            Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(todo, System.Collections.Concurrent.EnumerablePartitionerOptions.NoBuffering),
                new ParallelOptions { MaxDegreeOfParallelism = outer, CancellationToken = stop.Token }, job =>
            {
                try
                {
                    options.BeforeFile?.Invoke(job.File);
                    var r = FilePart.Write(job.File.Path, specs[job.File.Source], options.OutputDir, job.File.Part, options, tokenizer, cleaner, inner, stop.Token);
                    reporter.FileDone(PrepareStage.Tokenize, job.File, r.Documents, r.Tokens);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
                catch (Exception e)
                {
                    failures.Add((job.Index, e));
                    stop.Cancel(); // no new files; those in flight stop at their next batch
                }
            });
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { } // our own stop after a failure
        if (!failures.IsEmpty) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures.MinBy(f => f.Index).Error);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>Pass 2, in input order: dedup decisions, the split, the shards, rejects.jsonl and the manifest.</summary>
    static PrepareManifest Assemble(PrepareOptions options, ITextTokenizer tokenizer, Dictionary<string, IReadOnlyList<string>> files,
        List<PrepareFile> plan, Reporter reporter, CancellationToken ct)
    {
        var exactSeen = new HashSet<ulong>();
        var nearIndex = new NearDuplicateIndex(options.Cleaning.NumPermutations, options.Cleaning.JaccardThreshold);
        var rejectsPath = Path.Combine(options.OutputDir, "rejects.jsonl");
        var rejectsTmp = rejectsPath + ".tmp";
        var accounts = new List<SourceAccount>();
        try
        {
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
                    using (var train = new IndexedDatasetWriter(Path.Combine(options.OutputDir, account.TrainPrefix), tokenizer.VocabSize))
                    using (var val = new IndexedDatasetWriter(Path.Combine(options.OutputDir, account.ValidationPrefix), tokenizer.VocabSize))
                    {
                        foreach (var file in plan.Where(f => f.Source == source.Name))
                        {
                            ct.ThrowIfCancellationRequested();
                            var readBefore = account.DocumentsRead;
                            var tokensBefore = train.TokenCount + val.TokenCount;
                            WriteFile(file, source, account, options, exactSeen, nearIndex, rejects, train, val);
                            reporter.FileDone(PrepareStage.Write, file, account.DocumentsRead - readBefore, train.TokenCount + val.TokenCount - tokensBefore);
                        }
                        train.Finish();
                        val.Finish();
                        account.TokensTrain = train.TokenCount;
                        account.TokensValidation = val.TokenCount;
                    }
                    if (!account.Balances)
                        throw new InvalidOperationException($"source {source.Name}: read {account.DocumentsRead} != kept + dropped; this is a bug");
                    if (account.KeptTrain == 0)
                        throw new CptLabException($"source '{source.Name}': no document survived for training ({account.DocumentsRead} read; dropped: {Describe(account.Dropped)}); see {rejectsPath}");
                    accounts.Add(account);
                }
            }
        }
        catch
        {
            // A strict stop or a source left empty: the rejects so far are what the error message points to.
            if (File.Exists(rejectsTmp)) File.Move(rejectsTmp, rejectsPath, overwrite: true);
            throw;
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

    static void WriteFile(PrepareFile file, SourceSpec source, SourceAccount account, PrepareOptions options, HashSet<ulong> exactSeen,
        NearDuplicateIndex nearIndex, StreamWriter rejects, IndexedDatasetWriter train, IndexedDatasetWriter val)
    {
        using var part = new FilePart.Reader(options.OutputDir, file.Part);
        while (part.Next(out var r))
        {
            account.DocumentsRead++;
            var drop = r.Drop;
            var detail = r.Detail;
            if (drop is { } bad && bad.IsBadInput() && options.Strict)
                throw new CptLabException($"{file.Path}:{r.Line}: {bad.Key()}: {detail} (--strict; without it such records are counted, logged and skipped)");
            if (drop is null)
            {
                if (options.Cleaning.ExactDedup && !exactSeen.Add(r.ExactHash)) drop = DropReason.ExactDuplicate;
                else if (r.Signature is not null && nearIndex.FindOrAdd(r.Signature) is not null)
                {
                    drop = DropReason.NearDuplicate;
                    detail = $"estimated Jaccard >= {options.Cleaning.JaccardThreshold} with an earlier document";
                }
            }
            if (drop is { } reason)
            {
                if (r.Drop is null) part.SkipTokens(r.TokenCount); // tokenized in pass 1, dropped as a duplicate here
                account.Dropped[reason.Key()] = account.Dropped.GetValueOrDefault(reason.Key()) + 1;
                rejects.WriteLine(JsonSerializer.Serialize(new { source = source.Name, file = file.Path, line = r.Line, reason = reason.Key(), detail }, OneLine));
                continue;
            }
            (r.Validation ? val : train).Add(part.Tokens(r.TokenCount));
            if (r.Validation) account.KeptValidation++; else account.KeptTrain++;
            account.CharsKept += r.Chars;
        }
    }

    static string Describe(IDictionary<string, long> dropped) =>
        dropped.Count == 0 ? "none" : string.Join(", ", dropped.Select(kv => $"{kv.Key} {kv.Value}"));

    /// <summary>Per-source progress, from any thread, one report at a time.</summary>
    sealed class Reporter(IProgress<PrepareProgress>? progress, Dictionary<string, int> fileCounts)
    {
        readonly Lock _lock = new();
        readonly Dictionary<(PrepareStage, string), (int Files, long Docs, long Tokens)> _at = [];

        public void FileDone(PrepareStage stage, PrepareFile file, long documents, long tokens)
        {
            if (progress is null) return;
            lock (_lock)
            {
                var (f, d, t) = _at.GetValueOrDefault((stage, file.Source));
                _at[(stage, file.Source)] = (f + 1, d + documents, t + tokens);
                progress.Report(new PrepareProgress(stage, file.Source, f + 1, fileCounts[file.Source], d + documents, t + tokens) { File = file.Path });
            }
        }

        public void Note(string note)
        {
            if (progress is null) return;
            lock (_lock) progress.Report(new PrepareProgress(PrepareStage.Tokenize, "", 0, 0, 0, 0) { Note = note });
        }
    }
}
