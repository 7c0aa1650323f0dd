using System.Globalization;
using System.Text;

namespace CptLab.Eval.Metrics;

/// <summary>Python's <c>int(str)</c> acceptance, as far as the MATH normalisers depend on it.</summary>
internal static class PythonInt
{
    /// <summary>
    /// Whether <c>int(text)</c> succeeds (surrounding whitespace, one sign, Unicode decimal digits, single underscores
    /// between digits), and if so <c>str(int(text))</c>: the canonical ASCII form without leading zeros or "+".
    /// </summary>
    public static bool TryParse(string text, out string canonical)
    {
        canonical = "";
        var s = PythonText.Strip(text);
        var negative = false;
        if (s.Length > 0 && (s[0] == '+' || s[0] == '-')) { negative = s[0] == '-'; s = s[1..]; }
        if (s.Length == 0 || s[0] == '_' || s[^1] == '_' || s.Contains("__", StringComparison.Ordinal)) return false;
        var digits = new StringBuilder();
        foreach (var rune in s.EnumerateRunes())
        {
            if (rune.Value == '_') continue;
            if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.DecimalDigitNumber) return false;
            digits.Append((char)('0' + (int)Rune.GetNumericValue(rune)));
        }
        var value = digits.ToString().TrimStart('0');
        canonical = value.Length == 0 ? "0" : (negative ? "-" : "") + value;
        return true;
    }
}

/// <summary>Python's str predicates where .NET's differ.</summary>
internal static class PythonText
{
    /// <summary><c>str.strip()</c>: Python's whitespace also covers the separators U+001C–U+001F.</summary>
    public static string Strip(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && IsSpace(s[start])) start++;
        while (end > start && IsSpace(s[end - 1])) end--;
        return s[start..end];
    }

    static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary><c>str.isdigit()</c>: non-empty, every character has a digit value (decimal digits, and also "²").</summary>
    public static bool IsDigit(string s)
    {
        if (s.Length == 0) return false;
        foreach (var rune in s.EnumerateRunes())
            if (CharUnicodeInfo.GetDigitValue(rune.ToString(), 0) < 0) return false;
        return true;
    }
}
