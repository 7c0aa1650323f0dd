using System.Diagnostics;
using CptLab.Core;

namespace CptLab.Eval.Execution;

/// <summary>A model's completion of one HumanEval prompt (the text that follows the prompt, as generated).</summary>
public sealed record HumanEvalCompletion(string TaskId, string Completion);

/// <summary>How one completion fared; <see cref="SampleIndex"/> counts the completions of the same task in input order.</summary>
public sealed record HumanEvalSampleResult(string TaskId, int SampleIndex, ExecutionResult Execution);

/// <summary>Every sample's result (in input order), pass@k for the ks every problem has enough samples for, and the wall time.</summary>
public sealed record HumanEvalRun(IReadOnlyList<HumanEvalSampleResult> Samples, IReadOnlyDictionary<int, double> PassAtK, int ProblemsScored, TimeSpan WallTime);

/// <summary>
/// Functional correctness on HumanEval as openai/human-eval scores it: each completion is appended to its prompt,
/// followed by the problem's test and <c>check(entry_point)</c>, and run; a sample passes when the program exits
/// cleanly. Unlike human-eval, which <c>exec</c>s the code in a forked Python under a "reliability guard" that its
/// authors say is not a sandbox, every program runs in <see cref="CodeSandbox"/> (limits: <see cref="SandboxLimits.HumanEval"/>,
/// 3 s for the program + 1 s for the sandbox to start).
/// </summary>
public static class HumanEval
{
    /// <summary>human-eval's default ks; those above the samples per problem are left out.</summary>
    public static IReadOnlyList<int> DefaultKs { get; } = [1, 10, 100];

    /// <summary>The program human-eval runs: prompt + completion + "\n" + test + "\n" + f"check({entry_point})".</summary>
    public static string BuildProgram(HumanEvalProblem problem, string completion) =>
        problem.Prompt + completion + "\n" + problem.Test + "\n" + $"check({problem.EntryPoint})";

    /// <summary>
    /// Runs every completion, at most <paramref name="maxParallel"/> at once (default: one per core, so the wall clock
    /// a program sees stays close to its CPU time), and averages pass@k over the problems that have completions.
    /// </summary>
    /// <param name="allowCodeExecution">Must be true: the completions are model-written code and this runs them.
    /// The CLI sets it from <c>--allow-code-execution</c>.</param>
    public static async Task<HumanEvalRun> RunAsync(
        IReadOnlyList<HumanEvalProblem> problems,
        IReadOnlyList<HumanEvalCompletion> completions,
        bool allowCodeExecution,
        CodeSandbox? sandbox = null,
        int? maxParallel = null,
        IEnumerable<int>? ks = null,
        CancellationToken cancellationToken = default)
    {
        if (!allowCodeExecution)
            throw new CptLabException("HumanEval runs the model's generated code; refusing without permission. " +
                "Pass --allow-code-execution to run it (inside the bubblewrap sandbox: no network, read-only system, CPU/memory/process limits)");
        var byId = problems.ToDictionary(p => p.TaskId);
        foreach (var c in completions)
            if (!byId.ContainsKey(c.TaskId)) throw new CptLabException($"completion for unknown HumanEval task '{c.TaskId}'");
        sandbox ??= new CodeSandbox();
        await sandbox.EnsureWorksAsync(cancellationToken).ConfigureAwait(false);

        var clock = Stopwatch.StartNew();
        var sampleIndex = new int[completions.Count];
        var perTaskCount = new Dictionary<string, int>();
        for (var i = 0; i < completions.Count; i++)
        {
            perTaskCount.TryGetValue(completions[i].TaskId, out var seen);
            sampleIndex[i] = seen;
            perTaskCount[completions[i].TaskId] = seen + 1;
        }
        var results = new HumanEvalSampleResult[completions.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = maxParallel ?? Environment.ProcessorCount, CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(Enumerable.Range(0, completions.Count), options, async (i, ct) =>
        {
            var completion = completions[i];
            var execution = await sandbox.RunPythonAsync(BuildProgram(byId[completion.TaskId], completion.Completion), ct).ConfigureAwait(false);
            if (execution.Status == ExecutionStatus.SandboxError)
                throw new CptLabException($"{completion.TaskId}: the sandbox failed, not the program: {execution.Reason}");
            results[i] = new HumanEvalSampleResult(completion.TaskId, sampleIndex[i], execution);
        }).ConfigureAwait(false);
        clock.Stop();

        var counts = results.GroupBy(r => r.TaskId).Select(g => (N: g.Count(), C: g.Count(r => r.Execution.Passed))).ToList();
        var passAtK = counts.Count == 0 ? new Dictionary<int, double>() : PassAtK.Mean(counts, ks ?? DefaultKs);
        return new HumanEvalRun(results, passAtK, counts.Count, clock.Elapsed);
    }
}
