namespace CptLab.Training.PostTraining;

/// <summary>
/// Packs examples into rows of at most <c>capacity</c> tokens, best-fit decreasing (each example, longest first, into
/// the fullest row it still fits, else a new row). The rows come out in packing order (longest first); <see cref="RowStream"/>
/// shuffles them for every epoch. Examples are never split: packing is a speed choice and changes no example's loss.
/// </summary>
public static class SequencePacker
{
    /// <returns>Rows as lists of example indices (into <paramref name="lengths"/>).</returns>
    public static List<int[]> Pack(IReadOnlyList<int> lengths, int capacity)
    {
        var order = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ThenBy(i => i).ToArray();
        var rows = new List<List<int>>();
        var free = new List<int>();
        foreach (var i in order)
        {
            if (lengths[i] > capacity) throw new ArgumentException($"example {i} has {lengths[i]} tokens, more than a row's {capacity}");
            int best = -1;
            for (int r = 0; r < rows.Count; r++)
                if (free[r] >= lengths[i] && (best < 0 || free[r] < free[best])) best = r;
            if (best < 0) { rows.Add([]); free.Add(capacity); best = rows.Count - 1; }
            rows[best].Add(i);
            free[best] -= lengths[i];
        }
        return rows.Select(r => r.ToArray()).ToList();
    }

    /// <summary>One example per row: plain (padded) batches.</summary>
    public static List<int[]> OnePerRow(int count) => Enumerable.Range(0, count).Select(i => new[] { i }).ToList();

    /// <summary>Fisher–Yates with the given generator (System.Random with a seed gives the same sequence on every platform and version).</summary>
    internal static void Shuffle<T>(IList<T> list, Random rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
