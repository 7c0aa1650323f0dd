using CptLab.Core;
using CptLab.Laws;

namespace CptLab.Sweep;

public sealed record SweepFitResult(FitSummary Summary, string FitPath, IReadOnlyList<string> Plots, string ReportPath, string HtmlReportPath);

/// <summary>
/// `cptlab sweep fit`: fits the laws over the sweep's recorded runs (LawFitter), and writes
/// <c>fit.json</c>, the figures (PNG and SVG) under <c>plots/</c>, and the report (Markdown and HTML).
/// A sweep that cannot be fitted (too few points, a single LR, every run failed, NaN losses, no base loss)
/// fails with the law library's message, prefixed with where the sweep stands.
/// </summary>
public static class SweepFit
{
    public const string FitFileName = "fit.json";
    public const string PlotsDir = "plots";

    /// <param name="bootstrap">Bootstrap replicates (default: the spec's fit.bootstrap).</param>
    public static SweepFitResult Run(string sweepDir, int? bootstrap = null)
    {
        sweepDir = Path.GetFullPath(sweepDir);
        LawFit fit;
        SweepResults results;
        using (var store = SweepStore.Open(sweepDir, create: false))
        {
            var spec = SweepData.Spec(store);
            results = SweepData.Results(store, spec);
            fit = Fit(store, spec, results, bootstrap);
        }
        var fitPath = Path.Combine(sweepDir, FitFileName);
        FitJson.Write(fitPath, fit.Summary);
        var plots = LawPlots.WriteAll(fit, results, Path.Combine(sweepDir, PlotsDir));
        var (md, html) = SweepReport.Run(sweepDir);
        return new SweepFitResult(fit.Summary, fitPath, plots, md, html);
    }

    public static LawFit Fit(SweepStore store, SweepSpec spec, SweepResults results, int? bootstrap = null)
    {
        try
        {
            return LawFitter.Fit(results, spec.FitOptions(bootstrap));
        }
        catch (CptLabException e)
        {
            var runs = store.Runs();
            var pending = runs.Count(r => r.Status is RunStatus.Pending or RunStatus.Running);
            var where = $"{runs.Count(r => r.Status == RunStatus.Done)} done, {runs.Count(r => r.Status == RunStatus.Failed)} failed" +
                        (pending > 0 ? $", {pending} not finished (run `cptlab sweep run` again to finish them)" : "");
            throw new CptLabException($"cannot fit the sweep in {Path.GetDirectoryName(store.Path)} ({where}): {e.Message}", e);
        }
    }
}
