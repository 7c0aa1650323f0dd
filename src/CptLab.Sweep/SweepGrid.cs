using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Sweep;

/// <summary>One axis of the sweep's grid (grid.almr, grid.lr): a list of values, or {min, max, count} spaced linearly or in log.</summary>
static class SweepGrid
{
    /// <param name="log">Space {min, max, count} evenly in log (learning rates) rather than linearly (ALMRs).</param>
    /// <param name="digits">Generated values are rounded to this many significant digits (log) or decimals (linear), so they print as written.</param>
    public static IReadOnlyList<double> Values(ConfigReader grid, string key, bool log, int digits)
    {
        var node = grid.Raw(key);
        IReadOnlyList<double> values;
        if (node is JsonObject)
        {
            var s = grid.Section(key);
            var lo = s.Double("min") ?? throw s.Error("min", "missing");
            var hi = s.Double("max") ?? throw s.Error("max", "missing");
            var n = s.Int("count") ?? throw s.Error("count", "missing");
            s.RejectUnknown();
            if (n < 1) throw s.Error("count", $"{n} must be at least 1");
            if (!(hi >= lo)) throw s.Error("max", $"{SweepSpecReader.Fmt(hi)} is below min {SweepSpecReader.Fmt(lo)}");
            if (log && !(lo > 0)) throw s.Error("min", "a log grid needs min > 0");
            values = Enumerable.Range(0, n).Select(i =>
            {
                var f = n == 1 ? 0 : (double)i / (n - 1);
                var v = log ? Math.Exp(Math.Log(lo) + (Math.Log(hi) - Math.Log(lo)) * f) : lo + (hi - lo) * f;
                return log ? RoundSignificant(v, digits) : Math.Round(v, digits);
            }).ToArray();
        }
        else values = grid.Doubles(key) ?? throw grid.Error(key, "missing: a list of values or {min, max, count}");
        values = values.Distinct().Order().ToArray();
        if (values.Count == 0) throw grid.Error(key, "empty");
        return values;
    }

    static double RoundSignificant(double v, int digits)
    {
        var scale = Math.Pow(10, Math.Floor(Math.Log10(v)) - digits + 1);
        return double.Parse((Math.Round(v / scale) * scale).ToString("G" + digits, CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }
}
