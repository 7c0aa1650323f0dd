using CptLab.Core;

namespace CptLab.Model;

/// <summary>
/// How the next token is chosen. Temperature 0 means greedy. The filters apply in Hugging Face's order:
/// repetition penalty, temperature, top-k, top-p, min-p; then a draw from a seeded generator.
/// </summary>
public sealed record SamplingOptions
{
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep the k most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of tokens whose probabilities add up to at least p; 1 keeps all.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Drop tokens less likely than min_p times the most likely one; 0 keeps all.</summary>
    public double MinP { get; init; }
    /// <summary>Divide positive logits (multiply negative ones) of tokens already seen by this; 1 is off.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    public ulong Seed { get; init; }

    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    public bool IsGreedy => Temperature == 0;

    public SamplingOptions Validate()
    {
        if (!(Temperature >= 0) || double.IsInfinity(Temperature)) throw new CptLabException($"temperature {Temperature} must be ≥ 0 (0 = greedy)");
        if (TopK < 0) throw new CptLabException($"top-k {TopK} must be ≥ 0 (0 = off)");
        if (!(TopP > 0 && TopP <= 1)) throw new CptLabException($"top-p {TopP} must be in (0, 1]");
        if (!(MinP >= 0 && MinP < 1)) throw new CptLabException($"min-p {MinP} must be in [0, 1)");
        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty)) throw new CptLabException($"repetition penalty {RepetitionPenalty} must be > 0 (1 = off)");
        return this;
    }
}

/// <summary>
/// Picks tokens from a row of logits, on the CPU in managed code: a 128k-entry row costs well under a
/// millisecond to filter, and a managed generator makes seeded sampling reproducible on any device.
/// </summary>
public sealed class TokenSampler
{
    readonly SamplingOptions _options;
    readonly SplitMix64 _rng;
    readonly HashSet<int> _seen = [];

    public TokenSampler(SamplingOptions options, IEnumerable<int>? context = null)
    {
        _options = options.Validate();
        _rng = new SplitMix64(options.Seed);
        if (context is not null) _seen.UnionWith(context);
    }

    /// <summary>Chooses the next token from the logits (modified in place) and remembers it for the repetition penalty.</summary>
    public int Next(Span<float> logits)
    {
        int token = Choose(logits);
        _seen.Add(token);
        return token;
    }

    int Choose(Span<float> logits)
    {
        if (_options.RepetitionPenalty != 1.0)
        {
            float penalty = (float)_options.RepetitionPenalty;
            foreach (var id in _seen)
                if ((uint)id < (uint)logits.Length)
                    logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
        }
        if (_options.IsGreedy) return ArgMax(logits);

        var probs = Probabilities(logits, _options);
        double u = _rng.NextDouble(), cumulative = 0;
        int last = -1;
        for (int i = 0; i < probs.Length; i++)
        {
            if (probs[i] <= 0) continue;
            last = i;
            cumulative += probs[i];
            if (u < cumulative) return i;
        }
        return last; // u fell into the rounding slack at the end
    }

    /// <summary>
    /// The distribution the sampler draws from, after temperature, top-k, top-p and min-p (no repetition
    /// penalty): probabilities summing to 1, zero for filtered tokens.
    /// </summary>
    public static double[] Probabilities(ReadOnlySpan<float> logits, SamplingOptions o)
    {
        int n = logits.Length;
        var scaled = new double[n];
        double max = double.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            scaled[i] = logits[i] / o.Temperature;
            if (scaled[i] > max) max = scaled[i];
        }
        if (double.IsNegativeInfinity(max) || double.IsNaN(max)) throw new CptLabException("cannot sample: every logit is -inf or NaN");

        if (o.TopK <= 0 && o.TopP >= 1.0 && o.MinP <= 0)
        {
            // No filter: the plain softmax, without sorting the whole row.
            var plain = new double[n];
            double total0 = 0;
            for (int i = 0; i < n; i++) total0 += plain[i] = Math.Exp(scaled[i] - max);
            for (int i = 0; i < n; i++) plain[i] /= total0;
            return plain;
        }
        var order = Enumerable.Range(0, n).ToArray();
        Array.Sort(order, (a, b) => scaled[b].CompareTo(scaled[a]) is var c && c != 0 ? c : a.CompareTo(b));
        int keep = o.TopK > 0 ? Math.Min(o.TopK, n) : n;

        var probs = new double[n];
        double sum = 0;
        for (int r = 0; r < keep; r++)
        {
            int i = order[r];
            probs[i] = Math.Exp(scaled[i] - max);
            sum += probs[i];
        }
        for (int r = 0; r < keep; r++) probs[order[r]] /= sum;

        if (o.TopP < 1.0)
        {
            double cumulative = 0;
            int r = 0;
            for (; r < keep; r++)
            {
                cumulative += probs[order[r]];
                if (cumulative >= o.TopP) { r++; break; }
            }
            for (int q = r; q < keep; q++) probs[order[q]] = 0;
            keep = Math.Max(r, 1);
        }
        if (o.MinP > 0)
        {
            double threshold = o.MinP * probs[order[0]];
            for (int r = 1; r < keep; r++)
                if (probs[order[r]] < threshold) probs[order[r]] = 0;
        }
        double total = 0;
        for (int r = 0; r < keep; r++) total += probs[order[r]];
        for (int r = 0; r < keep; r++) probs[order[r]] /= total;
        return probs;
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
}
