using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Prepare;
using CptLab.Data.Sources;

namespace CptLab.Data.Tests;

/// <summary>
/// `data prepare` on many files: the same bytes for any thread count, after an interruption and resume, and
/// the dedup decisions of input order (first one wins) even when later files finish first.
/// </summary>
public class PrepareScaleTests
{
    /// <summary>
    /// Two sources over eight files of falling size (so that with several threads the later, smaller files finish
    /// first), with exact and near duplicates across files and a bad record in two files.
    /// </summary>
    static List<SourceSpec> MultiFileCorpus(TempDir dir)
    {
        var near = Corpus.English(5, 200);
        for (var f = 0; f < 5; f++)
        {
            var lines = Enumerable.Range(0, 20 + 30 * (4 - f)).Select(i => Corpus.JsonLine(Corpus.English(1000 * f + i))).ToList();
            switch (f)
            {
                case 1: lines.Insert(3, Corpus.JsonLine(near)); lines.Insert(9, "{\"text\": broken"); break;             // the near original; a bad record
                case 3: lines.Insert(5, Corpus.JsonLine(Corpus.English(7).ToUpperInvariant())); break;                   // exact dup of en-0 #7, line 6
                case 4:
                    lines.Insert(2, Corpus.JsonLine(near.Replace("river", "stream", StringComparison.Ordinal).Replace("Time", "Tide"))); // near dup, line 3
                    lines.Insert(4, Corpus.JsonLine(Corpus.English(3010)));                                              // exact dup of en-3 #10, line 5
                    lines.Insert(6, "{\"body\": \"no text\"}");
                    break;
            }
            File.WriteAllText(dir.File($"en-{f}.jsonl"), string.Join("\n", lines) + "\n");
        }
        for (var f = 0; f < 3; f++)
        {
            var docs = Enumerable.Range(0, 40 - 10 * f).Select(i => Corpus.Chinese(500 * f + i)).ToList();
            if (f == 2) docs.Insert(1, Corpus.Chinese(7)); // exact dup of zh-0 #7
            File.WriteAllText(dir.File($"zh-{f}.txt"), string.Join("\n\n", docs) + "\n", Encoding.UTF8);
        }
        return
        [
            new() { Name = "en", Tag = "en", Language = "en", Files = [dir.File("en-*.jsonl")] },
            new() { Name = "zh", Tag = "zh", Language = "zh", Files = [dir.File("zh-*.txt")] },
        ];
    }

    static PrepareOptions Options(List<SourceSpec> sources, string outDir, int threads) => new()
    {
        Sources = sources, OutputDir = outDir, TokenizerPath = Corpus.TokenizerPath, ValidationFraction = 0.1, Threads = threads, BatchSize = 7,
    };

