using System.Globalization;
using CptLab.Eval.Metrics;
using CptLab.Eval.Tasks;
using CptLab.TestKit;

namespace CptLab.Eval.Tests.Generation;

/// <summary>
/// The eq_bench task on the real 171 questions with scripted replies: the reference answers score 100 with every
/// answer parseable; garbage scores 0 and the run is flagged failed; the 83.33% rule falls between 143 and 142 of 171.
/// </summary>
public class EqBenchTaskTests
{
    static readonly TaskRegistry Registry = new(TaskRegistry.DefaultFolder);
    static readonly Lazy<IReadOnlyList<EqBenchItem>> Items = new(() => EqBenchItems.Load(Path.Combine(RepoPaths.SharedData, "eq-bench", "eq_bench_v2_questions_171.json")));

    /// <summary>The reply a perfect model gives: the four emotions with the v2 (fullscale) reference intensities.</summary>
    static string Perfect(EqBenchItem item) =>
        string.Concat(item.ReferenceFullscale.Emotions.Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Emotion}: {e.Score}\n")));

    /// <summary>A backend answering the first <paramref name="good"/> questions (in file order) perfectly and the rest with prose.</summary>
    static (ScriptedModel Model, Func<EvalRun> Run) Setup(int good)
    {
        var byPrompt = Items.Value.Select((item, i) => (Prompt: EqBench.PromptWithoutRevision(item.Prompt), Reply: i < good ? Perfect(item) : "They would feel a mix of things, hard to say.")).ToDictionary(x => x.Prompt, x => x.Reply);
        var model = new ScriptedModel((prompt, _) => byPrompt[prompt]);
        return (model, () => Evaluator.Run(model, [Registry.Select("eq_bench").Tasks.Single()], new EvalOptions { DataDir = RepoPaths.SharedData }));
    }

    static double Metric(EvalRun run, string name) => run.Tasks.Single().Units.Single().Metrics.Single(m => m.Metric == name).Value;

    [Fact]
    public void Reference_answers_score_100_with_every_reply_parseable()
    {
        var (model, evaluate) = Setup(good: 171);
        var run = evaluate();
        var unit = run.Tasks.Single().Units.Single();
        Assert.Equal(171, unit.N);
        Assert.Empty(unit.Skipped);
        Assert.Equal(100, Metric(run, "eqbench"), 9);
        Assert.Equal(100, Metric(run, "percent_parseable"));
        Assert.Equal(100, Metric(run, "eqbench_reference"), 9);
        Assert.Equal(100, Metric(run, "parseable_reference"));
        Assert.Equal(0, Metric(run, "failed_reference"));
        Assert.Contains("171/171 (100.00%) parseable, at least 83.33%: not failed", unit.Notes.Single());
        // lm-eval's requests: the prompt without the revision part, 80 tokens, no stop string but the end of text.
        Assert.All(model.Requests, r =>
        {
            Assert.DoesNotContain("Critique", r.Context);
            Assert.DoesNotContain("Revised scores", r.Context);
            Assert.EndsWith("Your answer:\n", r.Context);
            Assert.Equal(80, r.MaxGenToks);
            Assert.Empty(r.Until);
        });
        Assert.Equal(171, model.Requests.Select(r => r.Context).Distinct().Count());
    }

    [Fact]
    public void Garbage_replies_fail_the_run_and_the_rule_falls_between_143_and_142_parseable()
    {
        var garbage = Setup(good: 0).Run();
        Assert.Equal(0, Metric(garbage, "eqbench"));
        Assert.Equal(0, Metric(garbage, "percent_parseable"));
        Assert.Equal(1, Metric(garbage, "failed_reference"));
        Assert.Contains("FAILED run", garbage.Tasks.Single().Units.Single().Notes.Single());
        Assert.Contains("FAILED run", Results.ResultsWriter.Markdown(garbage));

        // 143 of 171 is 83.63%: not failed; 142 is 83.04%: failed. lm-eval counts the others as 0, the reference leaves them out.
        var enough = Setup(good: 143).Run();
        Assert.Equal(0, Metric(enough, "failed_reference"));
        Assert.Equal(100.0 * 143 / 171, Metric(enough, "eqbench"), 9);
        Assert.Equal(100.0 * 143 / 171, Metric(enough, "percent_parseable"), 9);
        Assert.Equal(100, Metric(enough, "eqbench_reference"), 9);
        var tooFew = Setup(good: 142).Run();
        Assert.Equal(1, Metric(tooFew, "failed_reference"));
        Assert.Equal(100.0 * 142 / 171, Metric(tooFew, "parseable_reference"), 9);
    }
}
