using System.Xml.Linq;
using CptLab.Laws;

namespace CptLab.Reports.Tests;

/// <summary>The figures are real PNG (signature, size in the header) and SVG (parsable, with the labels drawn).</summary>
public sealed class PlotTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cptlab-reports-");
    public void Dispose() => _dir.Delete(recursive: true);

    static void AssertPng(string path, int width, int height)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 5_000, $"{path}: {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        // IHDR: width and height, big-endian, as written.
        Assert.Equal(width, (bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]);
        Assert.Equal(height, (bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23]);
    }

    [Fact]
    public void Law_plots_are_written_as_png_and_svg()
    {
        var sweep = TestSweep.WithCurves();
        var fit = LawFitter.Fit(sweep, new FitOptions { Objective = Objective.Weighted(1, 2), Bootstrap = 20, Laws = [LawKind.ResponseSurfaceQuadratic] });
        var paths = LawPlots.WriteAll(fit, sweep, _dir.FullName);
        Assert.Equal(10, paths.Count); // heatmap, loss vs ALMR × 2 languages, training curves × 2: PNG + SVG each
        foreach (var png in paths.Where(p => p.EndsWith(".png")))
            AssertPng(png, 900, 640);
        foreach (var svg in paths.Where(p => p.EndsWith(".svg")))
        {
            var doc = XDocument.Load(svg);
            Assert.Equal("svg", doc.Root!.Name.LocalName);
            Assert.True(doc.Descendants().Count() > 20, $"{svg} has almost nothing in it");
        }
        var heat = XDocument.Load(Path.Combine(_dir.FullName, "objective_heatmap.svg")).ToString();
        Assert.Contains("log10 learning rate", heat);
        Assert.Contains("optimum r=", heat);
        Assert.DoesNotContain(Directory.GetFiles(_dir.FullName), f => f.EndsWith(".tmp"));
    }

    [Fact]
    public void Line_plot_draws_every_series_and_refuses_ragged_ones()
    {
        double[] xs = [1, 2, 3, 4];
        var (png, svg) = LinePlot.Write("curves", "tokens", "loss",
            [new PlotSeries("chosen zh", xs, [4.0, 3.1, 2.7, 2.5]), new PlotSeries("naive zh", xs, [4.0, 3.4, 3.0, 2.9], OpenMarkers: true)],
            Path.Combine(_dir.FullName, "curves"), width: 700, height: 500);
        AssertPng(png, 700, 500);
        var text = XDocument.Load(svg).ToString();
        Assert.Contains("chosen zh", text);
        Assert.Contains("naive zh", text);

        var e = Assert.Throws<ArgumentException>(() => LinePlot.Write("t", "x", "y", [new PlotSeries("short", xs, [1.0, 2.0])], Path.Combine(_dir.FullName, "bad")));
        Assert.Contains("series 'short' has 4 x values but 2 y values", e.Message);
        Assert.False(File.Exists(Path.Combine(_dir.FullName, "bad.png")));
    }
}
