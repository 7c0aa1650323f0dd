using System.Globalization;
using CptLab.Core;
using CptLab.Eval.Execution;

namespace CptLab.Eval.Scoring;

/// <summary>
/// lm-eval's humaneval scoring (tasks/humaneval/utils.py): the create_test filter makes each program prompt +
/// generation, code_eval appends "\n" + test + "\ncheck(entry_point)" and runs it; that is
/// <see cref="HumanEval.BuildProgram"/>. Every generation of the unit runs in <see cref="CodeSandbox"/>, one per core
/// at a time. Per document, pass@k is the unbiased estimator over its n generations, so the unit's mean is human-eval's
/// pass@k; the ks are the task's metric names (<c>pass@1</c>, <c>pass@10</c>); one above n is left out with a note.
/// </summary>
public static class HumanEvalScorer
{
    public static BatchOutput Score(BatchInput input)
    {
        var ks = input.Spec.Metrics.Select(m => (m.Metric, K: ParseK(m.Metric, input.Spec.File))).ToArray();
        var docs = input.Unit.Docs;
        var problems = docs.Select(d => new HumanEvalProblem(Field(d.Doc, "task_id"), Field(d.Doc, "prompt"), d.Doc["canonical_solution"] as string ?? "",
            Field(d.Doc, "test"), Field(d.Doc, "entry_point"))).ToArray();
        var completions = new List<HumanEvalCompletion>();
        for (int i = 0; i < docs.Count; i++)
            foreach (var g in input.Generations[i]) completions.Add(new HumanEvalCompletion(problems[i].TaskId, g));
        var run = HumanEval.RunAsync(problems, completions, input.Options.AllowCodeExecution).GetAwaiter().GetResult();

        var byTask = run.Samples.GroupBy(s => s.TaskId).ToDictionary(g => g.Key, g => g.OrderBy(s => s.SampleIndex).ToArray());
        var perDoc = new List<ProcessOutput>();
        var notes = new List<string>();
        int n = input.Generations.Count == 0 ? 0 : input.Generations.Min(g => g.Count);
        foreach (var (metric, k) in ks)
            if (k > n) notes.Add($"{metric} left out: it needs at least {k} samples per problem and there are {n} (--num-samples {k} or more, with --temperature)");
        foreach (var p in problems)
        {
            var results = byTask.GetValueOrDefault(p.TaskId) ?? [];
            int c = results.Count(r => r.Execution.Passed);
            var metrics = ks.Where(m => m.K <= results.Length).ToDictionary(m => m.Metric, m => PassAtK.Estimate(results.Length, c, m.K));
            var first = results.Length > 0 ? results[0].Execution.Reason : "no generation";
            perDoc.Add(new ProcessOutput(metrics, string.Create(CultureInfo.InvariantCulture, $"{c}/{results.Length} passed; first: {first}")));
        }
        notes.Add(string.Create(CultureInfo.InvariantCulture, $"{completions.Count} programs run in the sandbox in {run.WallTime.TotalSeconds:0.0} s"));
        return new BatchOutput(perDoc, [], notes);
    }

    static int ParseK(string metric, string file) =>
        metric.StartsWith("pass@", StringComparison.Ordinal) && int.TryParse(metric.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var k) && k >= 1 ? k
            : throw new CptLabException($"{file}: metric '{metric}' is not pass@K (humaneval_pass_at_k computes pass@1, pass@10, …)");

    static string Field(Tasks.EvalDoc d, string key) =>
        d[key] as string ?? throw new CptLabException($"{d.File}:{d.Line}: HumanEval record has no string field '{key}'");
}
