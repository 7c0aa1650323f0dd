using CptLab.Core;
using CptLab.Eval.Execution;
using CptLab.Eval.Tasks;
using CptLab.Eval.Tests.Execution;
using CptLab.TestKit;

namespace CptLab.Eval.Tests.Generation;

/// <summary>
/// The humaneval task end to end through the evaluator, with generations given by a scripted backend: the requests
/// are lm-eval's (prompt, its five stop strings, 1024 tokens), the canonical solutions score pass@1 = 1, wrong bodies 0,
/// pass@k over n samples equals the binomial formula computed here, and nothing runs without permission.
/// </summary>
[Collection(SandboxCollection.Name)]
public class HumanEvalTaskTests
{
    static readonly TaskRegistry Registry = new(TaskRegistry.DefaultFolder);
    static readonly Lazy<Dictionary<string, HumanEvalProblem>> ByPrompt = new(() =>
        HumanEvalProblems.Load(Path.Combine(RepoPaths.SharedData, "humaneval", "HumanEval.jsonl.gz")).ToDictionary(p => p.Prompt));

    static TaskSpec Spec => Registry.Select("humaneval").Tasks.Single();
    static EvalOptions Options(int limit) => new() { DataDir = RepoPaths.SharedData, Limit = limit, AllowCodeExecution = true };

    [Fact]
    public void Canonical_solutions_score_pass_at_1_of_one_and_wrong_bodies_zero()
    {
        var right = new ScriptedModel((prompt, _) => ByPrompt.Value[prompt].CanonicalSolution);
        var run = Evaluator.Run(right, [Spec], Options(6));
        var unit = run.Tasks.Single().Units.Single();
        Assert.Equal(6, unit.N);
        var pass1 = unit.Metrics.Single(m => m.Metric == "pass@1");
        Assert.Equal(1.0, pass1.Value);
        Assert.Equal(6, pass1.N);
        Assert.All(right.Requests, r =>
        {
            Assert.True(ByPrompt.Value.ContainsKey(r.Context));           // the prompt exactly, no few-shot, no description
            Assert.Equal(["\nclass", "\ndef", "\n#", "\nif", "\nprint"], r.Until);
            Assert.Equal(1024, r.MaxGenToks);
            Assert.Null(r.Sampling);                                       // greedy
        });
        Assert.Equal(["HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3", "HumanEval/4", "HumanEval/5"],
            right.Requests.Select(r => ByPrompt.Value[r.Context].TaskId));
        Assert.All(run.Samples, s => Assert.Equal("1/1 passed; first: passed", s.Filtered!["process_results"]));

        // Every other problem answered by a body that returns None: pass@1 = 3/6, with lm-eval's stderr of the mean.
        var half = new ScriptedModel((prompt, _) => ByPrompt.Value[prompt].TaskId.EndsWith('0') || ByPrompt.Value[prompt].TaskId.EndsWith('2') || ByPrompt.Value[prompt].TaskId.EndsWith('4')
            ? ByPrompt.Value[prompt].CanonicalSolution : "    return None\n");
        var halfPass = Evaluator.Run(half, [Spec], Options(6)).Tasks.Single().Units.Single().Metrics.Single(m => m.Metric == "pass@1");
        Assert.Equal(0.5, halfPass.Value, 12);
        Assert.Equal(Math.Sqrt(6 * 0.25 / 5) / Math.Sqrt(6), halfPass.Stderr, 12);

        var wrong = new ScriptedModel((_, _) => "    return None\n");
        var wrongRun = Evaluator.Run(wrong, [Spec], Options(3));
        Assert.Equal(0.0, wrongRun.Tasks.Single().Units.Single().Metrics.Single(m => m.Metric == "pass@1").Value);
        Assert.StartsWith("0/1 passed; first: failed", wrongRun.Samples[0].Filtered!["process_results"]);
    }

    [Fact]
    public void Pass_at_k_over_sampled_generations_is_the_unbiased_estimator()
    {
        // Problem 0: samples 0 and 3 of 5 pass; problem 1: none; problem 2: all five.
        var script = new ScriptedModel((prompt, i) =>
        {
            var p = ByPrompt.Value[prompt];
            bool pass = p.TaskId switch { "HumanEval/0" => i is 0 or 3, "HumanEval/1" => false, _ => true };
            return pass ? p.CanonicalSolution : "    raise ValueError('wrong')\n";
        });
        var spec = Spec with { Metrics = [new("pass@1"), new("pass@2"), new("pass@5"), new("pass@10")] };
        var run = Evaluator.Run(script, [spec], Options(3) with { NumSamples = 5, Temperature = 0.8, TopP = 0.95 });
        var unit = run.Tasks.Single().Units.Single();
        double Expected(int k) => new[] { (5, 2), (5, 0), (5, 5) }.Average(nc => 1 - Choose(nc.Item1 - nc.Item2, k) / Choose(nc.Item1, k));
        Assert.Equal(Expected(1), unit.Metrics.Single(m => m.Metric == "pass@1").Value, 12);
        Assert.Equal((0.4 + 0 + 1) / 3, Expected(1), 12);
        Assert.Equal(Expected(2), unit.Metrics.Single(m => m.Metric == "pass@2").Value, 12);
        Assert.Equal(2.0 / 3, unit.Metrics.Single(m => m.Metric == "pass@5").Value, 12);
        Assert.DoesNotContain(unit.Metrics, m => m.Metric == "pass@10");
        Assert.Contains(unit.Notes, n => n.StartsWith("pass@10 left out", StringComparison.Ordinal));

        // 15 requests, each sampled at the asked temperature with a seed of its own; samples.jsonl keeps all five.
        Assert.Equal(15, script.Requests.Count);
        Assert.All(script.Requests, r => { Assert.Equal(0.8, r.Sampling!.Temperature); Assert.Equal(0.95, r.Sampling.TopP); });
        Assert.Equal(15, script.Requests.Select(r => r.Sampling!.Seed).Distinct().Count());
        Assert.Equal(5, run.Samples[0].Generations!.Count);
        Assert.Equal("2/5 passed; first: passed", run.Samples[0].Filtered!["process_results"]);

        // The seeds depend on the run's seed only: a second run asks for the same ones.
        var again = new ScriptedModel((p, _) => ByPrompt.Value[p].CanonicalSolution);
        Evaluator.Run(again, [spec], Options(3) with { NumSamples = 5, Temperature = 0.8, TopP = 0.95 });
        Assert.Equal(script.Requests.Select(r => r.Sampling!.Seed), again.Requests.Select(r => r.Sampling!.Seed));
    }

    static double Choose(int n, int k)
    {
        if (k > n) return 0;
        double c = 1;
        for (int i = 0; i < k; i++) c = c * (n - i) / (i + 1);
        return c;
    }

    [Fact]
    public void Without_permission_nothing_is_generated_or_run()
    {
        var model = new ScriptedModel((_, _) => throw new InvalidOperationException("must not be asked"));
        var e = Assert.Throws<CptLabException>(() => Evaluator.Run(model, [Spec], Options(2) with { AllowCodeExecution = false }));
        Assert.Contains("--allow-code-execution", e.Message);
        Assert.Contains("humaneval", e.Message);
        Assert.Empty(model.Requests);

        var greedyRepeats = Assert.Throws<CptLabException>(() => Evaluator.Run(model, [Spec], Options(2) with { NumSamples = 4 }));
        Assert.Contains("--temperature", greedyRepeats.Message);
        Assert.Empty(model.Requests);
    }
}
