using System.Globalization;
using System.Text;

namespace CptLab.Templates;

/// <summary>
/// String and number rules of the reference engine (@huggingface/jinja runs on JavaScript): what counts as whitespace
/// for <c>trim</c> and <c>-%}</c>, how a number prints, how <c>tojson</c> quotes a string. .NET's own rules differ in
/// corners (<c>char.IsWhiteSpace</c> counts U+0085 but not U+FEFF), so they are written out here.
/// </summary>
static class JsString
{
    /// <summary>JavaScript's <c>\s</c> (and the set <c>String.prototype.trim</c> removes).</summary>
    public static bool IsWhitespace(char c) => c switch
    {
        '\t' or '\n' or '\v' or '\f' or '\r' or ' ' or '\u00a0' or '\u1680' or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000' or '\ufeff' => true,
        >= '\u2000' and <= '\u200a' => true,
        _ => false,
    };

    public static string Trim(string s) => TrimEnd(TrimStart(s));

    public static string TrimStart(string s)
    {
        var i = 0;
        while (i < s.Length && IsWhitespace(s[i])) i++;
        return s[i..];
    }

    public static string TrimEnd(string s)
    {
        var j = s.Length;
        while (j > 0 && IsWhitespace(s[j - 1])) j--;
        return s[..j];
    }

    /// <summary>Python's <c>str.title</c> as the reference does it: an ASCII word character after a non-word one is upper-cased.</summary>
    public static string Title(string s)
    {
        var b = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            var startsWord = IsWord(c) && (i == 0 || !IsWord(s[i - 1]));
            b.Append(startsWord ? char.ToUpperInvariant(c) : c);
        }
        return b.ToString();
    }

    static bool IsWord(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    /// <summary>JavaScript's <c>String(number)</c>: shortest round-trip digits, exponent past 1e21 or below 1e-6.</summary>
    public static string Number(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsPositiveInfinity(v)) return "Infinity";
        if (double.IsNegativeInfinity(v)) return "-Infinity";
        if (v == 0) return "0";
        var abs = Math.Abs(v);
        if (abs >= 1e21 || abs < 1e-6)
        {
            // Shortest digits first, then JavaScript's exponent form (1e+21, 1.5e-7).
            var r = v.ToString("R", CultureInfo.InvariantCulture);
            var parts = r.Split('E');
            if (parts.Length == 1) return r;
            var exp = int.Parse(parts[1], CultureInfo.InvariantCulture);
            return parts[0] + "e" + (exp >= 0 ? "+" : "-") + Math.Abs(exp).ToString(CultureInfo.InvariantCulture);
        }
        var s = v.ToString("R", CultureInfo.InvariantCulture);
        if (s.Contains('E'))
        {
            // "R" uses exponents from 1e15; JavaScript writes those out in full.
            s = ((decimal)v).ToString(CultureInfo.InvariantCulture);
        }
        return s;
    }

    /// <summary><c>JSON.stringify</c> of a string: quotes, backslash, control characters and lone surrogates escaped, nothing else.</summary>
    public static string Quote(string s)
    {
        var b = new StringBuilder(s.Length + 2).Append('"');
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\b': b.Append("\\b"); break;
                case '\f': b.Append("\\f"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                default:
                    if (c < 0x20) b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) b.Append(c).Append(s[++i]);
                    else if (char.IsSurrogate(c)) b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else b.Append(c);
                    break;
            }
        }
        return b.Append('"').ToString();
    }

    /// <summary>Code points of <paramref name="s"/> as strings (JavaScript's <c>Array.from(str)</c>).</summary>
    public static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { list.Add(s.Substring(i, 2)); i++; }
            else list.Add(s[i].ToString());
        }
        return list;
    }
}
