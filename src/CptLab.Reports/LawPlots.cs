using CptLab.Core;
using CptLab.Laws;
using ScottPlot;

namespace CptLab.Reports;

/// <summary>
/// The sweep's figures, each written as PNG and SVG (ScottPlot 5) through <see cref="AtomicFile"/>:
/// the objective over (ALMR, log10 lr) as a heatmap with η*(r) and the optimum; each language's loss against
/// ALMR (runs as points, the law as lines, one colour per swept LR); the runs' training curves.
/// </summary>
public static class LawPlots
{
    const int Width = 900;
    const int Height = 640;

    /// <summary>Writes every figure into <paramref name="folder"/>; returns the written paths (PNG and SVG, by figure).</summary>
    public static IReadOnlyList<string> WriteAll(LawFit fit, SweepResults sweep, string folder)
    {
        var paths = new List<string>();
        void Add((string Png, string Svg) p) { paths.Add(p.Png); paths.Add(p.Svg); }
        Add(ObjectiveHeatmap(fit, sweep, Path.Combine(folder, "objective_heatmap")));
        foreach (var lang in new[] { sweep.TargetLanguage, sweep.OriginalLanguage })
            Add(LossVsAlmr(fit, sweep, lang, Path.Combine(folder, $"loss_vs_almr_{lang}")));
        foreach (var lang in new[] { sweep.TargetLanguage, sweep.OriginalLanguage })
            if (sweep.Succeeded.Any(p => p.Curve.Any(c => c.Loss.ContainsKey(lang))))
                Add(TrainingCurves(sweep, lang, Path.Combine(folder, $"training_curves_{lang}")));
        return paths;
    }

    public static (string Png, string Svg) ObjectiveHeatmap(LawFit fit, SweepResults sweep, string pathWithoutExtension, int cells = 80)
    {
        var s = fit.Surface;
        var (r0, r1, x0, x1) = (s.AlmrRange.Lo, s.AlmrRange.Hi, s.Log10LrRange.Lo, s.Log10LrRange.Hi);
        // Intensities[row, column]: row 0 is drawn at the top, so rows run from the largest log10 lr down.
        var z = new double[cells, cells];
        for (var i = 0; i < cells; i++)
        for (var j = 0; j < cells; j++)
        {
            var x = x1 - (x1 - x0) * (i + 0.5) / cells;
            var r = r0 + (r1 - r0) * (j + 0.5) / cells;
            z[i, j] = s.ObjectiveLog10(r, x);
        }

        var plot = new Plot();
        var heat = plot.Add.Heatmap(z);
        heat.Extent = new CoordinateRect(r0, r1, x0, x1);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        heat.NaNCellColor = Colors.LightGray;
        plot.Add.ColorBar(heat);

        var runs = sweep.Succeeded.ToList();
        var pts = plot.Add.ScatterPoints(runs.Select(p => p.Almr).ToArray(), runs.Select(p => Math.Log10(p.Lr)).ToArray());
        pts.Color = Colors.White;
        pts.MarkerStyle.OutlineColor = Colors.Black;
        pts.MarkerStyle.OutlineWidth = 1;
        pts.MarkerSize = 7;
        pts.LegendText = "runs";

        var curve = fit.Summary.OptimalLrCurve.Where(c => c.Lr is not null).ToList();
        if (curve.Count > 1)
        {
            var line = plot.Add.ScatterLine(curve.Select(c => c.Almr).ToArray(), curve.Select(c => Math.Log10(c.Lr!.Value)).ToArray());
            line.Color = Colors.Orange;
            line.LineWidth = 2.5f;
            line.LegendText = "η*(r)";
            var band = curve.Where(c => c.LrLo is not null && c.LrHi is not null).ToList();
            foreach (var edge in new Func<OptimalLrPoint, double>[] { c => c.LrLo!.Value, c => c.LrHi!.Value })
            {
                if (band.Count < 2) break;
                var e = plot.Add.ScatterLine(band.Select(c => c.Almr).ToArray(), band.Select(c => Math.Log10(edge(c))).ToArray());
                e.Color = Colors.Orange.WithAlpha(0.6);
                e.LinePattern = LinePattern.Dashed;
                e.LineWidth = 1.5f;
            }
        }

        var opt = fit.Summary.Optimum;
        if (opt.AlmrInterval is { } ri && opt.Log10LrInterval is { } xi)
        {
            var box = plot.Add.Rectangle(ri.Lo, ri.Hi, xi.Lo, xi.Hi);
            box.FillStyle.Color = Colors.Transparent;
            box.LineStyle.Color = Colors.Red;
            box.LineStyle.Width = 1.5f;
        }
        var star = plot.Add.Marker(opt.Almr, opt.Log10Lr, MarkerShape.FilledDiamond, 14, Colors.Red);
        star.LegendText = $"optimum r={opt.Almr:0.###}, lr={opt.Lr:0.##e0}";

        plot.Title($"{fit.Summary.ObjectiveDescription} — {fit.Summary.Law}");
        plot.XLabel("ALMR (share of target-language tokens)");
        plot.YLabel("log10 learning rate");
        plot.Axes.SetLimits(r0, r1, x0, x1);
        plot.ShowLegend(Alignment.UpperRight);
        return Save(plot, pathWithoutExtension);
    }

