using System.Globalization;
using System.Text;

namespace CptLab.Laws.Registry;

/// <summary>The registry as `cptlab laws list` prints it: per law its formula, inputs, parameters with bounds, and source.</summary>
public static class LawCatalog
{
    public static string Format(IEnumerable<LawDefinition> laws)
    {
        var sb = new StringBuilder();
        foreach (var law in laws)
        {
            sb.AppendLine($"{law.Name}{(law.Fittable ? "" : "  (sweep family: fitted by `cptlab sweep fit`, not by `laws fit`)")}");
            sb.AppendLine($"  formula:    {law.Formula}{(law.Output == LawOutput.LogLoss ? "  (the function returns log L)" : "")}");
            sb.AppendLine($"  inputs:     {string.Join("; ", law.Inputs.Select(Input))}");
            sb.AppendLine("  parameters:");
            var width = law.Parameters.Max(p => p.Name.Length);
            foreach (var p in law.Parameters)
                sb.AppendLine($"    {p.Name.PadRight(width)}  {Bounds(p.Lower, p.Upper),-14} {p.Description}{(law.LinearParameters.Contains(p.Name) ? " (linear: solved by least squares at each start)" : "")}");
            sb.AppendLine($"  source:     {law.Source}");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    static string Input(LawInput i) => i.Domain switch
    {
        InputDomain.Positive => $"{i.Name} ({i.Description}, > 0)",
        InputDomain.NonNegative => $"{i.Name} ({i.Description}, ≥ 0)",
        _ => $"{i.Name} ({i.Description})",
    };

    /// <summary>[lo, hi], with an open end written (-∞ or ∞).</summary>
    public static string Bounds(double lo, double hi) =>
        $"{(double.IsNegativeInfinity(lo) ? "(-∞" : "[" + Number(lo))}, {(double.IsPositiveInfinity(hi) ? "∞)" : Number(hi) + "]")}";

    static string Number(double v) => v.ToString("G6", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
}
