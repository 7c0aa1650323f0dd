using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Cleaning;
using CptLab.Data.Prepare;
using CptLab.Data.Shards;
using CptLab.Data.Sources;

namespace CptLab.Data.Tests;

public class PrepareTests
{
    /// <summary>
    /// Builds an English and a Chinese source with planted problems; returns the expected drop counts per source.
    /// </summary>
    static (List<SourceSpec> Sources, Dictionary<string, Dictionary<string, long>> Planted, Dictionary<string, int> Good) Plant(TempDir dir)
    {
        var en = new List<string>();
        for (var i = 0; i < 40; i++) en.Add(Corpus.JsonLine(Corpus.English(i)));
        en.Add(Corpus.JsonLine("  " + Corpus.English(3).ToUpperInvariant().Replace(" ", "   ") + "\r\n"));       // exact dup of #3 after case/space folding
        var near = Corpus.English(5, 200);
        en.Add(Corpus.JsonLine(near));
        en.Add(Corpus.JsonLine(near.Replace("river", "stream", StringComparison.Ordinal).Replace("Time", "Tide")));  // near dup
        en.Add("{\"text\": \"unterminated");                                                                          // malformed JSON
        en.Add("{\"body\": \"no text field here at all, sorry\"}");                                                   // missing field
        en.Add(Corpus.JsonLine(Corpus.Chinese(99)));                                                                  // wrong language
        en.Add(Corpus.JsonLine("hi"));                                                                                // too short
        en.Add("");                                                                                                   // blank line: no record
        var badUtf8 = Encoding.UTF8.GetBytes("{\"text\": \"bad bytes XX here in an otherwise fine record\"}\n");
        var at = Array.IndexOf(badUtf8, (byte)'X');
        badUtf8[at] = 0xFF; badUtf8[at + 1] = 0xFE;
        File.WriteAllBytes(dir.File("en.jsonl"), [.. Encoding.UTF8.GetBytes(string.Join("\n", en) + "\n"), .. badUtf8]);

        // A truncated .gz: the documents before the cut are read, the cut is one reject.
        var gz = Corpus.Gzip(string.Join("\n", Enumerable.Range(100, 200).Select(i => Corpus.JsonLine(Corpus.English(i)))) + "\n");
        File.WriteAllBytes(dir.File("en2.jsonl.gz"), gz[..(gz.Length * 2 / 3)]);

        var zh = string.Join("\n\n", Enumerable.Range(200, 30).Select(i => Corpus.Chinese(i)));
        File.WriteAllText(dir.File("zh.txt"), zh + "\n\n" + Corpus.Chinese(205) + "\n");                               // exact dup in the txt
        var zst = new ZstdSharp.Compressor(3).Wrap(Encoding.UTF8.GetBytes(string.Join("\n", Enumerable.Range(300, 10).Select(i => Corpus.JsonLine(Corpus.Chinese(i)))))).ToArray();
        File.WriteAllBytes(dir.File("zh-extra.jsonl.zst"), zst);
        Parquet.Serialization.ParquetSerializer.SerializeAsync(
            Enumerable.Range(400, 7).Select(i => new ParquetRow { text = Corpus.Chinese(i) }).Append(new ParquetRow { text = null }),
            dir.File("zh.parquet")).GetAwaiter().GetResult();

        var sources = new List<SourceSpec>
        {
            new() { Name = "en", Tag = "en", Language = "en", Files = [dir.File("en*.jsonl*")] },
            new() { Name = "zh", Tag = "zh", Language = "zh", Files = [dir.File("zh.txt"), dir.File("zh-extra.jsonl.zst"), dir.File("zh.parquet")] },
        };
        var planted = new Dictionary<string, Dictionary<string, long>>
        {
            ["en"] = new() { ["exact_duplicate"] = 1, ["near_duplicate"] = 1, ["malformed_json"] = 1, ["missing_field"] = 1, ["wrong_language"] = 1, ["too_short"] = 1, ["invalid_utf8"] = 1, ["truncated_stream"] = 1 },
            ["zh"] = new() { ["exact_duplicate"] = 1, ["missing_field"] = 1 },
        };
        var good = new Dictionary<string, int> { ["en"] = 41, ["zh"] = 47 }; // en: 40 + the near original (+ the .gz ones, counted apart)
        return (sources, planted, good);
    }

    public sealed class ParquetRow { public string? text { get; set; } }

