using CptLab.Model;

namespace CptLab.Training;

/// <summary>One line of progress, reported after every optimizer step (and for events).</summary>
public sealed record TrainProgress(long Step, long TotalSteps, long Tokens, double Lr, double Loss, double GradNorm, double TokensPerSecond, double Mfu)
{
    /// <summary>What the objective logs besides the loss (DPO: rewards/accuracies, rewards/margins, …), by TRL's names.</summary>
    public IReadOnlyDictionary<string, double>? Metrics { get; init; }
}

/// <summary>Optional observers and test hooks of a run.</summary>
public sealed class TrainerHooks
{
    public IProgress<TrainProgress>? Progress { get; init; }
    /// <summary>Notable events (resume, skipped step, rollback, checkpoint), one line each.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Fault injection for tests: when it returns true for a step, that step's loss is made NaN.</summary>
    public Func<long, bool>? PoisonLoss { get; init; }
    /// <summary>Fault injection for tests: called after a step's update; may corrupt the weights.</summary>
    public Action<long, LlamaForCausalLM>? AfterUpdate { get; init; }
    /// <summary>Stops the run (as a kill would) once this returns true after a step.</summary>
    public Func<long, bool>? StopAfter { get; init; }
}
