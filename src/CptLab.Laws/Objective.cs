using System.Text.Json.Serialization;

namespace CptLab.Laws;

/// <summary>
/// What "best (ALMR, LR)" means. Every objective is computed from two predicted losses: the target
/// language's and the original language's, plus the base model's original-language loss (forgetting is the
/// increase over it). Lower is better. A constrained objective is NaN where its constraint fails.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(TargetLossObjective), "target_loss")]
[JsonDerivedType(typeof(ForgettingObjective), "forgetting")]
[JsonDerivedType(typeof(WeightedObjective), "weighted")]
[JsonDerivedType(typeof(ConstrainedObjective), "constrained")]
public abstract record Objective
{
    public abstract double Evaluate(double targetLoss, double originalLoss, double originalBase);

    /// <summary>Whether the objective reads the base model's original-language loss.</summary>
    [JsonIgnore] public virtual bool NeedsBase => true;

    public abstract string Describe();

    public static Objective TargetLoss() => new TargetLossObjective();
    public static Objective Forgetting() => new ForgettingObjective();
    public static Objective Weighted(double targetWeight, double forgettingWeight) => new WeightedObjective(targetWeight, forgettingWeight);
    public static Objective Constrained(double maxForgetting) => new ConstrainedObjective(maxForgetting);
}

/// <summary>Target-language validation loss alone.</summary>
public sealed record TargetLossObjective : Objective
{
    public override double Evaluate(double targetLoss, double originalLoss, double originalBase) => targetLoss;
    public override bool NeedsBase => false;
    public override string Describe() => "target-language validation loss";
}

/// <summary>Original-language forgetting: its loss minus the base model's.</summary>
public sealed record ForgettingObjective : Objective
{
    public override double Evaluate(double targetLoss, double originalLoss, double originalBase) => originalLoss - originalBase;
    public override string Describe() => "original-language forgetting (loss increase over the base model)";
}

/// <summary><c>TargetWeight·L_target + ForgettingWeight·(L_original − L_original,base)</c>.</summary>
public sealed record WeightedObjective(double TargetWeight, double ForgettingWeight) : Objective
{
    public override double Evaluate(double targetLoss, double originalLoss, double originalBase) =>
        TargetWeight * targetLoss + ForgettingWeight * (originalLoss - originalBase);
    public override string Describe() => $"{TargetWeight:0.###}·target loss + {ForgettingWeight:0.###}·forgetting";
}

/// <summary>Target loss, subject to forgetting ≤ <see cref="MaxForgetting"/> (NaN where it is exceeded).</summary>
public sealed record ConstrainedObjective(double MaxForgetting) : Objective
{
    public override double Evaluate(double targetLoss, double originalLoss, double originalBase) =>
        originalLoss - originalBase <= MaxForgetting ? targetLoss : double.NaN;
    public override string Describe() => $"target loss subject to forgetting ≤ {MaxForgetting:0.####}";
}
