using CptLab.Data.Shards;

namespace CptLab.Data.Mixing;

/// <summary>
/// A source's held-out documents as evaluation sequences: documents in stored order, concatenated, cut into
/// windows of SeqLen + 1 tokens that overlap by one (as training sequences are); the partial tail is dropped.
/// Always the same sequences, so validation losses are comparable across runs and checkpoints.
/// </summary>
public static class ValidationWindows
{
    public static IEnumerable<int[]> Sequences(string prefix, int seqLen, int maxSequences = int.MaxValue)
    {
        using var data = new IndexedDataset(prefix);
        var window = new int[seqLen + 1];
        var filled = 0;
        var produced = 0;
        for (var d = 0; d < data.Count && produced < maxSequences; d++)
        {
            var tokens = data.Get(d);
            var at = 0;
            while (at < tokens.Length)
            {
                var n = Math.Min(tokens.Length - at, window.Length - filled);
                Array.Copy(tokens, at, window, filled, n);
                filled += n;
                at += n;
                if (filled < window.Length) continue;
                yield return (int[])window.Clone();
                if (++produced == maxSequences) yield break;
                window[0] = window[^1];
                filled = 1;
            }
        }
    }

    /// <summary>Validation shard prefix of every source of a blend, by source name.</summary>
    public static IReadOnlyDictionary<string, string> Prefixes(BlendManifest plan) =>
        plan.Sources.ToDictionary(s => s.Name, s => Path.Combine(plan.DataDir, s.ValidationPrefix));
}