    public static (string Png, string Svg) LossVsAlmr(LawFit fit, SweepResults sweep, string language, string pathWithoutExtension)
    {
        var s = fit.Surface;
        var runs = sweep.Succeeded.ToList();
        var lrs = runs.Select(p => p.Lr).Distinct().OrderBy(v => v).ToArray();
        var cmap = new ScottPlot.Colormaps.Turbo();
        var plot = new Plot();
        for (var k = 0; k < lrs.Length; k++)
        {
            var color = cmap.GetColor(lrs.Length == 1 ? 0.5 : 0.1 + 0.8 * k / (lrs.Length - 1));
            var at = runs.Where(p => p.Lr == lrs[k] && p.FinalLoss.ContainsKey(language)).ToList();
            var dots = plot.Add.ScatterPoints(at.Select(p => p.Almr).ToArray(), at.Select(p => p.FinalLoss[language]).ToArray());
            dots.Color = color;
            dots.MarkerSize = 7;
            dots.LegendText = $"lr={lrs[k]:0.##e0}";
            var rs = Enumerable.Range(0, 60).Select(i => s.AlmrRange.Lo + s.AlmrRange.Width * i / 59).ToArray();
            var line = plot.Add.ScatterLine(rs, rs.Select(r => s.PredictLoss(language, r, lrs[k])).ToArray());
            line.Color = color;
            line.LineWidth = 1.5f;
        }
        if (sweep.BaseLoss.TryGetValue(language, out var baseLoss) && double.IsFinite(baseLoss))
        {
            var h = plot.Add.HorizontalLine(baseLoss);
            h.LinePattern = LinePattern.Dotted;
            h.Color = Colors.Black;
            h.LegendText = "base model";
        }
        plot.Title($"{language} validation loss vs ALMR ({fit.Summary.Law})");
        plot.XLabel("ALMR");
        plot.YLabel($"{language} validation loss");
        // The legend goes in the upper corner where the curves are low: left for a loss that rises with ALMR.
        var mid = Math.Pow(10, s.Log10LrRange.Lo + s.Log10LrRange.Width / 2);
        var rises = s.PredictLoss(language, s.AlmrRange.Hi, mid) > s.PredictLoss(language, s.AlmrRange.Lo, mid);
        plot.ShowLegend(rises ? Alignment.UpperLeft : Alignment.UpperRight);
        return Save(plot, pathWithoutExtension);
    }

    public static (string Png, string Svg) TrainingCurves(SweepResults sweep, string language, string pathWithoutExtension)
    {
        var runs = sweep.Succeeded.Where(p => p.Curve.Any(c => c.Loss.ContainsKey(language))).ToList();
        if (runs.Count == 0) throw new CptLabException($"no run has a training curve for '{language}' to plot");
        var (rMin, rMax) = (runs.Min(p => p.Almr), runs.Max(p => p.Almr));
        var cmap = new ScottPlot.Colormaps.Viridis();
        var plot = new Plot();
        foreach (var p in runs)
        {
            var pts = p.Curve.Where(c => c.Loss.ContainsKey(language)).OrderBy(c => c.Tokens).ToList();
            var line = plot.Add.ScatterLine(pts.Select(c => (double)c.Tokens).ToArray(), pts.Select(c => c.Loss[language]).ToArray());
            line.Color = cmap.GetColor(rMax > rMin ? (p.Almr - rMin) / (rMax - rMin) : 0.5);
            line.LineWidth = 1.2f;
        }
        plot.Title($"{language} validation loss during training (colour: ALMR {rMin:0.##} dark → {rMax:0.##} light)");
        plot.XLabel("training tokens");
        plot.YLabel($"{language} validation loss");
        return Save(plot, pathWithoutExtension);
    }

    static (string Png, string Svg) Save(Plot plot, string pathWithoutExtension) => Figure.Save(plot, pathWithoutExtension, Width, Height);
}
