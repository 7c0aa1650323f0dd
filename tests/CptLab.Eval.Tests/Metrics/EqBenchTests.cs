using System.Security.Cryptography;
using System.Text;
using CptLab.Eval.Metrics;
using CptLab.TestKit;

namespace CptLab.Eval.Tests.Metrics;

/// <summary>
/// Against the real 171 questions and EQ-bench/EQ-Bench's lib/scoring.py (@d28c60c). Per-question expectations are
/// worked out by hand from its formula: scaled(d) = 0 (d = 0), 6.5 / (1 + e^(−1.2(d−4))) (d ≤ 5), d (d &gt; 5);
/// score = 10 − 0.7477 × Σ scaled.
/// </summary>
public class EqBenchTests
{
    static readonly Lazy<IReadOnlyList<EqBenchItem>> Items =
        new(() => EqBenchItems.Load(Path.Combine(RepoPaths.SharedData, "eq-bench", "eq_bench_v2_questions_171.json")));

    static EqBenchItem First => Items.Value[0];

    /// <summary>Item 1's v2 reference: Remorseful 0, Indifferent 6, Affectionate 0, Annoyed 7.</summary>
    static string Reply(int remorseful, int indifferent, int affectionate, int annoyed) =>
        $"Remorseful: {remorseful}\nIndifferent: {indifferent}\nAffectionate: {affectionate}\nAnnoyed: {annoyed}\n";

    /// <summary>The reply a perfect model gives: the reference's own scores, in the format the prompt asks for.</summary>
    static string PerfectReply(EqBenchItem item) =>
        string.Concat(item.ReferenceFullscale.Emotions.Select(e => $"{e.Emotion}: {e.Score}\n"));

    [Fact]
    public void Reads_the_171_questions_with_string_and_int_scores()
    {
        var items = Items.Value;
        Assert.Equal(171, items.Count);
        Assert.Equal(Enumerable.Range(1, 171).Select(i => i.ToString()), items.Select(i => i.Id));
        Assert.StartsWith("\nYour task is to predict the likely emotional responses of a character in this dialogue:", First.Prompt);
        // In the file: emotion1_score 0 (int), emotion2_score '6' (string), 0, '7'; v1: 2, 3, 0, 5.
        Assert.Equal([("Remorseful", 0.0), ("Indifferent", 6.0), ("Affectionate", 0.0), ("Annoyed", 7.0)], First.ReferenceFullscale.Emotions);
        Assert.Equal([("Remorseful", 2.0), ("Indifferent", 3.0), ("Affectionate", 0.0), ("Annoyed", 5.0)], First.Reference.Emotions);
    }