    [Fact]
    public void Every_document_is_kept_or_dropped_with_its_reason()
    {
        using var dir = new TempDir();
        var (sources, planted, good) = Plant(dir);
        var outDir = dir.File("out");
        var tok = Corpus.Tokenizer;
        var manifest = CorpusPreparer.Run(new PrepareOptions { Sources = sources, OutputDir = outDir, TokenizerPath = Corpus.TokenizerPath, ValidationFraction = 0.2 }, tok);

        foreach (var acc in manifest.Sources)
        {
            Assert.Equal(planted[acc.Name], acc.Dropped);
            Assert.Equal(acc.DocumentsRead, acc.KeptTrain + acc.KeptValidation + acc.DroppedTotal);
            Assert.True(acc.KeptValidation > 0 && acc.KeptTrain > acc.KeptValidation, $"{acc.Name}: {acc.KeptTrain} train, {acc.KeptValidation} validation");
        }
        var en = manifest.Source("en");
        var gzRead = en.DocumentsRead - (good["en"] + planted["en"].Values.Sum() - 1);   // records read from the truncated .gz
        Assert.InRange(gzRead, 20, 199);
        Assert.Equal(good["zh"] + planted["zh"].Values.Sum(), manifest.Source("zh").DocumentsRead);

        // The shards hold exactly the kept documents: BOS + text + EOS, decodable back to clean text.
        using var train = new IndexedDataset(Path.Combine(outDir, en.TrainPrefix));
        using var val = new IndexedDataset(Path.Combine(outDir, en.ValidationPrefix));
        Assert.Equal(en.KeptTrain, train.Count);
        Assert.Equal(en.KeptValidation, val.Count);
        Assert.Equal(en.TokensTrain, train.TokenCount);
        var first = train.Get(0);
        Assert.Equal(tok.BosId, first[0]);
        Assert.Equal(tok.EosId, first[^1]);
        var trainTexts = Enumerable.Range(0, train.Count).Select(i => tok.Decode(train.Get(i).AsSpan()[1..^1])).ToHashSet();
        var valTexts = Enumerable.Range(0, val.Count).Select(i => tok.Decode(val.Get(i).AsSpan()[1..^1])).ToList();
        Assert.Contains(Corpus.English(0), trainTexts.Concat(valTexts));
        Assert.DoesNotContain(valTexts, trainTexts.Contains);

        // The rejects file names file and line of each bad record.
        var rejects = File.ReadAllLines(Path.Combine(outDir, "rejects.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(manifest.Sources.Sum(s => s.DroppedTotal), rejects.Count);
        var malformed = rejects.Single(r => r.GetProperty("reason").GetString() == "malformed_json");
        Assert.EndsWith("en.jsonl", malformed.GetProperty("file").GetString());
        Assert.Equal(44, malformed.GetProperty("line").GetInt64());
        var utf8 = rejects.Single(r => r.GetProperty("reason").GetString() == "invalid_utf8");
        Assert.Equal(49, utf8.GetProperty("line").GetInt64());
    }

    [Fact]
    public void Output_does_not_depend_on_batching()
    {
        using var dir = new TempDir();
        var (sources, _, _) = Plant(dir);
        var tok = Corpus.Tokenizer;
        CorpusPreparer.Run(new PrepareOptions { Sources = sources, OutputDir = dir.File("a"), TokenizerPath = Corpus.TokenizerPath, BatchSize = 7 }, tok);
        CorpusPreparer.Run(new PrepareOptions { Sources = sources, OutputDir = dir.File("b"), TokenizerPath = Corpus.TokenizerPath, BatchSize = 1000 }, tok);
        foreach (var f in new[] { "en.train.bin", "en.train.idx", "zh.train.bin", "zh.val.idx", "rejects.jsonl" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir.File("a"), f)), File.ReadAllBytes(Path.Combine(dir.File("b"), f)));
    }

    [Fact]
    public void Strict_mode_stops_at_the_first_bad_record_with_its_place()
    {
        using var dir = new TempDir();
        var (sources, _, _) = Plant(dir);
        var e = Assert.Throws<CptLabException>(() => CorpusPreparer.Run(
            new PrepareOptions { Sources = sources, OutputDir = dir.File("out"), TokenizerPath = Corpus.TokenizerPath, Strict = true }, Corpus.Tokenizer));
        Assert.Contains("en.jsonl:44: malformed_json", e.Message);
        Assert.False(File.Exists(Path.Combine(dir.File("out"), "manifest.json")));
    }

    [Fact]
    public void Missing_files_and_empty_sources_are_one_line_errors()
    {
        using var dir = new TempDir();
        var missing = new SourceSpec { Name = "x", Tag = "en", Files = [dir.File("nothing/*.jsonl")] };
        var e = Assert.Throws<CptLabException>(() => CorpusPreparer.Run(new PrepareOptions { Sources = [missing], OutputDir = dir.File("o"), TokenizerPath = Corpus.TokenizerPath }, Corpus.Tokenizer));
        Assert.Contains("no file matches", e.Message);
        File.WriteAllText(dir.File("short.txt"), "a\n\nb\n");
        var empty = new SourceSpec { Name = "s", Tag = "en", Files = [dir.File("short.txt")] };
        e = Assert.Throws<CptLabException>(() => CorpusPreparer.Run(new PrepareOptions { Sources = [empty], OutputDir = dir.File("o"), TokenizerPath = Corpus.TokenizerPath }, Corpus.Tokenizer));
        Assert.Contains("too_short 2", e.Message);
        Assert.Equal(2, File.ReadAllLines(dir.File("o/rejects.jsonl")).Length); // the file the message points to
        Assert.DoesNotContain(Directory.EnumerateFiles(dir.File("o")), f => f.EndsWith(".tmp", StringComparison.Ordinal));
        Assert.Throws<CptLabException>(() => SourceSpec.Parse("nonsense"));
        Assert.Equal("zh", SourceSpec.Parse("poetry=zh:a/*.json").Language);
    }
}

public class CleaningTests
{
    [Fact]
    public void Normalize_composes_strips_controls_and_unifies_newlines()
    {
        Assert.Equal("café\nnext\tline", TextCleaner.Normalize("  cafe\u0301\r\nnext\u0007\tline\u0000 "));
        Assert.Equal("a\nb", TextCleaner.Normalize("a\rb"));
        Assert.Equal("x😀y", TextCleaner.Normalize("x😀\ud800y"));   // pair kept, lone surrogate removed
    }