    /// <summary>Every file of two folders, byte for byte; the parts and state are gone from both.</summary>
    static void AssertSameFolder(string expected, string actual)
    {
        static List<string> Files(string d) => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(d, f)).Order(StringComparer.Ordinal).ToList();
        var names = Files(expected);
        Assert.Equal(names, Files(actual));
        Assert.Contains("manifest.json", names);
        Assert.Contains("en.train.bin", names);
        Assert.DoesNotContain(PrepareState.FileName, names);
        Assert.DoesNotContain(names, n => n.StartsWith(FilePart.Dir, StringComparison.Ordinal));
        foreach (var n in names)
            Assert.True(File.ReadAllBytes(Path.Combine(expected, n)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, n))), $"{n} differs");
    }

    [Fact]
    public void Threads_1_2_4_give_byte_identical_shards_manifest_and_rejects()
    {
        using var dir = new TempDir();
        var sources = MultiFileCorpus(dir);
        var one = CorpusPreparer.Run(Options(sources, dir.File("t1"), 1), Corpus.Tokenizer);
        CorpusPreparer.Run(Options(sources, dir.File("t2"), 2), Corpus.Tokenizer);
        // On 4 threads the first file is held back until four later files are done, so the parts finish out of input order.
        var order = new List<string>();
        var parts = Path.Combine(dir.File("t4"), FilePart.Dir);
        CorpusPreparer.Run(Options(sources, dir.File("t4"), 4) with
        {
            BeforeFile = f =>
            {
                if (!f.Path.EndsWith("en-0.jsonl", StringComparison.Ordinal)) return;
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (Directory.EnumerateFiles(parts, "*.meta").Count() < 4 && sw.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(5);
            },
        }, Corpus.Tokenizer, new SyncProgress<PrepareProgress>(p => { lock (order) if (p.Stage == PrepareStage.Tokenize) order.Add(Path.GetFileName(p.File!)); }));
        Assert.Equal(8, order.Count);
        Assert.NotEqual("en-0.jsonl", order[0]);
        AssertSameFolder(dir.File("t1"), dir.File("t2"));
        AssertSameFolder(dir.File("t1"), dir.File("t4"));

        // The dedup decisions are those of input order: the later copy goes, wherever it is.
        Assert.Equal(2, one.Source("en").Dropped["exact_duplicate"]);
        Assert.Equal(1, one.Source("en").Dropped["near_duplicate"]);
        Assert.Equal(1, one.Source("zh").Dropped["exact_duplicate"]);
        var rejects = File.ReadAllLines(dir.File("t4/rejects.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(r => (File: Path.GetFileName(r.GetProperty("file").GetString()), Line: r.GetProperty("line").GetInt64(), Reason: r.GetProperty("reason").GetString())).ToList();
        Assert.Contains(("en-3.jsonl", 6L, "exact_duplicate"), rejects);
        Assert.Contains(("en-4.jsonl", 3L, "near_duplicate"), rejects);
        Assert.Contains(("en-4.jsonl", 5L, "exact_duplicate"), rejects);
        Assert.Contains(("zh-2.txt", 3L, "exact_duplicate"), rejects);
        Assert.Equal(rejects.OrderBy(r => r.File, StringComparer.Ordinal).ThenBy(r => r.Line).ToList(), rejects); // written in input order
        var manifestText = File.ReadAllText(dir.File("t1/manifest.json"));
        Assert.DoesNotContain("created", manifestText);
    }

    [Fact]
    public void Strict_reports_the_first_bad_record_in_input_order_whatever_the_threads()
    {
        using var dir = new TempDir();
        var sources = MultiFileCorpus(dir);
        foreach (var threads in new[] { 1, 4 })
        {
            var e = Assert.Throws<CptLabException>(() => CorpusPreparer.Run(Options(sources, dir.File($"s{threads}"), threads) with { Strict = true }, Corpus.Tokenizer));
            Assert.Contains("en-1.jsonl:10: malformed_json", e.Message);
        }
    }

    sealed class StopAfter(int files, Action stop) : IProgress<PrepareProgress>
    {
        int _done;
        public List<string> Notes { get; } = [];
        public void Report(PrepareProgress p)
        {
            if (p.Note is { } n) { lock (Notes) Notes.Add(n); return; }
            if (p.Stage == PrepareStage.Tokenize && Interlocked.Increment(ref _done) == files) stop();
        }
    }

    sealed class Hook : Exception { }

    [Fact]
    public void Interrupted_after_some_files_then_resumed_equals_an_uninterrupted_run()
    {
        using var dir = new TempDir();
        var sources = MultiFileCorpus(dir);
        CorpusPreparer.Run(Options(sources, dir.File("straight"), 1), Corpus.Tokenizer);

        // A failure in the middle (the hook throws once 3 files are done), then the same call again.
        var crashed = dir.File("crashed");
        Assert.Throws<Hook>(() => CorpusPreparer.Run(Options(sources, crashed, 2), Corpus.Tokenizer, new StopAfter(3, () => throw new Hook())));
        Assert.True(File.Exists(PrepareState.PathIn(crashed)));
        Assert.False(File.Exists(Path.Combine(crashed, PrepareManifest.FileName)));
        var partsLeft = Directory.EnumerateFiles(Path.Combine(crashed, FilePart.Dir), "*.meta").Count();
        Assert.InRange(partsLeft, 3, 7);
        var resume = new StopAfter(int.MaxValue, () => { });
        CorpusPreparer.Run(Options(sources, crashed, 4), Corpus.Tokenizer, resume);
        Assert.Contains($"resuming: {partsLeft} of 8 files already prepared", resume.Notes);
        AssertSameFolder(dir.File("straight"), crashed);

        // Cancelled (Ctrl-C) after 2 files on one thread, resumed on one thread.
        var cancelled = dir.File("cancelled");
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => CorpusPreparer.Run(Options(sources, cancelled, 1), Corpus.Tokenizer, new StopAfter(2, cts.Cancel), cts.Token));
        Assert.Equal(2, Directory.EnumerateFiles(Path.Combine(cancelled, FilePart.Dir), "*.meta").Count());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cancelled, FilePart.Dir), "*.tmp"));
        resume = new StopAfter(int.MaxValue, () => { });
        CorpusPreparer.Run(Options(sources, cancelled, 1), Corpus.Tokenizer, resume);
        Assert.Contains("resuming: 2 of 8 files already prepared", resume.Notes);
        AssertSameFolder(dir.File("straight"), cancelled);
    }

    [Fact]
    public void Changed_options_start_over_and_a_changed_file_is_prepared_again()
    {
        using var dir = new TempDir();
        var sources = MultiFileCorpus(dir);
        var outDir = dir.File("out");
        Assert.Throws<Hook>(() => CorpusPreparer.Run(Options(sources, outDir, 1), Corpus.Tokenizer, new StopAfter(4, () => throw new Hook())));

        // Other options: nothing is reused, and the result is that of a fresh run with those options.
        var other = new StopAfter(int.MaxValue, () => { });
        var before = CorpusPreparer.Run(Options(sources, outDir, 1) with { ValidationFraction = 0.2 }, Corpus.Tokenizer, other);
        Assert.Contains(other.Notes, n => n.Contains("options or the tokenizer differ") && n.Contains("starting over"));
        Assert.DoesNotContain(other.Notes, n => n.StartsWith("resuming"));
        CorpusPreparer.Run(Options(sources, dir.File("fresh"), 1) with { ValidationFraction = 0.2 }, Corpus.Tokenizer);
        AssertSameFolder(dir.File("fresh"), outDir);

        // Same options, but a file was rewritten in between: that file alone is prepared again.
        var again = dir.File("again");
        Assert.Throws<Hook>(() => CorpusPreparer.Run(Options(sources, again, 1), Corpus.Tokenizer, new StopAfter(8, () => throw new Hook())));
        File.AppendAllText(dir.File("en-0.jsonl"), Corpus.JsonLine(Corpus.English(99_999)) + "\n");
        File.SetLastWriteTimeUtc(dir.File("en-0.jsonl"), DateTime.UtcNow.AddMinutes(1));
        var changed = new StopAfter(int.MaxValue, () => { });
        var m = CorpusPreparer.Run(Options(sources, again, 1), Corpus.Tokenizer, changed);
        Assert.Contains(changed.Notes, n => n.Contains("en-0.jsonl changed"));
        Assert.Contains("resuming: 7 of 8 files already prepared", changed.Notes);
        CorpusPreparer.Run(Options(sources, dir.File("fresh2"), 1), Corpus.Tokenizer);
        AssertSameFolder(dir.File("fresh2"), again);
        Assert.Equal(before.Source("en").DocumentsRead + 1, m.Source("en").DocumentsRead); // the appended record is in
    }

    /// <summary>
    /// The compact near-duplicate index (flat signatures, bucket chains) decides as the plain one does (a list of
    /// documents per bucket, checked in order) on 11,000 signatures: past two storage chunks, with copies of earlier
    /// signatures altered in 5% (duplicates) to 40% (candidates at most) of their positions.
    /// </summary>
    [Fact]
    public void Near_duplicate_index_decides_as_the_plain_definition()
    {
        const int perms = 128;
        var (bands, rows) = Cleaning.NearDuplicateIndex.ChooseBands(perms, 0.8);
        var index = new Cleaning.NearDuplicateIndex(perms, 0.8);
        var buckets = Enumerable.Range(0, bands).Select(_ => new Dictionary<ulong, List<int>>()).ToArray();
        var kept = new List<uint[]>();
        var all = new List<uint[]>();
        var rng = new Random(5);
        var duplicates = 0;
        for (var n = 0; n < 11_000; n++)
        {
            uint[] sig;
            if (n > 10 && rng.NextDouble() < 0.3)
            {
                sig = (uint[])all[rng.Next(all.Count)].Clone();
                var change = new[] { 0.05, 0.15, 0.25, 0.4 }[rng.Next(4)];
                for (var p = 0; p < perms; p++) if (rng.NextDouble() < change) sig[p] = (uint)rng.Next();
            }
            else sig = Enumerable.Range(0, perms).Select(_ => (uint)rng.Next()).ToArray();
            all.Add(sig);

            var keys = Enumerable.Range(0, bands).Select(b => System.IO.Hashing.XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(sig.AsSpan(b * rows, rows)), b)).ToArray();
            var expected = Enumerable.Range(0, bands).Any(b => buckets[b].TryGetValue(keys[b], out var docs) && docs.Any(d => Cleaning.MinHasher.Similarity(sig, kept[d]) >= 0.8));
            if (!expected)
            {
                for (var b = 0; b < bands; b++) { if (!buckets[b].TryGetValue(keys[b], out var docs)) buckets[b][keys[b]] = docs = []; docs.Add(kept.Count); }
                kept.Add(sig);
            }
            var found = index.FindOrAdd(sig);
            Assert.Equal(expected, found is not null);
            if (found is { } d) { Assert.True(Cleaning.MinHasher.Similarity(sig, kept[d]) >= 0.8); duplicates++; }
        }
        Assert.Equal(kept.Count, index.Count);
        Assert.InRange(duplicates, 300, 3000);
        Assert.True(kept.Count > 2 * 4096, $"{kept.Count} signatures kept: too few to fill two chunks");
    }

    [Fact]
    public void A_files_worker_holds_one_bounded_batch_of_text()
    {
        // 200 records of 1,000 characters and one of 50,000: batches stay under 8,000 characters and 5 records,
        // except the one record that alone is larger; nothing is lost or reordered.
        var docs = Enumerable.Range(0, 201).Select(i => new RawDocument("f", i + 1, new string('a', i == 100 ? 50_000 : 1_000))).ToList();
        var batches = FilePart.Batches(docs, maxDocs: 5, maxChars: 8_000).ToList();
        Assert.All(batches, b => Assert.True(b.Count <= 5 && (b.Sum(d => d.Text!.Length) <= 8_000 || b.Count == 1), $"batch of {b.Count}, {b.Sum(d => d.Text!.Length)} chars"));
        Assert.Single(batches, b => b.Count == 1 && b[0].Line == 101);
        Assert.Equal(docs.Select(d => d.Line), batches.SelectMany(b => b).Select(d => d.Line));
        Assert.Equal(20 + 1 + 20, batches.Count); // 100 records before, 5 per batch; the big one alone; 100 after
    }
}
