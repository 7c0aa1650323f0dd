using System.Globalization;
using System.Text;
using CptLab.Core;
using CptLab.Laws;
using CptLab.Reports;

namespace CptLab.Sweep;

/// <summary>
/// `cptlab sweep report`: <c>report.md</c> and <c>report.html</c> in the sweep folder — what was swept, how far
/// it got (runs used against the full grid, the adaptive design's stopping reason, wall time), every run's
/// losses, and, once fitted, the law's section (optimum, intervals, η*(r), figures) and the transfer plan.
/// </summary>
public static class SweepReport
{
    public const string MarkdownFileName = "report.md";
    public const string HtmlFileName = "report.html";

    /// <summary>Writes the report of <paramref name="sweepDir"/> from its database and, when present, fit.json, plots/ and plan/plan.json.</summary>
    public static (string Markdown, string Html) Run(string sweepDir)
    {
        using var store = SweepStore.Open(sweepDir, create: false);
        var spec = SweepData.Spec(store);
        var fitPath = Path.Combine(sweepDir, SweepFit.FitFileName);
        var fit = File.Exists(fitPath) ? FitJson.Read(fitPath) : null;
        var plotsDir = Path.Combine(sweepDir, SweepFit.PlotsDir);
        var plots = Directory.Exists(plotsDir) ? Directory.GetFiles(plotsDir).Order(StringComparer.Ordinal).ToList() : [];
        var planPath = Path.Combine(sweepDir, SweepPlan.DefaultDir, SweepPlan.PlanFileName);
        var plan = File.Exists(planPath) ? SweepPlan.ReadPlan(planPath) : null;
        return Write(store, spec, fit, plots, sweepDir, plan);
    }

    public static (string Markdown, string Html) Write(SweepStore store, SweepSpec spec, FitSummary? fit, IReadOnlyList<string> plots, string outDir, TrainingPlan? plan)
    {
        var md = Markdown(store, spec, fit, plots.Select(p => Path.GetRelativePath(outDir, p)).ToList(), plan);
        var mdPath = Path.Combine(outDir, MarkdownFileName);
        var htmlPath = Path.Combine(outDir, HtmlFileName);
        AtomicFile.WriteAllText(mdPath, md);
        AtomicFile.WriteAllText(htmlPath, MarkdownHtml.Convert(md, $"Sweep report: {Path.GetFileName(Path.GetDirectoryName(store.Path))}"));
        return (mdPath, htmlPath);
    }

    public static string Markdown(SweepStore store, SweepSpec spec, FitSummary? fit, IReadOnlyList<string> plots, TrainingPlan? plan)
    {
        var ci = CultureInfo.InvariantCulture;
        string P(double v) => double.IsFinite(v) ? v.ToString("0.####", ci) : "—";
        string E(double v) => v.ToString("0.###e0", ci);
        var md = new StringBuilder();
        var sweepDir = Path.GetDirectoryName(store.Path)!;
        var runs = store.Runs();
        var done = runs.Count(r => r.Status == RunStatus.Done);
        var failed = runs.Count(r => r.Status == RunStatus.Failed);
        var pending = runs.Count - done - failed;

        md.Append($"# Sweep report: {Path.GetFileName(sweepDir)}\n\n");
        md.Append($"Base checkpoint `{spec.BaseCheckpoint}`; data `{spec.DataDir}` (sequences of {spec.SeqLen} tokens); ");
        md.Append($"{spec.TokensPerRun.ToString("N0", ci)} tokens per run. Target language `{spec.TargetLanguage}` ({string.Join(", ", spec.Languages[spec.TargetLanguage])}), ");
        md.Append($"original `{spec.OriginalLanguage}` ({string.Join(", ", spec.Languages[spec.OriginalLanguage])}). Objective: {spec.Objective.Describe()}.\n\n");

        md.Append("## Runs\n\n");
        md.Append($"Grid: {spec.Almrs.Count} ALMR values ({string.Join(", ", spec.Almrs.Select(P))}) × {spec.Lrs.Count} learning rates ({string.Join(", ", spec.Lrs.Select(E))}) × {spec.Seeds.Count} seed(s) = {spec.GridSize} runs. ");
        md.Append($"Recorded: **{runs.Count}** ({done} done, {failed} failed, {pending} not finished)");
        if (spec.Adaptive)
        {
            md.Append($"; adaptive design: {runs.Count} of {spec.GridSize} runs ({(spec.GridSize - runs.Count) * 100.0 / spec.GridSize:0}% of the grid saved)");
            if (store.GetMeta("adaptive_stop") is { } stop) md.Append($", stopped because {stop}");
        }
        var wall = runs.Sum(r => r.WallSeconds);
        md.Append($". Training wall time {wall / 3600:0.##} h in all.\n\n");

        var baseLoss = RunMetrics.ByLanguage(store.BaseLosses(), spec.Languages);
        var (t, o) = (spec.TargetLanguage, spec.OriginalLanguage);
        md.Append($"Base model: `{t}` loss {P(baseLoss.GetValueOrDefault(t, double.NaN))}, `{o}` loss {P(baseLoss.GetValueOrDefault(o, double.NaN))}.\n\n");
        md.Append($"| ALMR | lr | seed | status | `{t}` loss | `{o}` loss | forgetting | attempts | wall (s) |\n|---|---|---|---|---|---|---|---|---|\n");
        var baseOriginal = baseLoss.GetValueOrDefault(o, double.NaN);
        foreach (var r in runs)
        {
            var f = r.Status == RunStatus.Done ? store.FinalByLanguage(r.Id) : new Dictionary<string, double>();
            var lt = f.GetValueOrDefault(t, double.NaN);
            var lo = f.GetValueOrDefault(o, double.NaN);
            var status = r.Status.ToString().ToLowerInvariant() + (r.Error is { } err ? $": {err.Split('\n')[0].Replace("|", "/")}" : "");
            md.Append($"| {P(r.Almr)} | {E(r.Lr)} | {r.Seed} | {status} | {P(lt)} | {P(lo)} | {P(lo - baseOriginal)} | {r.Attempts} | {r.WallSeconds:0.#} |\n");
        }
        md.Append('\n');

        if (fit is not null)
        {
            var warnings = SweepFit.Warnings(fit);
            if (warnings.Count > 0) md.Append("**Warnings**\n\n").Append(string.Concat(warnings.Select(w => $"- {w}\n"))).Append('\n');
            md.Append(LawReport.Section(fit, plots, plan));
        }
        else md.Append("No fit yet: run `cptlab sweep fit` for the optimum, its intervals and the figures.\n");
        return md.ToString();
    }
}
