using CptLab.Eval.Scoring;
using CptLab.Eval.Tasks;

namespace CptLab.Eval.Tests;

/// <summary>gsm8k's filters and exact_match on hand-written outputs; metrics and stderrs against hand computations.</summary>
public class ScoringTests
{
    static readonly TaskSpec Gsm8k = new TaskRegistry(TaskRegistry.DefaultFolder).Select("gsm8k").Tasks[0];
    const string Gold = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market.\n#### 18";

    // (output, strict-match answer, its score, flexible-extract answer, its score), derived by hand from lm-eval's regexes:
    // strict "#### (\-?[0-9\.\,]+)" first match's group; flexible "(-?[$0-9.,]{2,})|(-?[0-9]+)" last match's non-empty group;
    // then exact_match removes ",", "$", everything through "#### ", a final ".", and lower-cases.
    public static TheoryData<string, string, double, string, double> Outputs => new()
    {
        { "She makes 9 * 2 = $18 every day.\n#### 18", "18", 1, "18", 1 },                 // right
        { "The answer is 17.\n#### 17", "17", 0, "17", 0 },                                  // wrong
        { "She makes 18 dollars.", "[invalid]", 0, "18", 1 },                                // malformed: no ####
        { "16 - 3 - 4 = 9 eggs, 9 * 2 = 18", "[invalid]", 0, "18", 1 },                      // several numbers: the last
        { "#### 1,8", "1,8", 1, "1,8", 1 },                                                  // commas removed before comparing
        { "#### $18", "[invalid]", 0, "$18", 1 },                                            // $ is not in strict's class
        { "So she makes 18.", "[invalid]", 0, "18.", 1 },                                    // a final period removed
        { "no numbers here", "[invalid]", 0, "[invalid]", 0 },
        { "#### -18", "-18", 0, "-18", 0 },
    };

    [Theory]
    [MemberData(nameof(Outputs))]
    public void Gsm8k_filters_and_exact_match(string output, string strict, double strictScore, string flexible, double flexibleScore)
    {
        var em = Gsm8k.Metrics.Single();
        var s = Filters.Apply(Gsm8k.Filters.Single(f => f.Name == "strict-match"), output);
        var f = Filters.Apply(Gsm8k.Filters.Single(f => f.Name == "flexible-extract"), output);
        Assert.Equal(strict, s);
        Assert.Equal(flexible, f);
        Assert.Equal(strictScore, TaskMetrics.ExactMatch(s, Gold, em));
        Assert.Equal(flexibleScore, TaskMetrics.ExactMatch(f, Gold, em));
    }

    [Fact]
    public void Exact_match_options()
    {
        var plain = new MetricSpec("exact_match");
        Assert.Equal(0, TaskMetrics.ExactMatch("Paris", "paris", plain));
        Assert.Equal(1, TaskMetrics.ExactMatch("Paris", "paris", plain with { IgnoreCase = true }));
        Assert.Equal(1, TaskMetrics.ExactMatch("paris!", "paris", plain with { IgnorePunctuation = true }));
        Assert.Equal(0, TaskMetrics.ExactMatch("paris!", "paris", plain));
    }

    [Fact]
    public void Stderr_of_the_mean_and_pooled_stderr_by_hand()
    {
        // [1, 0, 1, 1]: mean 0.75, sample variance (3·0.25² + 0.75²)/3 = 0.25, stderr 0.5/√4 = 0.25.
        Assert.Equal(0.75, TaskMetrics.Mean([1, 0, 1, 1]));
        Assert.Equal(0.25, TaskMetrics.MeanStderr([1, 0, 1, 1]), 12);
        // [0, 0, 1]: variance (2·(1/3)² + (2/3)²)/2 = 1/3, stderr √(1/3)/√3 = 1/3.
        Assert.Equal(1.0 / 3, TaskMetrics.MeanStderr([0, 0, 1]), 12);
        // Pooled: ((4−1)·0.25²·4 + (3−1)·(1/3)²·3) / (7 − 2) = 0.28333…, √(0.28333…/7).
        Assert.Equal(0.20118695404073914, TaskMetrics.PooledStderr([0.25, 1.0 / 3], [4, 3]), 12);
        Assert.Equal((0.75 * 4 + 1.0 / 3 * 3) / 7, TaskMetrics.Aggregate([0.75, 1.0 / 3], [4, 3], weightBySize: true), 12);
        Assert.True(double.IsNaN(TaskMetrics.MeanStderr([1])));
    }

    [Fact]
    public void Acc_norm_divides_by_the_choice_length_in_characters()
    {
        // Summed log-probs favour the short choice; per character the long one wins. Ties go to the first (np.argmax).
        var (pred, norm) = TaskMetrics.MultipleChoice([-2.0, -3.0], ["no", "absolutely"]);
        Assert.Equal((0, 1), (pred, norm));
        Assert.Equal((0, 0), TaskMetrics.MultipleChoice([-1.0, -1.0], ["A", "B"]));
        Assert.Equal(2, TaskMetrics.Chars("😀中")); // code points, as Python's len
    }

    [Fact]
    public void A_registered_result_processor_is_found_by_name_and_an_unknown_one_refused()
    {
        ResultProcessors.Register("test_always_one", _ => new ProcessOutput(new Dictionary<string, double> { ["exact_match"] = 1 }));
        Assert.Contains("test_always_one", ResultProcessors.Names);
        Assert.Contains("exact_trimmed", ResultProcessors.Names);
        var e = Assert.Throws<CptLab.Core.CptLabException>(() => ResultProcessors.Get("nope", "t.yaml"));
        Assert.Contains("t.yaml: process_results 'nope'", e.Message);
    }
}
