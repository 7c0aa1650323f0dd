using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Training.PostTraining;

/// <summary>The preference losses, by TRL's <c>loss_type</c> names (DPOTrainer; SimPO from CPOTrainer, ORPO from ORPOTrainer).</summary>
public enum DpoLossType { Sigmoid, Ipo, Hinge, Robust, Simpo, Orpo }

/// <param name="Beta">β: the strength of the reference anchor (DPO), the reward scale (SimPO), the odds-ratio weight λ (ORPO).</param>
/// <param name="LabelSmoothing">ε, the assumed share of flipped preference labels (sigmoid, robust, simpo).</param>
/// <param name="SimpoGamma">γ, SimPO's target reward margin.</param>
/// <param name="RpoAlpha">Weight of an SFT term on the chosen answer (TRL's rpo_alpha, LLaMA-Factory's pref_ftx); ORPO always has it at 1.</param>
public sealed record DpoSettings(DpoLossType Loss = DpoLossType.Sigmoid, double Beta = 0.1, double LabelSmoothing = 0, double SimpoGamma = 0.5, double RpoAlpha = 0)
{
    /// <summary>SimPO and ORPO use no reference model.</summary>
    public bool ReferenceFree => Loss is DpoLossType.Simpo or DpoLossType.Orpo;

    /// <summary>Log-probabilities averaged over the completion's tokens (where the method defines its loss so), else summed.</summary>
    public bool AveragesLogps => Loss is DpoLossType.Ipo or DpoLossType.Simpo or DpoLossType.Orpo;

    /// <summary>Weight of the NLL term on the chosen completion.</summary>
    public double NllWeight => Loss == DpoLossType.Orpo ? 1.0 + RpoAlpha : RpoAlpha;
}

/// <summary>
/// Per-pair losses and implicit rewards from the completions' log-probabilities, as TRL computes them. Inputs are (N)
/// tensors: the policy's and (for reference-based losses) the reference's log-probabilities of the chosen and rejected
/// completions, summed or averaged per <see cref="DpoSettings.AveragesLogps"/>. With h = (π_c − π_r) − (ref_c − ref_r):
/// sigmoid −(1−ε)·logσ(βh) − ε·logσ(−βh); robust ((−(1−ε)·logσ(βh) + ε·logσ(−βh)) / (1−2ε); hinge relu(1 − βh);
/// ipo (h − 1/(2β))²; rewards β(π − ref). SimPO: h = π_c − π_r − γ/β in the sigmoid form, rewards βπ. ORPO: −β·logσ(log
/// odds(π_c) − log odds(π_r)) with log odds(p) = p − log(1 − e^p), rewards βπ (its NLL term is added by the caller).
/// </summary>
public static class DpoLoss
{
    public static (Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards) Compute(DpoSettings s, Tensor policyChosen, Tensor policyRejected,
                                                                                         Tensor? refChosen, Tensor? refRejected)
    {
        double beta = s.Beta, eps = s.LabelSmoothing;
        if (s.ReferenceFree)
        {
            var chosenRewards = (beta * policyChosen).detach();
            var rejectedRewards = (beta * policyRejected).detach();
            if (s.Loss == DpoLossType.Simpo)
            {
                var h = policyChosen - policyRejected - s.SimpoGamma / beta;
                return (-(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h), chosenRewards, rejectedRewards);
            }
            // ORPO: log odds of each completion's (average) probability; log(1 − e^p) for p < 0 as log1p(−exp(p)).
            var logOdds = (policyChosen - policyRejected) - (log1p(-exp(policyChosen)) - log1p(-exp(policyRejected)));
            return (-beta * F.logsigmoid(logOdds), chosenRewards, rejectedRewards);
        }
        if (refChosen is null || refRejected is null) throw new ArgumentException($"loss {s.Loss} needs the reference log-probabilities");
        var logits = (policyChosen - policyRejected) - (refChosen - refRejected);
        var losses = s.Loss switch
        {
            DpoLossType.Sigmoid => -(1 - eps) * F.logsigmoid(beta * logits) - eps * F.logsigmoid(-beta * logits),
            DpoLossType.Robust => (-(1 - eps) * F.logsigmoid(beta * logits) + eps * F.logsigmoid(-beta * logits)) / (1 - 2 * eps),
            DpoLossType.Hinge => F.relu(1 - beta * logits),
            DpoLossType.Ipo => (logits - 1 / (2 * beta)).square(),
            _ => throw new ArgumentOutOfRangeException(nameof(s), s.Loss, "unknown loss"),
        };
        return (losses, (beta * (policyChosen - refChosen)).detach(), (beta * (policyRejected - refRejected)).detach());
    }
}
