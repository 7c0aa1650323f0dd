using System.Text.RegularExpressions;
using CptLab.Core;

namespace CptLab.Eval.Metrics;

/// <summary>
/// lm-eval's <c>minerva_math</c> task (Lewkowycz et al. 2022, appendix D): the model ends with "Final Answer: The
/// final answer is X. I hope it is correct."; X and the solution's boxed answer go through
/// <see cref="NormalizeFinalAnswer"/> and are compared.
/// <para>
/// Not reproduced: the reference compares with sympy (<c>parse_latex</c> both, <c>simplify(a − b) == 0</c>, 5 s
/// timeout) and also reports <c>math_verify</c>. We compare the normalised strings. The two disagree both ways:
/// sympy accepts equal values written differently ("0.5" vs "\frac{1}{2}", "x+2" vs "2+x", "2\sqrt{2}" vs
/// "\sqrt{8}"), which we score wrong; and sympy scores wrong identical answers it cannot parse (intervals "[2,5)",
/// words "\text{Monday}", tuples, or a parse that times out), which we score right. So our exact_match is a bound on
/// theirs in neither direction; it equals it when answers are plain numbers written alike.
/// </para>
/// </summary>
public static partial class MathAnswers
{
    /// <summary>What <see cref="GetUnnormalizedAnswer"/> returns when the sentence is not there.</summary>
    public const string InvalidAnswer = "[invalidanswer]";

    // The reference's pattern, unescaped dots and all: ". I hope" is any character then " I hope", so the answer must
    // be followed by one character and a space (a model that stops right after the answer gets "I hope it is correct."
    // appended with no space and no match).
    static readonly Regex _finalAnswer = new(@"Final Answer: The final answer is(.*?). I hope it is correct.", RegexOptions.CultureInvariant);

    static readonly (string Before, string After)[] _substitutions =
    [
        ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""), ("mbox", "text"),
        (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
    ];

    static readonly string[] _removedExpressions =
    [
        "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units", "\\ldots", "sue",
        "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals", "edges",
        "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3",
        "\\text{\n}", "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", "\"", "\\dots",
    ];

    static readonly Regex _dollars = new(@"(.*?)(\$)(.*?)(\$)(.*)", RegexOptions.CultureInvariant);
    static readonly Regex _text = new(@"(\\text\{)(.*?)(\})", RegexOptions.CultureInvariant);
    static readonly Regex _textbf = new(@"(\\textbf\{)(.*?)(\})", RegexOptions.CultureInvariant);
    static readonly Regex _overline = new(@"(\\overline\{)(.*?)(\})", RegexOptions.CultureInvariant);
    static readonly Regex _boxed = new(@"(\\boxed\{)(.*)(\})", RegexOptions.CultureInvariant);
    static readonly Regex _shortFrac = new(@"(frac)([^{])(.)", RegexOptions.CultureInvariant);
    static readonly Regex _shortSqrt = new(@"(sqrt)([^{])", RegexOptions.CultureInvariant);

    /// <summary>
    /// <c>get_unnormalized_answer</c>: the text between "Final Answer: The final answer is" and the first following
    /// ". I hope it is correct." (stripped), or <see cref="InvalidAnswer"/>.
    /// </summary>
    public static string GetUnnormalizedAnswer(string modelOutput)
    {
        var match = _finalAnswer.Match(modelOutput + "I hope it is correct.");
        return match.Success ? PythonText.Strip(match.Groups[1].Value) : InvalidAnswer;
    }

    /// <summary>
    /// <c>normalize_final_answer</c>: keep what follows the last "="; apply the substitutions, then delete the unit
    /// words and TeX spacing (plain substring deletions, in the reference's order — so "ft" goes out of "left"
    /// too); keep the inside of the first $…$ and unwrap \text{}, \textbf{}, \overline{}, \boxed{}; \fracab →
    /// \frac{a}{b}, \sqrta → \sqrt{a}; drop "$"; "100,000" → "100000" when only digits and commas remain.
    /// </summary>
    public static string NormalizeFinalAnswer(string answer)
    {
        var s = answer[(answer.LastIndexOf('=') + 1)..];
        foreach (var (before, after) in _substitutions) s = s.Replace(before, after);
        foreach (var expression in _removedExpressions) s = s.Replace(expression, "");
        s = _dollars.Replace(s, "$$${3}$$");
        s = _text.Replace(s, "${2}");
        s = _textbf.Replace(s, "${2}");
        s = _overline.Replace(s, "${2}");
        s = _boxed.Replace(s, "${2}");
        s = _shortFrac.Replace(s, "frac{${2}}{${3}}");
        s = _shortSqrt.Replace(s, "sqrt{${2}}");
        s = s.Replace("$", "");
        var withoutCommas = s.Replace(",", "");
        return PythonText.IsDigit(withoutCommas) ? withoutCommas : s;
    }

    /// <summary>The solution's answer as minerva_math's <c>process_docs</c> stores it: normalised boxed answer.</summary>
    /// <exception cref="CptLabException">The solution has no \boxed{} answer (the reference crashes there too).</exception>
    public static string MinervaGoldAnswer(string solution) =>
        NormalizeFinalAnswer(RemoveBoxed(LastBoxedOnlyString(solution))
            ?? throw new CptLabException($"MATH solution has no \\boxed{{…}} answer to compare with: '{Preview(solution)}'"));

    /// <summary>String equality of normalised answers (see the class remarks for how this differs from sympy's).</summary>
    public static bool IsEquivMinerva(string normalizedAnswer, string normalizedGold) =>
        normalizedAnswer != InvalidAnswer && normalizedAnswer == normalizedGold;

    /// <summary>minerva_math's exact_match for one output, against the problem's full solution text.</summary>
    public static bool MinervaExactMatch(string modelOutput, string solution) =>
        IsEquivMinerva(NormalizeFinalAnswer(GetUnnormalizedAnswer(modelOutput)), MinervaGoldAnswer(solution));
}
