using System.Text;
using CptLab.Data.Cleaning;
using CptLab.Data.Prepare;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Sweep;
using CptLab.TestKit;

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
        File.WriteAllText(en, string.Join("\n\n", Enumerable.Range(0, 240).Select(i => SyntheticText.English(i, 50))));
        File.WriteAllText(zh, string.Join("\n\n", Enumerable.Range(0, 240).Select(i => SyntheticText.Chinese(i + 10_000, 70))));
        var tokenizerPath = Path.Combine(Root, "tokenizer.json");
        BpeTrainer.Train(Enumerable.Range(0, 200).Select(i => i % 2 == 0 ? SyntheticText.English(i, 50) : SyntheticText.Chinese(i + 10_000, 70)), new BpeTrainerOptions { VocabSize = 600 }).Save(tokenizerPath);
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
