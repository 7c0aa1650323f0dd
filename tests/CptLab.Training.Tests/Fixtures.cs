using System.Text.Json;
using CptLab.Model;
using CptLab.Training;

namespace CptLab.Training.Tests;

/// <summary>
/// A deterministic stream of sequences cut from a fixed token array, cycling; its state is the cursor.
/// Tokens follow a simple learnable rule (next = (a·prev + c) mod V, with some noise) so losses can fall.
/// </summary>
sealed class ArrayData : ITrainingData
{
    readonly int[] _tokens;
    long _cursor;

    public ArrayData(int seqLen, int vocab, int length = 4096, int seed = 1, int validationSequences = 4, int a = 5, int c = 3)
    {
        SequenceLength = seqLen;
        var rng = new Random(seed);
        _tokens = new int[length];
        for (int i = 1; i < length; i++) _tokens[i] = rng.Next(10) == 0 ? rng.Next(vocab) : (_tokens[i - 1] * a + c) % vocab;
        var val = Enumerable.Range(0, validationSequences).Select(v => _tokens.Skip(v * 7).Take(seqLen + 1).ToArray()).ToList();
        Validation = [new ValidationSet("synthetic", val, TargetBytes: validationSequences * seqLen * 2L)];
    }

    public int SequenceLength { get; }
    public IReadOnlyList<ValidationSet> Validation { get; }
    public int ServedSequences { get; private set; }

    public int[] Next()
    {
        var seq = new int[SequenceLength + 1];
        for (int i = 0; i < seq.Length; i++) seq[i] = _tokens[(_cursor + i) % _tokens.Length];
        _cursor += SequenceLength;
        ServedSequences++;
        return seq;
    }

    public string SaveState() => JsonSerializer.Serialize(new { cursor = _cursor });
    public void RestoreState(string state) => _cursor = JsonDocument.Parse(state).RootElement.GetProperty("cursor").GetInt64();
}

/// <summary>
/// <paramref name="first"/>'s sequences until <paramref name="switchAfter"/> have been served, then
/// <paramref name="second"/>'s; validation is always <paramref name="first"/>'s. Training on another rule after the
/// switch makes the validation loss rise again, so the best checkpoint is an early one.
/// </summary>
sealed class SwitchingData(ArrayData first, ArrayData second, int switchAfter) : ITrainingData
{
    int _served;
    public int SequenceLength => first.SequenceLength;
    public IReadOnlyList<ValidationSet> Validation => first.Validation;
    public int[] Next() => _served++ < switchAfter ? first.Next() : second.Next();
    public string SaveState() => JsonSerializer.Serialize(new { served = _served, first = first.SaveState(), second = second.SaveState() });

    public void RestoreState(string state)
    {
        var root = JsonDocument.Parse(state).RootElement;
        _served = root.GetProperty("served").GetInt32();
        first.RestoreState(root.GetProperty("first").GetString()!);
        second.RestoreState(root.GetProperty("second").GetString()!);
    }
}

/// <summary>The same fixed batch of sequences, over and over (for overfitting).</summary>
sealed class FixedBatch(int[][] sequences) : ITrainingData
{
    int _next;
    public int SequenceLength => sequences[0].Length - 1;
    public IReadOnlyList<ValidationSet> Validation { get; } = [new ValidationSet("train", sequences, 0)];
    public int[] Next() => sequences[_next++ % sequences.Length];
    public string SaveState() => _next.ToString();
    public void RestoreState(string state) => _next = int.Parse(state);
}

static class Fixtures
{
    public static readonly LlamaConfig Tiny = Flavors.Get("debug") with { VocabSize = 64, MaxPositionEmbeddings = 64 };

    public static string ModelConfig()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-train-").FullName;
        var path = Path.Combine(dir, "model-config.json");
        Tiny.Save(path);
        return path;
    }

    public static TrainConfig Config(int seqLen = 16, int micro = 2, long globalTokens = 64, long budget = 64 * 12) => new TrainConfig
    {
        ModelConfigPath = ModelConfig(),
        ComputeDtype = "float32", // as named in the tests, on every CPU (dtype auto has its own tests)
        SeqLen = seqLen,
        MicroBatchSize = micro,
        GlobalBatchTokens = globalTokens,
        BudgetTokens = budget,
        Lr = 3e-3,
        WarmupTokens = 64 * 2,
        EvalEverySteps = 4,
        CheckpointEverySteps = 4,
        KeepLast = 10,
        MeasurePeakFlops = false,
        Threads = 1,
        Seed = 11,
    }.Validate();

    public static string RunDir() => Directory.CreateTempSubdirectory("cptlab-run-").FullName;

    public static byte[] FinalWeights(string runDir) => File.ReadAllBytes(Path.Combine(runDir, Trainer.FinalDir, HfCheckpoint.SingleFile));
}
