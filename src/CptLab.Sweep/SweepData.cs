using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Laws;

namespace CptLab.Sweep;

/// <summary>
/// A sweep folder as the laws see it: the spec it was run with (from the database) and its results as
/// <see cref="SweepResults"/> — per-language final losses and curves of the finished runs, failed runs with
/// their error (the fit leaves them out), and the base model's loss per language.
/// </summary>
public static class SweepData
{
    /// <summary>The resolved spec stored by the last `sweep run` in <paramref name="sweepDir"/>.</summary>
    public static SweepSpec Spec(SweepStore store)
    {
        var json = store.GetMeta("spec") ?? throw new CptLabException($"{store.Path} holds no spec: the sweep was never started");
        var node = JsonNode.Parse(json) as JsonObject ?? throw new CorruptFileException(store.Path, "the stored spec is not a JSON object");
        return SweepSpec.FromJson(node, store.GetMeta("spec_source") ?? store.Path, Path.GetDirectoryName(store.Path)!, checkFiles: false);
    }

    /// <summary>Every recorded run (done or failed), in (ALMR, LR, seed) order; pending and running runs are not results yet.</summary>
    public static SweepResults Results(SweepStore store, SweepSpec spec)
    {
        var points = new List<SweepPoint>();
        foreach (var run in store.Runs())
        {
            if (run.Status is RunStatus.Pending or RunStatus.Running) continue;
            var final = run.Status == RunStatus.Done ? store.FinalByLanguage(run.Id) : new Dictionary<string, double>();
            var curve = store.Curve(run.Id).GroupBy(c => (c.Step, c.Tokens))
                .Select(g => new CurvePoint(g.Key.Tokens, RunMetrics.ByLanguage(g, spec.Languages).Where(kv => double.IsFinite(kv.Value)).ToDictionary()))
                .Where(c => c.Loss.Count > 0).ToList();
            var error = run.Status == RunStatus.Failed ? run.Error ?? "failed" : null;
            if (error is null && final.FirstOrDefault(kv => !double.IsFinite(kv.Value) || kv.Value <= 0) is { Key: not null } bad)
                error = $"non-finite final '{bad.Key}' loss ({bad.Value})";
            points.Add(new SweepPoint(run.Almr, run.Lr, (int)run.Seed, final, curve, error));
        }
        var baseLoss = RunMetrics.ByLanguage(store.BaseLosses(), spec.Languages).Where(kv => double.IsFinite(kv.Value)).ToDictionary();
        return new SweepResults(points, baseLoss, spec.TargetLanguage, spec.OriginalLanguage);
    }
}
