using System.Globalization;
using System.Text.RegularExpressions;
using CptLab.Core;

namespace CptLab.Eval.Metrics;

/// <summary>A reply's parsed "Emotion: score" pairs, in first-seen order; a repeated name keeps its last score (Python's dict(findall)).</summary>
public sealed record EqBenchAnswers(IReadOnlyList<(string Emotion, double Score)> Pairs);

/// <summary>
/// EQ-Bench v2 (Paech 2023) scoring as EQ-bench/EQ-Bench's lib/scoring.py computes it (@d28c60c): the reply's
/// "Emotion: N" lines are compared with the reference's 0–10 intensities; each difference d is scaled by
/// 0 (d = 0), 6.5 / (1 + e^(−1.2 (d − 4))) (0 &lt; d ≤ 5) or d (d &gt; 5), and the question scores
/// 10 − 0.7477 × Σ scaled (0.7477 makes random answers score 0 on average; a perfect answer scores 10).
/// </summary>
public static class EqBench
{
    public const double AdjustConstant = 0.7477;

    // \w+ : one-word emotion names; \d+ : integer scores. Like Python's str patterns, .NET's \w and \d are Unicode.
    static readonly Regex _pair = new(@"(\w+):\s+(\d+)", RegexOptions.CultureInvariant);
    static readonly Regex _firstPass = new(@"First pass scores:(.*?)Revised scores:", RegexOptions.Singleline | RegexOptions.CultureInvariant);
    static readonly Regex _revised = new(@"Revised scores:(.*?)$", RegexOptions.Singleline | RegexOptions.CultureInvariant);

    /// <summary>
    /// <c>remove_revision_instructions</c> (English): v2's default prompt, without the critique-and-revise part,
    /// ending in "\nYour answer:\n". The reference runs without revision unless asked (-revise).
    /// </summary>
    public static string PromptWithoutRevision(string prompt)
    {
        prompt = prompt.Replace(" Then critique your answer by thinking it through step by step. Finally, give your revised scores.", "")
                       .Replace("First pass scores:\n", "");
        var critique = prompt.IndexOf("Critique: <your critique here>", StringComparison.Ordinal);
        var end = prompt.IndexOf("[End of answer]", StringComparison.Ordinal);
        if (critique < 0 || end < critique)
            throw new CptLabException("EQ-Bench prompt lacks 'Critique: <your critique here>' … '[End of answer]'; not a v2 English prompt");
        return prompt[..critique] + "\n" + prompt[end..] + "\nYour answer:\n";
    }

    /// <summary>
    /// <c>parse_answers</c>. Without revision every "Word: N" of the reply counts (so a stray "Note: 3" makes five
    /// pairs and the reply unparseable). With revision, the pairs between "First pass scores:" and "Revised scores:"
    /// and those after "Revised scores:"; a missing section gives no pairs.
    /// </summary>
    public static (EqBenchAnswers FirstPass, EqBenchAnswers Revised) ParseAnswers(string reply, bool revise)
    {
        if (!revise) return (Pairs(reply), new EqBenchAnswers([]));
        var first = _firstPass.Match(reply);
        var revised = _revised.Match(reply);
        return (first.Success ? Pairs(first.Groups[1].Value) : new EqBenchAnswers([]),
                revised.Success ? Pairs(revised.Groups[1].Value) : new EqBenchAnswers([]));
    }

    /// <summary>
    /// <c>calculate_score_fullscale</c>: the question's 0–10 score, or null unless there are exactly four pairs whose
    /// names all match the reference's (case-sensitive). Can be negative for answers far from the reference.
    /// </summary>
    public static double? ScoreFullscale(EqBenchReference reference, EqBenchAnswers answers)
    {
        if (answers.Pairs.Count != 4) return null;
        if (answers.Pairs.Count(p => reference.Emotions.Any(r => r.Emotion == p.Emotion)) != 4) return null;
        var tally = 0.0;
        foreach (var (emotion, score) in answers.Pairs)
        foreach (var (refEmotion, refScore) in reference.Emotions)
        {
            if (emotion != refEmotion) continue;
            var d = Math.Abs(score - refScore);
            tally += d == 0 ? 0 : d <= 5 ? 6.5 * (1 / (1 + Math.Pow(Math.E, -1.2 * (d - 4)))) : d;
        }
        return 10 - tally * AdjustConstant;
    }

    /// <summary>
    /// Whether the reference's run loop accepts the answer: it retries (and, out of retries, drops the question)
    /// when v1's <c>calculate_score</c> returns None — the v2 conditions plus "scores must not all be 0"
    /// (the prompt's "You must score at least one emotion &gt; 0").
    /// </summary>
    public static bool IsParseable(EqBenchItem item, EqBenchAnswers answers) =>
        ScoreFullscale(item.Reference, answers) is not null && answers.Pairs.Sum(p => p.Score) > 0 &&
        ScoreFullscale(item.ReferenceFullscale, answers) is not null;

    /// <summary>
    /// lm-eval's <c>eq_bench</c> variant, per question: (score × 10, 100) when v2 scores it, else (0, 0) — unparseable
    /// replies count as 0 there instead of being left out, and there is no all-zero rule and no failed run.
    /// </summary>
    public static (double EqBench, double PercentParseable) LmEvalScore(EqBenchReference referenceFullscale, string reply) =>
        ScoreFullscale(referenceFullscale, ParseAnswers(reply, revise: false).FirstPass) is { } s ? (s * 10, 100) : (0, 0);

    static EqBenchAnswers Pairs(string text)
    {
        var pairs = new List<(string Emotion, double Score)>();
        foreach (Match m in _pair.Matches(text))
        {
            var score = DigitsValue(m.Groups[2].Value);
            var at = pairs.FindIndex(p => p.Emotion == m.Groups[1].Value);
            if (at >= 0) pairs[at] = (pairs[at].Emotion, score); else pairs.Add((m.Groups[1].Value, score));
        }
        return new EqBenchAnswers(pairs);
    }

    /// <summary>float() of a run of Unicode decimal digits ("07", "٣").</summary>
    static double DigitsValue(string digits)
    {
        var value = 0.0;
        foreach (var c in digits) value = value * 10 + CharUnicodeInfo.GetDecimalDigitValue(c);
        return value;
    }
}
