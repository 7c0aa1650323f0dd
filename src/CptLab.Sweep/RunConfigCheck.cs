using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Sweep;

/// <summary>
/// The runs of one sweep are made with one `cptlab train` config but for the keys that differ per cell. The
/// fingerprint covers the spec as written, not the defaults a CptLab version fills in, so a default that changed
/// between versions (optimizer.decay_embeddings became true) would make a resumed sweep's new runs differ from its
/// earlier ones without a word. The runner compares each new run's config with an earlier run's (as the store
/// recorded it), and accepts a changed `train:` section when it still makes that config — the way to keep an old
/// sweep as it was is to write the old default out.
/// </summary>
static class RunConfigCheck
{
    /// <summary>What differs between the cells of one sweep, or is kept the same by the runner itself.</summary>
    static readonly string[] PerCell = ["optimizer.lr", "data.mixture", "seed", "threads", "model.dtype", "resolved"];

    /// <summary>A run of the sweep that has been started (so the store holds its config), other than <paramref name="except"/>.</summary>
    public static RunRecord? Earlier(SweepStore store, string? except = null) =>
        store.Runs().FirstOrDefault(r => r.Config.Length > 0 && r.Id != except);

    /// <summary>
    /// Throws when <paramref name="config"/> differs from <paramref name="earlier"/>'s config in a key both have (a key
    /// the earlier run's CptLab did not write yet is taken to have meant its default then).
    /// </summary>
    public static void Check(RunRecord earlier, JsonObject config, string what)
    {
        var before = JsonNode.Parse(earlier.Config);
        if (JsonPath.FirstDifference(before, config, ignore: (path, old, _) => PerCell.Contains(path) || old is null) is not { } key) return;
        var was = JsonPath.Show(JsonPath.Find(before, key));
        throw new CptLabException(
            $"{what} would be made with '{key}' = {JsonPath.Show(JsonPath.Find(config, key))}, but the sweep's earlier runs (e.g. {earlier.Id}) were made with {was}: " +
            $"the spec's train: section or a CptLab default changed since they ran. To continue this sweep as it was, set train.{key}: {was} in the spec; or start a new sweep with --dir");
    }
}
