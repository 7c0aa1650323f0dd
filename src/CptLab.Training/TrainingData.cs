namespace CptLab.Training;

/// <summary>Held-out sequences of one source or language, and the UTF-8 bytes their target tokens stand for (for bits per byte).</summary>
public sealed record ValidationSet(string Name, IReadOnlyList<int[]> Sequences, long TargetBytes);

/// <summary>
/// What the trainer reads: packed training sequences of <see cref="SequenceLength"/> + 1 tokens, in a
/// deterministic order whose position is a small state a checkpoint stores, plus held-out validation sets.
/// </summary>
public interface ITrainingData
{
    int SequenceLength { get; }

    /// <summary>The next packed sequence (SequenceLength + 1 tokens: inputs and shifted targets).</summary>
    int[] Next();

    /// <summary>The position in the stream, as JSON text; <see cref="RestoreState"/> continues exactly from it.</summary>
    string SaveState();

    void RestoreState(string state);

    IReadOnlyList<ValidationSet> Validation { get; }

    /// <summary>The tokenizer the data was tokenized with (a file or folder), copied into the model folders a run writes; null if unknown.</summary>
    string? TokenizerPath => null;
}
