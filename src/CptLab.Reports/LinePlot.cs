using ScottPlot;

namespace CptLab.Reports;

/// <summary>One series of a <see cref="LinePlot"/>: points joined in order, marked filled or open.</summary>
public sealed record PlotSeries(string Label, IReadOnlyList<double> Xs, IReadOnlyList<double> Ys, bool OpenMarkers = false);

/// <summary>A plain line plot with markers and a legend (the demo's validation curves), written as PNG and SVG.</summary>
public static class LinePlot
{
    public static (string Png, string Svg) Write(string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series,
        string pathWithoutExtension, int width = 900, int height = 560)
    {
        var plot = new Plot();
        foreach (var s in series)
        {
            if (s.Xs.Count != s.Ys.Count)
                throw new ArgumentException($"series '{s.Label}' has {s.Xs.Count} x values but {s.Ys.Count} y values", nameof(series));
            var sc = plot.Add.Scatter(s.Xs.ToArray(), s.Ys.ToArray());
            sc.LegendText = s.Label;
            if (s.OpenMarkers) sc.MarkerShape = MarkerShape.OpenCircle;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend();
        return Figure.Save(plot, pathWithoutExtension, width, height);
    }
}
