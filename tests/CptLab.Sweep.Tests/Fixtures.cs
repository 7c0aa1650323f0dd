using System.Text;
using CptLab.Data.Cleaning;
using CptLab.Data.Prepare;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Sweep;

namespace CptLab.Sweep.Tests;

/// <summary>
/// What every sweep test stands on, made once per test run: two tiny corpora (English-like and Chinese-like
/// text, generated), a byte-level BPE of 600 tokens trained on them, the shards `cptlab data prepare` would
/// write (10% held out for validation), and a debug-size base checkpoint with that vocabulary.
/// </summary>
public sealed class SweepFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("cptlab-sweep-").FullName;
    public string DataDir => Path.Combine(Root, "data");
    public string BaseCheckpoint => Path.Combine(Root, "base");

    public SweepFixture()
    {
        var en = Path.Combine(Root, "corpus", "en.txt");
        var zh = Path.Combine(Root, "corpus", "zh.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(en)!);
        File.WriteAllText(en, string.Join("\n\n", Enumerable.Range(0, 240).Select(Text.English)));
        File.WriteAllText(zh, string.Join("\n\n", Enumerable.Range(0, 240).Select(Text.Chinese)));
        var tokenizerPath = Path.Combine(Root, "tokenizer.json");
        BpeTrainer.Train(Enumerable.Range(0, 200).Select(i => i % 2 == 0 ? Text.English(i) : Text.Chinese(i)), new BpeTrainerOptions { VocabSize = 600 }).Save(tokenizerPath);
        var tokenizer = TextTokenizer.Load(tokenizerPath);
        CorpusPreparer.Run(new PrepareOptions
        {
            Sources =
            [
                new SourceSpec { Name = "en-web", Tag = "en", Files = [en] },
                new SourceSpec { Name = "zh-web", Tag = "zh", Files = [zh] },
            ],
            OutputDir = DataDir, TokenizerPath = tokenizerPath, ValidationFraction = 0.1,
            Cleaning = new CleaningOptions { NearDedup = false },
        }, tokenizer);
        TorchRuntime.Initialise(1);
        var config = Flavors.Get("debug") with { VocabSize = tokenizer.VocabSize, MaxPositionEmbeddings = 128 };
        ModelFactory.InitAndSave(config, BaseCheckpoint, seed: 5);
    }

    /// <summary>A fresh folder under <see cref="Root"/> (removed with it when the tests end).</summary>
    public string NewDir(string prefix)
    {
        var dir = Path.Combine(Root, "t", prefix + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A spec file in a fresh folder; <paramref name="body"/> is YAML after the base and data lines.</summary>
    public string WriteSpec(string body, string? name = null)
    {
        var dir = NewDir("spec-");
        var path = Path.Combine(dir, (name ?? "sweep") + ".yaml");
        File.WriteAllText(path, $"""
            base_checkpoint: {BaseCheckpoint}
            data:
              dir: {DataDir}
              seq_len: 32
              original: [en-web]
              additional: [zh-web]
            {body}
            """);
        return path;
    }

    public void Dispose()
    {
        OrphanRuns.KillAll(Root); // nothing a failed test started may outlive it
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class SweepCollection : ICollectionFixture<SweepFixture>
{
    public const string Name = "sweep fixture";
}

/// <summary>Deterministic synthetic documents.</summary>
public static class Text
{
    static readonly string[] Words = ("river stone market winter garden letter bridge window morning harbor question answer music paper story " +
        "table money history night evening water light road horse summer village engine forest island mountain").Split(' ');
    const string Han = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏云腾致雨露结为霜金生丽水玉出昆冈";

    public static string English(int seed)
    {
        var r = new Random(seed);
        var sb = new StringBuilder();
        for (var i = 0; i < 50; i++) sb.Append(Words[r.Next(Words.Length)]).Append(i % 10 == 9 ? ". " : " ");
        return sb.ToString().Trim();
    }

    public static string Chinese(int seed)
    {
        var r = new Random(seed + 10_000);
        var sb = new StringBuilder();
        for (var i = 0; i < 70; i++) sb.Append(Han[r.Next(Han.Length)]).Append(i % 7 == 6 ? "，" : "");
        return sb.ToString() + "。";
    }
}
