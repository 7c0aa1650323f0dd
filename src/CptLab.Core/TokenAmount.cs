using System.Globalization;

namespace CptLab.Core;

/// <summary>
/// Token counts as people write them: 250000, 250_000, 250k, 10M, 1.5B (G is B), 2T, 5e9. The one parser for
/// `data mix --tokens`, `sweep plan --tokens`, the sweep spec and the train config.
/// Semantics: the number times its suffix is computed in decimal, exactly ("1.1K" is 1100, not 1100.0000000000002),
/// and must be a whole number ("1.2345K" = 1234.5 tokens is an error, never rounded); 0 is a count like any other
/// ("0" is 0 tokens) — whether a setting may be 0 is for its reader to say (a budget may not, a warmup may).
/// </summary>
public static class TokenAmount
{
    public const string Examples = "250000, 250K, 20M, 1.5B";

    /// <summary>The count, or a <see cref="CptLabException"/> that quotes the text and says what is wrong with it.</summary>
    public static long Parse(string text) =>
        TryParse(text, out var tokens, out var problem) ? tokens : throw new CptLabException($"token amount '{text}': {problem}");

    /// <summary>A budget: as <see cref="Parse"/>, and more than 0; errors name <paramref name="name"/> (an option or key).</summary>
    public static long ParsePositive(string text, string name)
    {
        if (!TryParse(text, out var tokens, out var problem)) throw new CptLabException($"{name} '{text}' is not a token count: {problem}");
        if (tokens == 0) throw new CptLabException($"{name} '{text}': the token budget must be more than 0");
        return tokens;
    }

    public static bool TryParse(string text, out long tokens, out string problem)
    {
        tokens = 0;
        var t = text.Trim().Replace("_", "");
        decimal scale = 1;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            switch (char.ToUpperInvariant(t[^1]))
            {
                case 'K': scale = 1e3m; break;
                case 'M': scale = 1e6m; break;
                case 'B' or 'G': scale = 1e9m; break;
                case 'T': scale = 1e12m; break;
                default: problem = $"unknown suffix '{t[^1]}' (use K, M, B or T: {Examples})"; return false;
            }
            t = t[..^1];
        }
        if (!decimal.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
        {
            problem = double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)
                ? "too large for a token count"
                : $"not a number with an optional K, M, B or T suffix ({Examples})";
            return false;
        }
        if (v < 0) { problem = "a token count cannot be negative"; return false; }
        if (v > long.MaxValue / scale) { problem = "too large for a token count"; return false; }
        var n = v * scale;
        if (n != decimal.Truncate(n)) { problem = $"{n.ToString("0.############", CultureInfo.InvariantCulture)} tokens is not a whole number"; return false; }
        tokens = (long)n;
        problem = "";
        return true;
    }

    public static string Format(long n) => n switch
    {
        >= 1_000_000_000 => (n / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "B",
        >= 1_000_000 => (n / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (n / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };
}
