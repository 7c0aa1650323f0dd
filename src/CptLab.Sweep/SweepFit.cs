using CptLab.Core;
using CptLab.Laws;
using CptLab.Reports;

namespace CptLab.Sweep;

public sealed record SweepFitResult(FitSummary Summary, string FitPath, IReadOnlyList<string> Plots, string ReportPath, string HtmlReportPath, IReadOnlyList<string> Warnings);

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
        return new SweepFitResult(fit.Summary, fitPath, plots, md, html, Warnings(fit.Summary));
    }

    /// <summary>
    /// What to distrust in a fit: an optimum on the edge of the swept box is where the law stopped being
    /// measured, not necessarily where the objective is lowest; the grid should be extended past it.
    /// </summary>
    public static IReadOnlyList<string> Warnings(FitSummary s)
    {
        var ci = System.Globalization.CultureInfo.InvariantCulture;
        var warnings = new List<string>();
        var (x, x0, x1) = (s.Optimum.Log10Lr, Math.Log10(s.LrRange.Lo), Math.Log10(s.LrRange.Hi));
        var edge = 0.02 * (x1 - x0);
        if (x1 > x0 && (x >= x1 - edge || x <= x0 + edge))
        {
            var upper = x >= x1 - edge;
            warnings.Add(string.Create(ci, $"the optimal learning rate {s.Optimum.Lr:0.###e0} is at the {(upper ? "largest" : "smallest")} swept LR: the optimum may lie beyond it; extend grid.lr {(upper ? "upward" : "downward")} and run the sweep again"));
        }
        var (r, r0, r1) = (s.Optimum.Almr, s.AlmrRange.Lo, s.AlmrRange.Hi);
        var redge = 0.02 * (r1 - r0);
        if (r1 > r0 && (r >= r1 - redge || r <= r0 + redge))
        {
            var upper = r >= r1 - redge;
            warnings.Add(string.Create(ci, $"the optimal ALMR {r:0.###} is at the {(upper ? "largest" : "smallest")} swept ALMR: the objective may keep improving beyond it; extend grid.almr {(upper ? "upward" : "downward")} if the objective allows"));
        }
        return warnings;
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
