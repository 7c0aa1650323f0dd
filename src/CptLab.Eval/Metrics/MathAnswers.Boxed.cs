namespace CptLab.Eval.Metrics;

/// <summary>
/// Answer extraction and comparison for Hendrycks MATH, with the semantics of lm-evaluation-harness's
/// <c>hendrycks_math/utils.py</c> and <c>minerva_math/utils.py</c> (reimplemented, quirks included, so that our
/// scores match theirs). Where the Python raises (a failed assert, an index past the end) these return null, and the
/// callers react as the reference's callers do. Strings are indexed by UTF-16 unit where Python indexes code points;
/// the two differ only for characters outside the BMP (emoji), which MATH answers do not contain.
/// This file: the boxed-answer extraction both tasks share.
/// </summary>
public static partial class MathAnswers
{
    /// <summary>
    /// <c>last_boxed_only_string</c>: the last <c>\boxed{…}</c> (or, when there is no <c>\boxed</c>, the last
    /// <c>\fbox{…}</c>) with its braces matched, e.g. "… \boxed{\frac{1}{2}}." → <c>\boxed{\frac{1}{2}}</c>.
    /// When the text holds <c>"\boxed "</c> (the brace-less form) that wins, even over a later braced box:
    /// "\boxed " + what follows the last "\boxed " up to the first "$". Null when there is no box or it never closes.
    /// </summary>
    public static string? LastBoxedOnlyString(string text)
    {
        var idx = text.LastIndexOf("\\boxed", StringComparison.Ordinal);
        var spaced = text.LastIndexOf("\\boxed ", StringComparison.Ordinal);
        if (spaced >= 0)
        {
            var after = text[(spaced + "\\boxed ".Length)..];
            var dollar = after.IndexOf('$');
            return "\\boxed " + (dollar < 0 ? after : after[..dollar]);
        }
        if (idx < 0)
        {
            idx = text.LastIndexOf("\\fbox", StringComparison.Ordinal);
            if (idx < 0) return null;
        }
        // The reference counts every brace from the box on and stops where the count first returns to zero; a "}"
        // before the first "{" drives it negative and it keeps looking (so "\boxed}{5}" never closes).
        var open = 0;
        for (var i = idx; i < text.Length; i++)
        {
            if (text[i] == '{') open++;
            if (text[i] == '}')
            {
                open--;
                if (open == 0) return text[idx..(i + 1)];
            }
        }
        return null;
    }

    /// <summary>
    /// <c>remove_boxed</c>: <c>\boxed{X}</c> → X and <c>"\boxed X"</c> → X. Null where the reference's asserts fail:
    /// no box at all (it gets None), and <c>\fbox{X}</c>, which <see cref="LastBoxedOnlyString"/> finds but
    /// remove_boxed does not unwrap.
    /// </summary>
    public static string? RemoveBoxed(string? boxed)
    {
        if (boxed is null) return null;
        if (boxed.Contains("\\boxed ", StringComparison.Ordinal))
            return boxed.StartsWith("\\boxed ", StringComparison.Ordinal) ? boxed["\\boxed ".Length..] : null;
        const string left = "\\boxed{";
        if (!boxed.StartsWith(left, StringComparison.Ordinal) || !boxed.EndsWith('}') || boxed.Length < left.Length + 1) return null;
        return boxed[left.Length..^1];
    }
}
