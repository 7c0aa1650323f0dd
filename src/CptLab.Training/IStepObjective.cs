using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Training;

/// <summary>
/// What a run trains on and how one optimizer step's loss is computed: next-token prediction over packed shards
/// (<see cref="NextTokenObjective"/>), supervised fine-tuning on chat data and DPO on preference pairs. The trainer owns
/// everything else — optimizer, schedule, precision, accumulation, checkpoints, exact resume, NaN guards, metrics — so
/// every objective gets the same guarantees.
/// </summary>
internal interface IStepObjective
{
    /// <summary>Called once the weights are in place, fresh or restored, before the first step (DPO computes or reloads its reference log-probs here).</summary>
    void Prepare(LlamaForCausalLM compute, bool resumed) { }

    /// <summary>Takes the next global batch from the data; returns its number of micro-batches.</summary>
    int BeginStep();

    /// <summary>
    /// Micro-batch <paramref name="micro"/>'s loss under autograd, divided so that the micro-batches' losses add up to
    /// the step's loss (a mean over the whole global batch, whatever its split into micro-batches).
    /// </summary>
    Tensor MicroLoss(LlamaForCausalLM model, int micro);

    /// <summary>After the step: the tokens it consumed and what it logs besides loss and gradient norm (e.g. DPO's rewards).</summary>
    StepStats EndStep();

    /// <summary>The position in the data, as JSON text; <see cref="RestoreState"/> continues exactly from it.</summary>
    string SaveState();

    void RestoreState(string state);

    /// <summary>Held-out scores of <paramref name="model"/> (under no_grad), by set name.</summary>
    Dictionary<string, ValidationResult> Validate(LlamaForCausalLM model);

    /// <summary>The tokenizer the data was tokenized with, for the model folders the run writes; null if unknown.</summary>
    string? TokenizerPath { get; }
}

/// <summary>One step's tokens (what the <c>tokens</c> count and tokens/s measure) and its extra metrics by name.</summary>
internal sealed record StepStats(long Tokens, IReadOnlyDictionary<string, double>? Metrics = null);
