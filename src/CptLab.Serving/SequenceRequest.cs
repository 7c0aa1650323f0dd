using System.Threading.Channels;
using CptLab.Core;
using CptLab.Model;

namespace CptLab.Serving;

/// <summary>
/// One sequence to generate, as the scheduler sees it: token ids in, token ids out. Text, chat templates and
/// stop strings are the caller's (<see cref="TextGeneration"/>).
/// </summary>
public sealed record SequenceRequest(IReadOnlyList<int> PromptIds, int MaxNewTokens, SamplingOptions Sampling)
{
    /// <summary>Generation ends after any of these ids (unless <see cref="IgnoreEos"/>).</summary>
    public IReadOnlySet<int> StopIds { get; init; } = new HashSet<int>();
    /// <summary>vLLM's ignore_eos: generate exactly <see cref="MaxNewTokens"/> tokens (benchmarks, tests).</summary>
    public bool IgnoreEos { get; init; }
    /// <summary>OpenAI's penalties on tokens generated so far: subtract frequency × count + presence × [count > 0].</summary>
    public double FrequencyPenalty { get; init; }
    public double PresencePenalty { get; init; }
    /// <summary>
    /// OpenAI's logit_bias: added to these ids' logits before the penalties and sampling (−100 bans a token, +100
    /// all but forces it). Reported logprobs are the raw model's, before the bias.
    /// </summary>
    public IReadOnlyDictionary<int, float> LogitBias { get; init; } = new Dictionary<int, float>();
    /// <summary>Report each generated token's log-probability and this many alternatives; null = no logprobs.</summary>
    public int? TopLogprobs { get; init; }
    /// <summary>Score the prompt too (completions' echo + logprobs): each prompt token's logprob and this many alternatives.</summary>
    public int? PromptLogprobs { get; init; }

    /// <summary>Checks what does not depend on the model; the scheduler checks the rest against it.</summary>
    public SequenceRequest Validate(int vocabSize, int context)
    {
        Sampling.Validate();
        if (PromptIds.Count == 0) throw new CptLabException("the prompt is empty");
        if (MaxNewTokens < 0) throw new CptLabException($"max new tokens {MaxNewTokens} must be ≥ 0");
        if (MaxNewTokens == 0 && PromptLogprobs is null) throw new CptLabException("max new tokens 0 only makes sense when scoring the prompt (echo with logprobs)");
        foreach (var id in PromptIds)
            if (id < 0 || id >= vocabSize) throw new CptLabException($"prompt token id {id} is outside the vocabulary [0, {vocabSize})");
        foreach (var (id, bias) in LogitBias)
        {
            if (id < 0 || id >= vocabSize) throw new CptLabException($"logit_bias token id {id} is outside the vocabulary [0, {vocabSize})");
            if (!float.IsFinite(bias)) throw new CptLabException($"logit_bias of token {id} is {bias}; it must be a finite number");
        }
        if (PromptIds.Count + MaxNewTokens > context)
            throw new CptLabException($"prompt ({PromptIds.Count}) + max new tokens ({MaxNewTokens}) exceeds the context of {context} positions");
        return this;
    }
}

/// <summary>A token's log-probability under the model (raw logits, before penalties and sampling filters) and the best alternatives.</summary>
public sealed record TokenLogprob(int Id, double Logprob, IReadOnlyList<(int Id, double Logprob)> Top);

/// <summary>What a sequence reports, in order: optionally the prompt's scores, then tokens, the last with a finish reason.</summary>
public abstract record SequenceEvent;

/// <summary>Logprobs of prompt tokens 1..n-1 given what precedes each (the first token has none).</summary>
public sealed record PromptScored(IReadOnlyList<TokenLogprob> Scores) : SequenceEvent;

public sealed record TokenGenerated(int Id, TokenLogprob? Logprob, FinishReason? Finish) : SequenceEvent;

/// <summary>The sequence ended without its last token: max new tokens was 0 (prompt scoring only).</summary>
public sealed record SequenceFinished(FinishReason Finish) : SequenceEvent;

/// <summary>The model failed on this sequence (the server keeps serving the others).</summary>
public sealed record SequenceFailed(string Message) : SequenceEvent;

/// <summary>A submitted sequence: its events, and a way to stop it early (which frees its KV cache).</summary>
public sealed class SequenceHandle
{
    readonly CancellationTokenSource _cancel;

    internal SequenceHandle(long id, ChannelReader<SequenceEvent> events, CancellationTokenSource cancel)
    {
        Id = id;
        Events = events;
        _cancel = cancel;
    }

    public long Id { get; }
    public ChannelReader<SequenceEvent> Events { get; }

    public void Cancel()
    {
        try { _cancel.Cancel(); } catch (ObjectDisposedException) { }
    }
}

/// <summary>The waiting queue is full: the HTTP layer answers 429.</summary>
public sealed class QueueFullException(int waiting) : Exception($"the server is busy: {waiting} requests are already waiting; retry later");

/// <summary>The model is still loading (503) or failed to load (503 with the reason).</summary>
public sealed class ModelNotReadyException(string message) : Exception(message);
