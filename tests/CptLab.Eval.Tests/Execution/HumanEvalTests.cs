using CptLab.Core;
using CptLab.Eval.Execution;
using CptLab.TestKit;
using Xunit.Abstractions;

namespace CptLab.Eval.Tests.Execution;

[Collection(SandboxCollection.Name)]
public class HumanEvalTests(ITestOutputHelper output)
{
    static readonly Lazy<IReadOnlyList<HumanEvalProblem>> Problems =
        new(() => HumanEvalProblems.Load(Path.Combine(RepoPaths.SharedData, "humaneval", "HumanEval.jsonl.gz")));

    [Fact]
    public void Reads_the_164_problems_of_the_real_file()
    {
        var problems = Problems.Value;
        Assert.Equal(164, problems.Count);
        Assert.Equal(Enumerable.Range(0, 164).Select(i => $"HumanEval/{i}"), problems.Select(p => p.TaskId));
        var first = problems[0];
        Assert.Equal("has_close_elements", first.EntryPoint);
        Assert.StartsWith("from typing import List\n\n\ndef has_close_elements(", first.Prompt);
        Assert.Contains("def check(candidate):", first.Test);
    }

    [Fact]
    public void Builds_the_program_as_human_eval_does()
    {
        var problem = new HumanEvalProblem("T/0", "def f(x):\n", "    return x\n", "def check(candidate):\n    assert candidate(2) == 2\n", "f");
        Assert.Equal("def f(x):\n    return x\n\ndef check(candidate):\n    assert candidate(2) == 2\n\ncheck(f)",
            HumanEval.BuildProgram(problem, "    return x\n"));
    }

    [Fact]
    public async Task All_164_canonical_solutions_pass()
    {
        var problems = Problems.Value;
        var run = await HumanEval.RunAsync(problems, problems.Select(p => new HumanEvalCompletion(p.TaskId, p.CanonicalSolution)).ToList(),
            allowCodeExecution: true);
        var failed = run.Samples.Where(s => !s.Execution.Passed).Select(s => $"{s.TaskId}: {s.Execution.Reason}").ToList();
        output.WriteLine($"164 canonical solutions: {run.Samples.Count(s => s.Execution.Passed)} passed in {run.WallTime.TotalSeconds:0.0} s " +
                         $"on {Environment.ProcessorCount} cores; slowest {run.Samples.Max(s => s.Execution.WallTime).TotalSeconds:0.00} s");
        Assert.Empty(failed);
        Assert.Equal(1.0, run.PassAtK[1]);
        Assert.Equal([1], run.PassAtK.Keys);   // one sample per problem: pass@10 and pass@100 are left out
        Assert.Equal(164, run.ProblemsScored);
    }

    [Fact]
    public async Task Wrong_and_hostile_completions_fail_and_pass_at_k_counts_them()
    {
        var p0 = Problems.Value[0];
        var completions = new List<HumanEvalCompletion>
        {
            new(p0.TaskId, p0.CanonicalSolution),
            new(p0.TaskId, "    return False\n"),                        // wrong answer
            new(p0.TaskId, p0.CanonicalSolution),
            new(p0.TaskId, "    while True:\n        pass\n"),           // never returns
            new(p0.TaskId, "    import os\n    os.system('rm -rf /usr')\n    return False\n"),
        };
        var run = await HumanEval.RunAsync([p0], completions, allowCodeExecution: true);
        Assert.Equal([true, false, true, false, false], run.Samples.Select(s => s.Execution.Passed));
        Assert.Equal([0, 1, 2, 3, 4], run.Samples.Select(s => s.SampleIndex));
        Assert.Equal("failed: AssertionError", run.Samples[1].Execution.Reason);
        Assert.Equal(ExecutionStatus.TimedOut, run.Samples[3].Execution.Status);
        Assert.Equal(0.4, run.PassAtK[1], 12);        // n=5, c=2
        Assert.True(File.Exists("/usr/bin/python3"));
    }

    [Fact]
    public async Task Refuses_to_run_without_permission()
    {
        var e = await Assert.ThrowsAsync<CptLabException>(() =>
            HumanEval.RunAsync(Problems.Value, [new HumanEvalCompletion("HumanEval/0", "    return True\n")], allowCodeExecution: false));
        Assert.Contains("--allow-code-execution", e.Message);
    }

    [Fact]
    public async Task Refuses_completions_for_unknown_tasks()
    {
        var e = await Assert.ThrowsAsync<CptLabException>(() =>
            HumanEval.RunAsync(Problems.Value, [new HumanEvalCompletion("HumanEval/999", "")], allowCodeExecution: true));
        Assert.Contains("HumanEval/999", e.Message);
    }
}
