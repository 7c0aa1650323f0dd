namespace CptLab.Serving;

/// <summary>
/// What a request changes in a sequence's logits row before sampling, in this order:
/// <list type="number">
/// <item>OpenAI's logit_bias: logit[t] += bias[t] (values in [−100, 100]; −100 bans a token, +100 all but forces it);</item>
/// <item>OpenAI's presence and frequency penalties over the tokens generated so far (not the prompt):
/// logit[t] −= frequency × count[t] + presence × [count[t] &gt; 0]. Values in [−2, 2]; 0 is off.</item>
/// </list>
/// Repetition penalty (multiplicative, over prompt and output) is the sampler's, in CptLab.Model. The scheduler
/// takes logprobs from the row before <see cref="Apply"/>, so they are the model's own (vLLM's raw_logprobs).
/// </summary>
public sealed class LogitPenalties
{
    readonly double _frequency, _presence;
    readonly KeyValuePair<int, float>[] _bias;
    readonly Dictionary<int, int> _counts = [];

    public LogitPenalties(double frequency, double presence, IReadOnlyDictionary<int, float>? bias = null)
    {
        _frequency = frequency;
        _presence = presence;
        _bias = bias is null ? [] : [.. bias.Where(kv => kv.Value != 0)];
    }

    /// <summary>The request's logit_bias, frequency and presence penalties.</summary>
    public LogitPenalties(SequenceRequest request) : this(request.FrequencyPenalty, request.PresencePenalty, request.LogitBias) { }

    public bool IsOff => _frequency == 0 && _presence == 0 && _bias.Length == 0;

    public void Apply(Span<float> logits)
    {
        foreach (var (id, bias) in _bias)
            if ((uint)id < (uint)logits.Length)
                logits[id] += bias;
        if (_frequency == 0 && _presence == 0) return;
        foreach (var (id, count) in _counts)
            if ((uint)id < (uint)logits.Length)
                logits[id] -= (float)(_frequency * count + _presence);
    }

    public void Record(int token) => _counts[token] = _counts.GetValueOrDefault(token) + 1;
}
