namespace CptLab.Eval.Backends;

/// <summary>lm-eval's loglikelihood request: the log-probability of <see cref="Continuation"/> after <see cref="Context"/>.</summary>
public sealed record LoglikelihoodRequest(string Context, string Continuation);

/// <summary>The summed log-probability of the continuation's tokens, whether each was the greedy choice, and their count.</summary>
public sealed record LoglikelihoodResult(double LogLikelihood, bool IsGreedy, int Tokens);

/// <summary>lm-eval's generate_until request: text after <see cref="Context"/>, cut before the first stop string.</summary>
public sealed record GenerateUntilRequest(string Context, IReadOnlyList<string> Until, int MaxGenToks)
{
    /// <summary>Null = greedy (lm-eval's do_sample false). Otherwise temperature / top_p and a seed of this request's own,
    /// so a sample does not depend on the batch it ran in.</summary>
    public Model.SamplingOptions? Sampling { get; init; }
}

/// <summary>How far a backend has got with a list of requests.</summary>
public sealed record EvalProgress(string Stage, int Done, int Total);

/// <summary>
/// What the evaluator needs of a model, as lm-eval's LM class: log-likelihoods of continuations and greedy generation
/// until a stop string. Implemented in-process (<see cref="LocalModel"/>); an OpenAI-API backend (/v1/completions
/// with echo + logprobs) implements the same contract. Results come back in request order.
/// </summary>
public interface IEvalModel : IDisposable
{
    /// <summary>What results.json records as the model (a folder, or a URL and model name).</summary>
    string Name { get; }

    IReadOnlyList<LoglikelihoodResult> Loglikelihood(IReadOnlyList<LoglikelihoodRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default);

    IReadOnlyList<string> GenerateUntil(IReadOnlyList<GenerateUntilRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default);

    /// <summary>
    /// lm-eval's loglikelihood_rolling: the summed log-probability of every token of each whole text (tokenized without
    /// BOS; the first token predicted from the prefix token BOS), over rolling windows of the backend's maximum length
    /// (<see cref="RollingWindows"/>). A backend that cannot score whole texts leaves this default.
    /// </summary>
    IReadOnlyList<LoglikelihoodResult> LoglikelihoodRolling(IReadOnlyList<string> texts, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default) =>
        throw new Core.CptLabException($"{Name}: this backend does not score whole documents (loglikelihood_rolling); use the in-process backend (--model DIR)");
}
