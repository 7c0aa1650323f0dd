namespace CptLab.Eval.Metrics;

/// <summary>One question's scores: first pass, and revised when the run asked for revision; null where unparseable.</summary>
public sealed record EqBenchItemScore(string Id, double? FirstPass, double? Revised);

/// <summary>
/// A whole EQ-Bench v2 run as the reference reports it. <see cref="Score"/> is 0–100 (rounded to 2 places),
/// averaged over the parseable questions only; <see cref="Failed"/> when fewer than 83.33% of the questions were
/// parseable (the reference then reports the run as failed, "min is 83%": at least 143 of 171).
/// </summary>
public sealed record EqBenchRunScore(
    double Score, int Parseable, int Questions, double FirstPassScore, int FirstPassParseable, double RevisedScore, int RevisedParseable,
    bool UsedRevised, bool Failed, IReadOnlyList<EqBenchItemScore> Items)
{
    public double ParseRate => (double)Parseable / Questions;
}

/// <summary>
/// <c>calculate_eq_bench_score(fullscale=True)</c> for one iteration, plus run_bench.py's 83.33% rule. The reference
/// retries an unparseable question (up to n attempts, temperature +0.15 each); that is generation's job — this
/// scores the replies it is given, one per question.
/// </summary>
public static class EqBenchRun
{
    public const double MinParseableFraction = 0.8333;

    /// <param name="replies">The model's reply to each of <paramref name="items"/>, same order; null for none.</param>
    public static EqBenchRunScore Score(IReadOnlyList<EqBenchItem> items, IReadOnlyList<string?> replies, bool revise = false)
    {
        if (items.Count == 0) throw new ArgumentException("no EQ-Bench questions", nameof(items));
        if (replies.Count != items.Count) throw new ArgumentException($"{replies.Count} replies for {items.Count} questions", nameof(replies));
        var scores = new List<EqBenchItemScore>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var (first, revised) = EqBench.ParseAnswers(replies[i] ?? "", revise);
            scores.Add(new EqBenchItemScore(items[i].Id, ScoreIfParseable(items[i], first), revise ? ScoreIfParseable(items[i], revised) : null));
        }

        var (firstScore, firstParseable) = Mean(scores.Select(s => s.FirstPass));
        var (revisedScore, revisedParseable) = Mean(scores.Select(s => s.Revised));
        // The reference's choice: revised when it is no worse and lost at most 5% of the parseable answers.
        var useRevised = revisedScore >= firstScore && revisedParseable >= 0.95 * firstParseable;
        var final = useRevised ? revisedScore : firstScore;
        var parseable = useRevised ? revisedParseable : firstParseable;
        return new EqBenchRunScore(Math.Round(final, 2, MidpointRounding.ToEven), parseable, items.Count, firstScore, firstParseable,
            revisedScore, revisedParseable, useRevised && revise, (double)parseable / items.Count < MinParseableFraction, scores);
    }

    static double? ScoreIfParseable(EqBenchItem item, EqBenchAnswers answers) =>
        EqBench.IsParseable(item, answers) ? EqBench.ScoreFullscale(item.ReferenceFullscale, answers) : null;

    /// <summary>100 × (mean 0–10 score over the parseable questions) / 10, and how many there were; 0 when none.</summary>
    static (double Score, int Parseable) Mean(IEnumerable<double?> scores)
    {
        var parsed = scores.Where(s => s is not null).Select(s => s!.Value).ToList();
        return parsed.Count == 0 ? (0, 0) : (100 * (parsed.Sum() / parsed.Count / 10), parsed.Count);
    }
}