    [Fact]
    public void Minhash_estimates_the_true_jaccard()
    {
        var hasher = new MinHasher(256, 5);
        foreach (var (a, b) in new[] { (Corpus.English(1, 300), Corpus.English(1, 300).Replace("river", "x")), (Corpus.English(2, 100), Corpus.English(3, 100)), (Corpus.Chinese(1, 300), Corpus.Chinese(1, 200)) })
        {
            var ka = TextCleaner.DedupKey(a);
            var kb = TextCleaner.DedupKey(b);
            var sa = Enumerable.Range(0, ka.Length - 4).Select(i => ka.Substring(i, 5)).ToHashSet();
            var sb = Enumerable.Range(0, kb.Length - 4).Select(i => kb.Substring(i, 5)).ToHashSet();
            var truth = (double)sa.Intersect(sb).Count() / sa.Union(sb).Count();
            Assert.InRange(MinHasher.Similarity(hasher.Signature(ka), hasher.Signature(kb)), truth - 0.1, truth + 0.1);
        }
    }

    /// <summary>The vectorized signature against the plain definition: per distinct shingle, per permutation, the top 32 bits of a·h + b, minimized.</summary>
    [Theory]
    [InlineData(128, 5)]
    [InlineData(13, 3)]   // a permutation count that leaves a scalar tail after the vector loop
    public void Minhash_signature_equals_the_scalar_definition(int permutations, int shingle)
    {
        var hasher = new MinHasher(permutations, shingle);
        var state = SplitMix64.Gamma;
        var a = new ulong[permutations];
        var b = new ulong[permutations];
        for (var i = 0; i < permutations; i++) { a[i] = SplitMix64.Next(ref state) | 1; b[i] = SplitMix64.Next(ref state); }
        foreach (var text in new[] { "", "ab", Corpus.English(4, 120), Corpus.Chinese(4, 90), "aaaaaaaaaaaaaaaaaaaa" })
        {
            var expected = Enumerable.Repeat(uint.MaxValue, permutations).ToArray();
            var k = Math.Min(shingle, Math.Max(1, text.Length));
            var shingles = Enumerable.Range(0, Math.Max(0, text.Length - k + 1))
                .Select(i => System.IO.Hashing.XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(text.AsSpan(i, k)))).ToHashSet();
            foreach (var h in shingles)
                for (var p = 0; p < permutations; p++) expected[p] = Math.Min(expected[p], (uint)((a[p] * h + b[p]) >> 32));
            Assert.Equal(expected, hasher.Signature(text));
        }
    }

    [Fact]
    public void Script_share_counts_letters_only()
    {
        Assert.Equal(1.0, ScriptCheck.Share("床前明月光，123!", "zh"));
        Assert.Equal(0.5, ScriptCheck.Share("ab 床前", "zh"));
        Assert.Equal(1.0, ScriptCheck.Share("Ünïcödé naïve", "en"));
    }
}
