namespace CptLab.Training.PostTraining;

/// <summary>Which post-training stage a config describes: its `sft:` or `dpo:` section.</summary>
public enum PostTrainStage { Sft, Dpo }

/// <summary>
/// The `sft:` or `dpo:` section of a train config (read and written through <see cref="TrainConfigKeys"/> like every
/// other key). Data files are chat conversations (SFT) or preference pairs (DPO) in the formats CptLab.Data.Chat reads.
/// </summary>
public sealed record PostTrainOptions
{
    public PostTrainStage Stage { get; init; }
    /// <summary>Training files (JSONL / JSON / Parquet, optionally .gz / .zst).</summary>
    public IReadOnlyList<string> Train { get; init; } = [];
    /// <summary>Held-out files; none: <see cref="ValidationFraction"/> of the training records, chosen by content hash.</summary>
    public IReadOnlyList<string> Validation { get; init; } = [];
    /// <summary>"auto" (detected from the first good record, and reported), "messages", "sharegpt", "alpaca".</summary>
    public string Format { get; init; } = "auto";
    public double ValidationFraction { get; init; }
    /// <summary>Longest example in tokens (LLaMA-Factory's cutoff_len); 0: data.seq_len.</summary>
    public int CutoffLen { get; init; }
    public TruncationMode Truncation { get; init; } = TruncationMode.InferSeqlen;
    /// <summary>Passes over the training set; 0: train for budget_tokens instead (counted in row capacity, seq_len per row).</summary>
    public double Epochs { get; init; } = 1;
    /// <summary>Held-out examples (or pairs) scored at each evaluation, at most.</summary>
    public int MaxValidation { get; init; } = 256;

    // SFT
    /// <summary>Several examples per row with a block-diagonal mask (default), or one per row, padded.</summary>
    public bool Packing { get; init; } = true;
    public bool TrainOnPrompt { get; init; }
    public bool MaskHistory { get; init; }

    // DPO
    public DpoLossType Loss { get; init; } = DpoLossType.Sigmoid;
    public double Beta { get; init; } = 0.1;
    public double LabelSmoothing { get; init; }
    public double SimpoGamma { get; init; } = 0.5;
    public double RpoAlpha { get; init; }

    public DpoSettings Dpo => new(Loss, Beta, LabelSmoothing, SimpoGamma, RpoAlpha);

    public string Section => Stage == PostTrainStage.Sft ? "sft" : "dpo";

    // Value equality over the file lists too (a record compares lists by reference), so a run resumed from its config.json is the same run.
    public bool Equals(PostTrainOptions? other) =>
        other is not null && Train.SequenceEqual(other.Train) && Validation.SequenceEqual(other.Validation) &&
        Rest() == other.Rest();

    public override int GetHashCode() => HashCode.Combine(Stage, Train.Count, Format, Loss, Beta);

    /// <summary>Every field but the file lists, as a tuple compared by value.</summary>
    (PostTrainStage, string, double, int, TruncationMode, double, int, bool, bool, bool, DpoLossType, double, double, double, double) Rest() =>
        (Stage, Format, ValidationFraction, CutoffLen, Truncation, Epochs, MaxValidation, Packing, TrainOnPrompt, MaskHistory, Loss, Beta, LabelSmoothing, SimpoGamma, RpoAlpha);
}
