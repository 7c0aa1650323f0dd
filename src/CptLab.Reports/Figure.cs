using CptLab.Core;
using ScottPlot;

namespace CptLab.Reports;

/// <summary>How every figure of the reports is written: PNG and SVG side by side, each atomically.</summary>
internal static class Figure
{
    public static (string Png, string Svg) Save(Plot plot, string pathWithoutExtension, int width, int height)
    {
        var png = pathWithoutExtension + ".png";
        var svg = pathWithoutExtension + ".svg";
        AtomicFile.WriteAllBytes(png, plot.GetImageBytes(width, height, ImageFormat.Png));
        AtomicFile.WriteAllText(svg, plot.GetSvgXml(width, height));
        return (png, svg);
    }
}