    [Fact]
    public void The_default_prompt_drops_the_revision_part_as_the_reference_does()
    {
        var prompt = EqBench.PromptWithoutRevision(First.Prompt);
        Assert.EndsWith("\n\nRemorseful: <score>\nIndifferent: <score>\nAffectionate: <score>\nAnnoyed: <score>\n\n\n[End of answer]\n\n" +
                        "Remember: zero is a valid score, meaning they are likely not feeling that emotion. You must score at least one emotion > 0.\n\nYour answer:\n", prompt);
        Assert.Equal(1116, prompt.Length);
        // SHA-256 of all 171 prompts concatenated, from the reference's remove_revision_instructions(prompt, 'en') run in Python.
        var all = string.Concat(Items.Value.Select(i => EqBench.PromptWithoutRevision(i.Prompt)));
        Assert.Equal("726517dd05e5811dbf1f4d761070047dfe1f79cd8f2248c5e5882d15d10c1c53",
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(all))));
    }

    [Fact]
    public void A_reply_equal_to_the_reference_scores_10_per_item_and_100_overall()
    {
        Assert.Equal(10.0, EqBench.ScoreFullscale(First.ReferenceFullscale, EqBench.ParseAnswers(Reply(0, 6, 0, 7), false).FirstPass));
        var run = EqBenchRun.Score(Items.Value, Items.Value.Select(PerfectReply).ToList());
        Assert.Equal(100.0, run.Score);
        Assert.Equal(171, run.Parseable);
        Assert.False(run.Failed);
        Assert.All(run.Items, i => Assert.Equal(10.0, i.FirstPass));
    }

    [Theory]
    // d = 1 and 4: 6.5/(1+e^3.6) = 6.5/37.598234 = 0.172880, 6.5/(1+e^0) = 3.25 → 10 − 0.7477 × 3.422880 = 7.440712
    [InlineData(1, 6, 0, 3, 7.4407122813667534)]
    // d = 5 and 7: 6.5/(1+e^−1.2) = 6.5/1.301194 = 4.995411, then linear 7 → 10 − 0.7477 × 11.995411 = 1.031031
    [InlineData(5, 6, 0, 0, 1.0310311259555984)]
    // d = 2, 3, 6, 3: 6.5/(1+e^2.4) = 0.540623, 6.5/(1+e^1.2) = 1.504589, linear 6, 1.504589 → 10 − 0.7477 × 9.549801 = 2.859614
    [InlineData(2, 3, 6, 10, 2.8596142844935137)]
    public void Perturbed_replies_score_what_the_formula_gives(int remorseful, int indifferent, int affectionate, int annoyed, double expected)
    {
        var score = EqBench.ScoreFullscale(First.ReferenceFullscale, EqBench.ParseAnswers(Reply(remorseful, indifferent, affectionate, annoyed), false).FirstPass);
        Assert.NotNull(score);
        Assert.Equal(expected, score.Value, 12);
    }

    [Theory]
    [InlineData("Remorseful: 0\nIndifferent: 6\nAnnoyed: 7\n")]                                   // three pairs
    [InlineData("remorseful: 0\nIndifferent: 6\nAffectionate: 0\nAnnoyed: 7\n")]                 // names are case-sensitive
    [InlineData("Sad: 0\nIndifferent: 6\nAffectionate: 0\nAnnoyed: 7\n")]                        // a name not in the reference
    [InlineData("Remorseful: 0\nIndifferent: 6\nAffectionate: 0\nAnnoyed: 7\nNote: 3 of them\n")] // any "Word: N" counts: five pairs
    [InlineData("Remorseful: 0\nIndifferent: 0\nAffectionate: 0\nAnnoyed: 0\n")]                 // all zero: v1's check rejects it
    [InlineData("Remorseful: low\nIndifferent: 6.5\nAffectionate: 0\nAnnoyed: 7\n")]             // "6.5" parses as Indifferent 6 … but "low" no pair
    [InlineData("")]
    public void Unparseable_replies_are_recognised(string reply) =>
        Assert.False(EqBench.IsParseable(First, EqBench.ParseAnswers(reply, false).FirstPass));

    [Fact]
    public void A_repeated_name_keeps_its_last_score_and_its_first_place()
    {
        // Without revision the whole reply is parsed: first-pass and revised lines fold into four names, revised values winning.
        var reply = "First pass scores:\nRemorseful: 3\nIndifferent: 2\nAffectionate: 0\nAnnoyed: 9\nCritique: ok\n\n" +
                    "Revised scores:\nRemorseful: 0\nIndifferent: 6\nAffectionate: 0\nAnnoyed: 7\n";
        var (all, _) = EqBench.ParseAnswers(reply, revise: false);
        Assert.Equal([("Remorseful", 0.0), ("Indifferent", 6.0), ("Affectionate", 0.0), ("Annoyed", 7.0)], all.Pairs);

        var (first, revised) = EqBench.ParseAnswers(reply, revise: true);
        Assert.Equal([3.0, 2.0, 0.0, 9.0], first.Pairs.Select(p => p.Score));
        Assert.Equal(10.0, EqBench.ScoreFullscale(First.ReferenceFullscale, revised));
        // First pass: d = 3, 4, 0, 2 → 1.504589 + 3.25 + 0 + 0.540623 = 5.295211 → 10 − 0.7477 × 5.295211 = 6.040770
        Assert.Equal(6.040770, EqBench.ScoreFullscale(First.ReferenceFullscale, first)!.Value, 5);
    }

    [Fact]
    public void Revised_scores_are_used_when_no_worse_and_as_parseable()
    {
        var items = Items.Value.Take(2).ToList();
        var replies = new List<string?>
        {
            "First pass scores:\nRemorseful: 3\nIndifferent: 2\nAffectionate: 0\nAnnoyed: 9\nRevised scores:\n" + Reply(0, 6, 0, 7),
            "First pass scores:\n" + PerfectReply(items[1]) + "Revised scores:\n" + PerfectReply(items[1]),
        };
        var run = EqBenchRun.Score(items, replies, revise: true);
        Assert.True(run.UsedRevised);
        Assert.Equal(100.0, run.Score);
        // First pass: (6.040770 + 10) / 2 = 8.020385 → 80.20385; revised 100 ≥ that, 2 parseable ≥ 0.95 × 2
        Assert.Equal(80.20385, run.FirstPassScore, 3);
    }

    [Fact]
    public void The_benchmark_score_averages_parseable_items_only()
    {
        var items = Items.Value.Take(3).ToList();
        var replies = new List<string?> { Reply(1, 6, 0, 3), PerfectReply(items[1]), "I cannot answer that." };
        var run = EqBenchRun.Score(items, replies);
        // (7.440712 + 10) / 2 parseable = 8.720356 → × 10 = 87.20356 → 87.2
        Assert.Equal(87.2, run.Score);
        Assert.Equal(2, run.Parseable);
        Assert.Null(run.Items[2].FirstPass);
        Assert.True(run.Failed);   // 2/3 = 66.7% < 83.33%
    }

    [Theory]
    [InlineData(143, false)]   // 143/171 = 0.83626 ≥ 0.8333
    [InlineData(142, true)]    // 142/171 = 0.83041 < 0.8333: reported as failed
    public void A_run_with_too_few_parseable_answers_is_failed(int parseable, bool failed)
    {
        var items = Items.Value;
        var replies = items.Select((item, i) => i < parseable ? PerfectReply(item) : "no scores here").ToList<string?>();
        var run = EqBenchRun.Score(items, replies);
        Assert.Equal(parseable, run.Parseable);
        Assert.Equal((double)parseable / 171, run.ParseRate, 12);
        Assert.Equal(failed, run.Failed);
        Assert.Equal(100.0, run.Score);   // unparseable questions are left out of the mean, not counted as 0
    }

    [Fact]
    public void The_lm_eval_variant_counts_unparseable_replies_as_zero()
    {
        Assert.Equal((100.0, 100.0), EqBench.LmEvalScore(First.ReferenceFullscale, Reply(0, 6, 0, 7)));
        Assert.Equal((0.0, 0.0), EqBench.LmEvalScore(First.ReferenceFullscale, "Remorseful: 0"));
        var (score, _) = EqBench.LmEvalScore(First.ReferenceFullscale, Reply(1, 6, 0, 3));
        Assert.Equal(74.407122813667534, score, 10);
    }
}
