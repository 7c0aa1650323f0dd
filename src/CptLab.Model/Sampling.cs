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
        // The filters only ever keep a head of the tokens ordered by (logit desc, id asc): top-k's k, or the nucleus, which is
        // usually far shorter than the row. So order only the best m (a linear-time selection, then a sort of m), widening m
        // until the head provably holds everything kept; a 128k row then costs a pass, not a full sort.
        int[] order;
        int m = o.TopK > 0 ? Math.Min(o.TopK, n) : Math.Min(n, 64);
        double tailSum = 0; // exp-sum of the tokens past the ordered head (only when no top-k: they count in the normaliser)
        while (true)
        {
            order = BestFirst(scaled, m);
            if (o.TopK > 0 || m == n) break;
            // Without top-k, top-p and min-p filter the softmax over the whole row: is the head long enough?
            double head = 0, rest = 0;
            for (int r = 0; r < m; r++) head += Math.Exp(scaled[order[r]] - max);
            var inHead = new bool[n];
            foreach (var i in order) inHead[i] = true;
            for (int i = 0; i < n; i++) if (!inHead[i]) rest += Math.Exp(scaled[i] - max);
            double all = head + rest;
            double lastP = Math.Exp(scaled[order[m - 1]] - max) / all;
            bool nucleusInside = o.TopP >= 1.0 || head / all >= o.TopP;
            bool minPInside = o.MinP <= 0 || lastP < o.MinP * Math.Exp(scaled[order[0]] - max) / all;
            if (nucleusInside && (o.TopP < 1.0 || minPInside))
            {
                tailSum = rest;
                break;
            }
            m = Math.Min(n, m * 8);
        }
        int keep = order.Length;

        var probs = new double[n];
        double sum = tailSum;
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

    /// <summary>
    /// The indices of the <paramref name="m"/> largest values ordered by (value desc, index asc) — the head of a full sort of
    /// the row with that order — found by a selection of the m-th largest value, then a sort of the m (ties at the threshold
    /// go to the lowest indices, as the full order has them).
    /// </summary>
    static int[] BestFirst(double[] values, int m)
    {
        int n = values.Length;
        if (m >= n)
        {
            var all = Enumerable.Range(0, n).ToArray();
            Array.Sort(all, (a, b) => values[b].CompareTo(values[a]) is var c && c != 0 ? c : a.CompareTo(b));
            return all;
        }
        var copy = (double[])values.Clone();
        double threshold = Select(copy, n - m); // the m-th largest: n − m values are ≤ it in sorted ascending order
        var head = new List<int>(m);
        for (int i = 0; i < n; i++) if (values[i] > threshold) head.Add(i);
        for (int i = 0; i < n && head.Count < m; i++) if (values[i] == threshold) head.Add(i);
        head.Sort((a, b) => values[b].CompareTo(values[a]) is var c && c != 0 ? c : a.CompareTo(b));
        return [.. head];
    }

    /// <summary>The k-th smallest value (0-based) of <paramref name="a"/>, reordering it (Hoare's quickselect, median-of-three).</summary>
    static double Select(double[] a, int k)
    {
        int lo = 0, hi = a.Length - 1;
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            double pivot = Median(a[lo], a[mid], a[hi]);
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j) { (a[i], a[j]) = (a[j], a[i]); i++; j--; }
            }
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else return a[k];
        }
        return a[k];
    }

    static double Median(double x, double y, double z) => Math.Max(Math.Min(x, y), Math.Min(Math.Max(x, y), z));

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
}
