using System.Globalization;
using CptLab.Core;

namespace CptLab.Data.Mixing;

/// <summary>Token counts as people write them: 250000, 250k, 10M, 1.5B, 2T.</summary>
public static class TokenAmount
{
    public static long Parse(string text)
    {
        var t = text.Trim().Replace("_", "");
        double scale = 1;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            scale = char.ToUpperInvariant(t[^1]) switch
            {
                'K' => 1e3, 'M' => 1e6, 'B' or 'G' => 1e9, 'T' => 1e12,
                _ => throw new CptLabException($"token amount '{text}': unknown suffix '{t[^1]}' (use K, M, B or T)"),
            };
            t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v > 0) || v * scale > long.MaxValue)
            throw new CptLabException($"token amount '{text}' is not a positive number such as 250000, 250k, 10M or 1.5B");
        return (long)Math.Round(v * scale);
    }

    public static string Format(long n) => n switch
    {
        >= 1_000_000_000 => (n / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "B",
        >= 1_000_000 => (n / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (n / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };
}
