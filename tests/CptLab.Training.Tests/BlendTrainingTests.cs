using System.Text;
using CptLab.Data.Prepare;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Training;

namespace CptLab.Training.Tests;

public class BlendTrainingTests
{
    [Fact]
    public void Trains_on_a_real_blend_with_per_language_validation_and_bits_per_byte()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-blend-").FullName;
        var (blend, vocab) = TinyBlend.Create(dir, almr: 0.5, seqLen: 32, tokens: 64 * 32 * 2);
        using var data = BlendTrainingData.Open(blend, 32, maxValidationSequences: 8);
        Assert.Equal(["en", "zh"], data.Validation.Select(v => v.Name).Order());

        // Bytes counted independently: decode each window's targets and count UTF-8 bytes.
        var tokenizer = TextTokenizer.Load(PrepareManifest.Load(data.Plan.DataDir).Tokenizer);
        foreach (var v in data.Validation)
        {
            long bytes = v.Sequences.Sum(s => (long)Encoding.UTF8.GetByteCount(tokenizer.Decode(s.AsSpan(1))));
            Assert.Equal(bytes, v.TargetBytes);
            Assert.True(v.Sequences.Count is > 0 and <= 8);
        }

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
        foreach (var (name, v) in result.Validation)
        {
            Assert.True(v.Loss < uniform - 1.0, $"{name}: validation loss {v.Loss:F3} should be well under ln V = {uniform:F3}");
            var set = data.Validation.Single(s => s.Name == name);
            Assert.Equal(v.Loss * v.Tokens / Math.Log(2) / set.TargetBytes, v.BitsPerByte, 9);
        }
    }
}
