using CptLab.Core;

namespace CptLab.Eval.Metrics;

/// <summary>
/// lm-eval's <c>hendrycks_math</c> task: the answer is whatever the model wrote between its first and last "$" (or
/// all of it), compared with the solution's boxed answer after <see cref="StripString"/> on both — pure string
/// equality, no symbolic algebra.
/// </summary>
public static partial class MathAnswers
{
    /// <summary><c>process_results</c>' exact_match: 1 when the model's answer equals the solution's boxed one.</summary>
    /// <exception cref="CptLabException">The solution has no \boxed{} answer (the reference crashes there too).</exception>
    public static bool HendrycksExactMatch(string modelOutput, string solution)
    {
        var gold = RemoveBoxed(LastBoxedOnlyString(solution))
                   ?? throw new CptLabException($"MATH solution has no \\boxed{{…}} answer to compare with: '{Preview(solution)}'");
        return IsEquivHendrycks(HendrycksAnswer(modelOutput), gold);
    }

    /// <summary>The text between the first and the last "$" when there are two or more, else the whole output.</summary>
    public static string HendrycksAnswer(string modelOutput)
    {
        var first = modelOutput.IndexOf('$');
        var last = modelOutput.LastIndexOf('$');
        return first < 0 || first == last ? modelOutput : modelOutput[(first + 1)..last];
    }

    /// <summary>
    /// <c>is_equiv</c>: equal after <see cref="StripString"/>; when normalising either one fails (where the Python
    /// raises), the raw strings are compared instead, exactly as the reference's <c>except Exception</c> does.
    /// </summary>
    public static bool IsEquivHendrycks(string? a, string? b)
    {
        if (a is null || b is null) return a is null && b is null;
        var sa = StripString(a);
        var sb = StripString(b);
        return sa is null || sb is null ? a == b : sa == sb;
    }

    /// <summary>
    /// <c>strip_string</c>, in the reference's order: drop newlines and <c>\!</c>, <c>\\</c>→<c>\</c>,
    /// tfrac/dfrac→frac, drop <c>\left</c>/<c>\right</c>, degrees, <c>\$</c>, units after <c>"\text{ "</c> and
    /// <c>\%</c>; "0." before a bare "."; "x = 5" → "5" when the left side has at most 2 characters;
    /// <c>\sqrt3</c>→<c>\sqrt{3}</c>; drop spaces; <c>\frac12</c>→<c>\frac{1}{2}</c>; "0.5"→<c>\frac{1}{2}</c>;
    /// "3/4"→<c>\frac{3}{4}</c>. Null where the Python raises: two "\text{ ", a trailing <c>\sqrt</c> or <c>\frac</c>,
    /// and — the surprising one — exactly one "/" with a side that is not an integer ("x/2"): <c>int()</c> raises a
    /// ValueError that fix_a_slash_b does not catch.
    /// </summary>
    public static string? StripString(string s)
    {
        s = s.Replace("\n", "").Replace("\\!", "").Replace("\\\\", "\\");
        s = s.Replace("tfrac", "frac").Replace("dfrac", "frac");
        s = s.Replace("\\left", "").Replace("\\right", "");
        s = s.Replace("^{\\circ}", "").Replace("^\\circ", "");
        s = s.Replace("\\$", "");
        if (RemoveRightUnits(s) is not { } withoutUnits) return null;
        s = withoutUnits.Replace("\\%", "");
        s = s.Replace(" .", " 0.").Replace("{.", "{0.");
        if (s.Length == 0) return s;
        if (s[0] == '.') s = "0" + s;
        var sides = s.Split('=');
        if (sides.Length == 2 && sides[0].Length <= 2) s = sides[1];
        if (FixSqrt(s) is not { } sqrtFixed) return null;
        s = sqrtFixed.Replace(" ", "");
        if (FixFracs(s) is not { } fracsFixed) return null;
        s = fracsFixed;
        if (s == "0.5") s = "\\frac{1}{2}";
        return FixASlashB(s);
    }

    /// <summary>"\text{ " only ever introduces units in MATH: keep what precedes it. Two of them fail the reference's assert.</summary>
    static string? RemoveRightUnits(string s)
    {
        if (!s.Contains("\\text{ ", StringComparison.Ordinal)) return s;
        var parts = s.Split("\\text{ ");
        return parts.Length == 2 ? parts[0] : null;
    }

    /// <summary>\sqrt3 → \sqrt{3} (one character only); a \sqrt at the very end indexes past it in Python.</summary>
    static string? FixSqrt(string s)
    {
        if (!s.Contains("\\sqrt", StringComparison.Ordinal)) return s;
        var parts = s.Split("\\sqrt");
        var result = parts[0];
        foreach (var part in parts.Skip(1))
        {
            if (part.Length == 0) return null;
            result += part[0] != '{' ? "\\sqrt{" + part[0] + "}" + part[1..] : "\\sqrt" + part;
        }
        return result;
    }

    /// <summary>
    /// \frac12 → \frac{1}{2}, \frac1{72} → \frac{1}{72}; a \frac followed by one character only makes the reference
    /// give up and return its input unchanged; one followed by nothing indexes past the end (null).
    /// </summary>
    static string? FixFracs(string s)
    {
        var parts = s.Split("\\frac");
        var result = parts[0];
        foreach (var part in parts.Skip(1))
        {
            result += "\\frac";
            if (part.Length == 0) return null;
            if (part[0] == '{') { result += part; continue; }
            if (part.Length < 2) return s;
            char a = part[0], b = part[1];
            var rest = part[2..];
            result += b != '{' ? "{" + a + "}{" + b + "}" + rest : "{" + a + "}" + b + rest;
        }
        return result;
    }

    /// <summary>
    /// "a/b" with canonical integers → \frac{a}{b}. The reference converts both sides with int() — which raises,
    /// uncaught, when a side is not an integer (null here) — and then asserts the text is exactly str(a)/str(b),
    /// so "03/4" or "+3/4" stay as they are.
    /// </summary>
    static string? FixASlashB(string s)
    {
        var parts = s.Split('/');
        if (parts.Length != 2) return s;
        if (!PythonInt.TryParse(parts[0], out var aCanonical) || !PythonInt.TryParse(parts[1], out var bCanonical)) return null;
        return s == aCanonical + "/" + bCanonical ? "\\frac{" + aCanonical + "}{" + bCanonical + "}" : s;
    }

    static string Preview(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
