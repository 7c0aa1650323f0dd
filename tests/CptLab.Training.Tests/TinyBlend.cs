using System.Text;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;
using CptLab.TestKit;

namespace CptLab.Training.Tests;

/// <summary>
/// A real, small data pipeline for trainer tests: synthetic English and Chinese documents → a trained BPE
/// tokenizer → `data prepare` shards with held-out splits → a blend at the given ALMR.
/// </summary>
public static class TinyBlend
{
    /// <summary>Prepares (once per folder) and returns the blend manifest path and the tokenizer's vocabulary size.</summary>
    public static (string BlendPath, int VocabSize) Create(string dir, double almr, int seqLen, long tokens)
    {
        Directory.CreateDirectory(dir);
        var en = Path.Combine(dir, "en.jsonl");
        var zh = Path.Combine(dir, "zh.jsonl");
        File.WriteAllLines(en, Enumerable.Range(0, 120).Select(i => SyntheticText.JsonLine(SyntheticText.English(42 + i, 80))));
        File.WriteAllLines(zh, Enumerable.Range(0, 120).Select(i => SyntheticText.JsonLine(SyntheticText.Chinese(420 + i, 100))), Encoding.UTF8);
        var tokenizerPath = Path.Combine(dir, "tokenizer.json");
        var sample = File.ReadLines(en).Take(60).Concat(File.ReadLines(zh).Take(60)).ToList();
        BpeTrainer.Train(sample, new BpeTrainerOptions { VocabSize = 800 }).Save(tokenizerPath);
        var tokenizer = TextTokenizer.Load(tokenizerPath);
        var dataDir = Path.Combine(dir, "data");
        CorpusPreparer.Run(new PrepareOptions
        {
            Sources =
            [
                new SourceSpec { Name = "en", Tag = "en", Files = [en], Language = "en" },
                new SourceSpec { Name = "zh", Tag = "zh", Files = [zh], Language = "zh" },
            ],
            OutputDir = dataDir, TokenizerPath = tokenizerPath, ValidationFraction = 0.1,
        }, tokenizer);
        var plan = BlendManifest.Create(new MixSpec
        {
            DataDir = dataDir,
            Components = [new MixComponent("en", SourceGroup.Original), new MixComponent("zh", SourceGroup.Additional)],
            Almr = almr, TokenBudget = tokens, SeqLen = seqLen, Seed = 7,
        });
        var blendPath = Path.Combine(dir, "blend.json");
        plan.Save(blendPath);
        return (blendPath, tokenizer.VocabSize);
    }
}
