using CptLab.Core;

namespace CptLab.Training;

public enum ScheduleKind { Cosine, Wsd, Constant }

public enum AnnealShape { Linear, Cosine, Exponential, OneMinusSqrt }

/// <summary>
/// Learning rate as a pure function of the optimizer step (0-based), so that a resumed run and a logged run
/// agree exactly. All kinds start with a linear warmup from <see cref="WarmupInitLr"/> to the peak — 0 for
/// pre-training; for continual pre-training, re-warming starts wherever the caller sets it (e.g. the base
/// model's final LR, or 0).
/// </summary>
/// <param name="Kind">Cosine: warmup, then cosine decay to min over the rest. Wsd: warmup, stable at the peak,
/// then a decay over the last <see cref="DecayFraction"/> of the steps with the chosen <see cref="Anneal"/>
/// shape. Constant: warmup, then the peak.</param>
public sealed record LrSchedule(
    ScheduleKind Kind,
    double PeakLr,
    long TotalSteps,
    long WarmupSteps = 0,
    double MinLrRatio = 0.1,
    double DecayFraction = 0.2,
    AnnealShape Anneal = AnnealShape.Linear,
    double WarmupInitLr = 0.0)
{
    public double MinLr => PeakLr * MinLrRatio;

    public LrSchedule Validate(string source = "schedule")
    {
        if (!(PeakLr > 0) || double.IsInfinity(PeakLr)) throw new ConfigException(source, "lr", $"{PeakLr} must be a positive number");
        if (TotalSteps <= 0) throw new ConfigException(source, "total steps", $"{TotalSteps} must be positive (is the token budget smaller than one global batch?)");
        if (WarmupSteps < 0 || WarmupSteps > TotalSteps) throw new ConfigException(source, "warmup", $"{WarmupSteps} steps is outside [0, {TotalSteps}]");
        if (!(MinLrRatio >= 0 && MinLrRatio <= 1)) throw new ConfigException(source, "min_lr_ratio", $"{MinLrRatio} must be in [0, 1]");
        if (!(DecayFraction > 0 && DecayFraction <= 1)) throw new ConfigException(source, "decay_fraction", $"{DecayFraction} must be in (0, 1]");
        if (Kind == ScheduleKind.Wsd && Anneal == AnnealShape.Exponential && MinLrRatio == 0)
            throw new ConfigException(source, "min_lr_ratio", "exponential anneal needs a positive minimum");
        if (!(WarmupInitLr >= 0)) throw new ConfigException(source, "warmup_init_lr", $"{WarmupInitLr} must be ≥ 0");
        return this;
    }

    /// <summary>The learning rate of optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        if (step < WarmupSteps)
            return WarmupInitLr + (PeakLr - WarmupInitLr) * (step + 1) / WarmupSteps;
        switch (Kind)
        {
            case ScheduleKind.Constant:
                return PeakLr;
            case ScheduleKind.Cosine:
            {
                long span = Math.Max(1, TotalSteps - WarmupSteps - 1);
                double p = Math.Min(1.0, (double)(step - WarmupSteps) / span);
                return MinLr + (PeakLr - MinLr) * 0.5 * (1 + Math.Cos(Math.PI * p));
            }
            default:
            {
                long decaySteps = Math.Max(1, (long)Math.Round(DecayFraction * TotalSteps));
                long decayStart = Math.Max(WarmupSteps, TotalSteps - decaySteps);
                if (step < decayStart) return PeakLr;
                // p runs from 1/decaySteps at the first decay step to 1 at the last step.
                double p = Math.Min(1.0, (double)(step - decayStart + 1) / (TotalSteps - decayStart));
                return Anneal switch
                {
                    AnnealShape.Linear => PeakLr - (PeakLr - MinLr) * p,
                    AnnealShape.Cosine => MinLr + (PeakLr - MinLr) * 0.5 * (1 + Math.Cos(Math.PI * p)),
                    AnnealShape.Exponential => PeakLr * Math.Pow(MinLr / PeakLr, p),
                    _ => MinLr + (PeakLr - MinLr) * (1 - Math.Sqrt(p)),
                };
            }
        }
    }
}
