namespace CptLab.Data.Mixing;

/// <summary>
/// Which source the next sequence comes from, so that after every k sequences each source i has had
/// n_i(k) sequences with |n_i(k) − w_i·k| &lt; 1 — over every prefix, not just at the end.
/// The obvious rule (take the source furthest behind) can drift past one sequence with several sources
/// (measured on the Data tests' 200 random blends of 2–8 sources: up to 1.078 sequences, 1.050 with six sources;
/// below one with up to four). This is Tijdeman's rule for the chairman assignment problem
/// (R. Tijdeman, 1980), which guarantees |n_i(k) − w_i·k| ≤ 1 − 1/(2(S−1)) for S active sources: among the
/// sources at least δ = 1/(2(S−1)) behind, take the one whose (n_i + 1 − δ)/w_i deadline comes first.
/// </summary>
public static class Apportionment
{
    /// <summary>The source of sequence k (1-based) of a segment, given each source's count n so far.</summary>
    public static int Next(IReadOnlyList<double> shares, IReadOnlyList<long> counts, long k)
    {
        var active = 0;
        foreach (var w in shares) if (w > 0) active++;
        if (active == 0) throw new InvalidOperationException("no source has a positive share");
        var delta = active > 1 ? 1.0 / (2.0 * (active - 1)) : 0.0;
        var best = -1;
        var bestDeadline = double.PositiveInfinity;
        for (var i = 0; i < shares.Count; i++)
        {
            var w = shares[i];
            if (w <= 0 || w * k - counts[i] < delta - 1e-9) continue;
            var deadline = (counts[i] + 1 - delta) / w;
            if (deadline < bestDeadline) { bestDeadline = deadline; best = i; }
        }
        if (best >= 0) return best;
        // Rounding can leave no one eligible at an exact tie; the most-behind source is then the right one.
        var most = double.NegativeInfinity;
        for (var i = 0; i < shares.Count; i++)
            if (shares[i] > 0 && shares[i] * k - counts[i] > most) { most = shares[i] * k - counts[i]; best = i; }
        return best;
    }

    /// <summary>Counts per source after <paramref name="sequences"/> steps from zero.</summary>
    public static long[] CountsAfter(IReadOnlyList<double> shares, long sequences)
    {
        var counts = new long[shares.Count];
        if (shares.All(s => s <= 0)) return counts;
        for (long k = 1; k <= sequences; k++) counts[Next(shares, counts, k)]++;
        return counts;
    }
}
