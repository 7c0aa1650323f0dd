using System.Text;
using System.Text.Json;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Data.Shards;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Training;
using Xunit.Abstractions;

namespace CptLab.Training.Tests;

public class BlendTrainingTests(ITestOutputHelper output)
{
    [Fact]
    public void Trains_on_a_real_blend_with_per_language_validation_and_bits_per_byte()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-blend-").FullName;
        var (blend, vocab) = TinyBlend.Create(dir, almr: 0.5, seqLen: 32, tokens: 64 * 32 * 2);
        using var data = BlendTrainingData.Open(blend, 32, maxValidationSequences: 8);
        Assert.Equal(["en", "zh"], data.Validation.Select(v => v.Name).Order());
        Assert.All(data.Validation, v => Assert.True(v.Sequences.Count is > 0 and <= 8));

        var modelConfig = Path.Combine(dir, "model.json");
        (Fixtures.Tiny with { VocabSize = vocab }).Save(modelConfig);
        var config = new TrainConfig
        {
            ModelConfigPath = modelConfig, Data = blend, SeqLen = 32, MicroBatchSize = 4, GlobalBatchTokens = 128,
            BudgetTokens = 128 * 40, Lr = 5e-3, WarmupTokens = 256, EvalEverySteps = 20, CheckpointEverySteps = 20,
            MeasurePeakFlops = false, Threads = 1,
        }.Validate();
        var result = Trainer.Run(config, data, Path.Combine(dir, "run"), resume: false);
        double uniform = Math.Log(vocab);
        var tokenizer = TextTokenizer.Load(PrepareManifest.Load(data.Plan.DataDir).Tokenizer);
        foreach (var (name, v) in result.Validation)
        {
            Assert.True(v.Loss < uniform - 1.0, $"{name}: validation loss {v.Loss:F3} should be well under ln V = {uniform:F3}");
            var set = data.Validation.Single(s => s.Name == name);
            Assert.Equal(v.Loss * v.Tokens / Math.Log(2) / set.TargetBytes, v.BitsPerByte, 9);
            // What the byte count was before: the decoded text of each window's targets, BOS and EOS strings included.
            long decoded = set.Sequences.Sum(s => (long)Encoding.UTF8.GetByteCount(tokenizer.Decode(s.AsSpan(1))));
            output.WriteLine($"{name}: loss {v.Loss:F4}; {set.TargetBytes} text bytes → {v.BitsPerByte:F4} bits/byte (decoded-text count {decoded} bytes → {v.Loss * v.Tokens / Math.Log(2) / decoded:F4})");
            // It added the BOS/EOS strings, and U+FFFD (3 bytes) for each character a window edge cut.
            Assert.True(decoded > set.TargetBytes, $"{name}: decoded-text count {decoded} should exceed the text's {set.TargetBytes} bytes");
        }
    }

    /// <summary>
    /// The byte count bits per byte divides by, against bytes counted in the corpus files themselves: the held-out
    /// documents' text (the fixture's documents are ones the cleaner leaves as they are), summed as UTF-8.
    /// </summary>
    [Fact]
    public void Validation_bytes_are_the_utf8_bytes_of_the_held_out_documents_text()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-blend-").FullName;
        var (blend, _) = TinyBlend.Create(dir, almr: 0.5, seqLen: 32, tokens: 64 * 32 * 2);
        var plan = BlendManifest.Load(blend);
        var manifest = PrepareManifest.Load(plan.DataDir);
        var tokenizer = TextTokenizer.Load(manifest.Tokenizer);
        foreach (var source in manifest.Sources)
        {
            var texts = File.ReadLines(Path.Combine(dir, source.Name + ".jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToList();
            Assert.All(texts, t => Assert.Equal(t, Data.Cleaning.TextCleaner.Normalize(t))); // nothing for the cleaner to change

            // Which documents were held out: the validation shard holds them in corpus order, each as BOS + text + EOS.
            var prefix = Path.Combine(plan.DataDir, source.ValidationPrefix);
            using var shard = new IndexedDataset(prefix);
            var heldOut = new List<string>();
            foreach (var text in texts)
                if (heldOut.Count < shard.Count && shard.Get(heldOut.Count).SequenceEqual([tokenizer.BosId!.Value, .. tokenizer.Encode(text), tokenizer.EosId]))
                    heldOut.Add(text);
            Assert.Equal(shard.Count, heldOut.Count);
            long expected = heldOut.Sum(t => (long)Encoding.UTF8.GetByteCount(t));

            // The whole held-out stream as one window: every token but the first (a BOS) is a target.
            var stream = (int)source.TokensValidation;
            var one = Data.Mixing.ValidationWindows.Sequences(prefix, stream - 1).ToList();
            Assert.Single(one);
            Assert.Equal(expected, BlendTrainingData.TargetBytes(one, tokenizer));
            // Windows of two tokens: a cut between every pair of tokens, inside multi-byte characters too, still adds up.
            var pairs = Data.Mixing.ValidationWindows.Sequences(prefix, 1).ToList();
            Assert.Equal(stream - 1, pairs.Count);
            Assert.Equal(expected, BlendTrainingData.TargetBytes(pairs, tokenizer));

            long decoded = Encoding.UTF8.GetByteCount(tokenizer.Decode(one[0].AsSpan(1)));
            long decodedPairs = pairs.Sum(s => (long)Encoding.UTF8.GetByteCount(tokenizer.Decode(s.AsSpan(1))));
            output.WriteLine($"{source.Name}: {heldOut.Count} held-out documents, {expected} bytes of text; decoded-text count {decoded} (one window), {decodedPairs} (two-token windows)");
        }
    }
}
