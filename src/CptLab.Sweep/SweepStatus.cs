using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CptLab.Training;

namespace CptLab.Sweep;

/// <summary>One line of `cptlab sweep status`.</summary>
public sealed record RunStatusRow(
    string Id, double Almr, double Lr, long Seed, string Status, long Step, long TotalSteps, int Attempts, double WallSeconds,
    double TargetLoss, double OriginalLoss, string? Error);

public sealed record SweepProgress(
    IReadOnlyList<RunStatusRow> Rows, int Done, int Failed, int Running, int Pending, int GridSize, bool Adaptive, string? AdaptiveStop,
    bool RunnerActive, string TargetLanguage, string OriginalLanguage);

/// <summary>
/// Where a sweep stands, read while a runner may be writing (the store is in WAL mode): each run's status,
/// its step (from its metrics.jsonl while it runs), attempts, wall time and final losses. A run the database
/// calls running while no runner holds the sweep is shown as "interrupted" (its runner died; it will resume).
/// </summary>
public static class SweepStatus
{
    public static SweepProgress Read(string sweepDir)
    {
        using var store = SweepStore.Open(sweepDir, create: false);
        var spec = SweepData.Spec(store);
        var active = RunnerLock.IsHeld(sweepDir);
        var rows = new List<RunStatusRow>();
        foreach (var r in store.Runs())
        {
            var status = r.Status.ToString().ToLowerInvariant();
            if (r.Status == RunStatus.Running && !active) status = "interrupted";
            var total = TotalSteps(r.Config);
            var step = r.Status == RunStatus.Done ? r.Steps ?? total : LastStep(r.RunDir);
            var final = r.Status == RunStatus.Done ? store.FinalByLanguage(r.Id) : new Dictionary<string, double>();
            rows.Add(new RunStatusRow(r.Id, r.Almr, r.Lr, r.Seed, status, step, total, r.Attempts, r.WallSeconds,
                final.GetValueOrDefault(spec.TargetLanguage, double.NaN), final.GetValueOrDefault(spec.OriginalLanguage, double.NaN), r.Error));
        }
        return new SweepProgress(rows, rows.Count(r => r.Status == "done"), rows.Count(r => r.Status == "failed"),
            rows.Count(r => r.Status is "running" or "interrupted"), rows.Count(r => r.Status == "pending"),
            spec.GridSize, spec.Adaptive, store.GetMeta("adaptive_stop"), active, spec.TargetLanguage, spec.OriginalLanguage);
    }

    /// <summary>The progress as plain text (a summary line and a fixed-width table), for logs and tests.</summary>
    public static string Format(SweepProgress p)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(Summary(p)).Append('\n');
        sb.Append(string.Format(ci, "{0,-34} {1,-12} {2,11} {3,8} {4,9} {5,9} {6,9}\n", "run", "status", "step", "attempts", "wall s", p.TargetLanguage, p.OriginalLanguage));
        foreach (var r in p.Rows)
            sb.Append(string.Format(ci, "{0,-34} {1,-12} {2,11} {3,8} {4,9:0.0} {5,9} {6,9}\n", r.Id, r.Status, $"{r.Step}/{r.TotalSteps}", r.Attempts, r.WallSeconds,
                double.IsFinite(r.TargetLoss) ? r.TargetLoss.ToString("F4", ci) : "-", double.IsFinite(r.OriginalLoss) ? r.OriginalLoss.ToString("F4", ci) : "-"));
        return sb.ToString();
    }

    public static string Summary(SweepProgress p)
    {
        var total = p.Rows.Count;
        var s = $"{p.Done} done, {p.Failed} failed, {p.Running} running, {p.Pending} pending of {total} runs";
        s += p.Adaptive ? $" (adaptive: {total} of a {p.GridSize}-run grid{(p.AdaptiveStop is { } stop ? $"; stopped: {stop}" : "")})" : $" (grid of {p.GridSize})";
        s += p.RunnerActive ? "; a runner is working on it" : "; no runner active";
        return s;
    }

    static long TotalSteps(string configJson)
    {
        if (string.IsNullOrEmpty(configJson)) return 0;
        try
        {
            var o = JsonNode.Parse(configJson);
            var budget = o?["budget_tokens"]?.GetValue<long>() ?? 0;
            var batch = o?["batch"]?["global_batch_tokens"]?.GetValue<long>() ?? 0;
            return batch > 0 ? budget / batch : 0;
        }
        catch (System.Text.Json.JsonException) { return 0; }
    }

    /// <summary>The last step in a run's metrics.jsonl (0 when it has none yet); a line being written is skipped.</summary>
    static long LastStep(string runDir)
    {
        var path = Path.Combine(runDir, Trainer.MetricsFileName);
        if (!File.Exists(path)) return 0;
        long step = 0;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(fs);
            while (reader.ReadLine() is { } line)
            {
                try { if (JsonNode.Parse(line)?["step"]?.GetValue<long>() is { } s) step = s; }
                catch (System.Text.Json.JsonException) { }
            }
        }
        catch (IOException) { }
        return step;
    }
}
