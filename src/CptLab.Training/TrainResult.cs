namespace CptLab.Training;

/// <summary>Loss and bits per byte of one validation set.</summary>
public sealed record ValidationResult(double Loss, double BitsPerByte, long Tokens)
{
    /// <summary>Further held-out metrics by name (DPO: rewards/accuracies, rewards/margins, …).</summary>
    public IReadOnlyDictionary<string, double>? Metrics { get; init; }
}

public sealed record TrainResult(long Steps, long Tokens, string FinalModelDir, IReadOnlyDictionary<string, ValidationResult> Validation, bool Interrupted);
