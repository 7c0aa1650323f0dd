namespace CptLab.Serving;

/// <summary>
/// OpenAI's presence and frequency penalties over the tokens generated so far (not the prompt):
/// logit[t] −= frequency × count[t] + presence × [count[t] &gt; 0]. Values in [−2, 2]; 0 is off.
/// Repetition penalty (multiplicative, over prompt and output) is the sampler's, in CptLab.Model.
/// </summary>
public sealed class LogitPenalties(double frequency, double presence)
{
    readonly Dictionary<int, int> _counts = [];

    public bool IsOff => frequency == 0 && presence == 0;

    public void Apply(Span<float> logits)
    {
        if (IsOff) return;
        foreach (var (id, count) in _counts)
            if ((uint)id < (uint)logits.Length)
                logits[id] -= (float)(frequency * count + presence);
    }

    public void Record(int token) => _counts[token] = _counts.GetValueOrDefault(token) + 1;
}
