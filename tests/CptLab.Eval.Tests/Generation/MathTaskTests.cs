using System.Text.Json;
using CptLab.Eval.Tasks;

namespace CptLab.Eval.Tests.Generation;

/// <summary>
/// The minerva_math task on a fixture written here in the Hendrycks MATH schema (problem, level, type, solution):
/// the prompt is the four Minerva shots then the problem, right and wrong final answers score as exact_match says,
/// a solution without a boxed answer is skipped with its line, and the group is the size-weighted mean.
/// </summary>
public class MathTaskTests
{
    static readonly TaskRegistry Registry = new(TaskRegistry.DefaultFolder);

    static void WriteJsonl(string path, params (string Problem, string Solution)[] rows)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllLines(path, rows.Select(r => JsonSerializer.Serialize(new { problem = r.Problem, level = "Level 2", type = "Algebra", solution = r.Solution })));
    }

    static string Final(string answer) => $"We compute it.\nFinal Answer: The final answer is ${answer}$. I hope it is correct.";

    [Fact]
    public void Four_shot_minerva_prompt_and_boxed_answers_scored()
    {
        var data = Temp.Dir();
        WriteJsonl(Path.Combine(data, "math", "algebra", "test.jsonl"),
            ("What is $1/2$ as a fraction?", "It is $\\boxed{\\frac{1}{2}}$."),
            ("Solve $x+1=4$.", "So $x = \\boxed{3}$."),
            ("How many feet in a yard?", "There are $\\boxed{3\\text{ feet}}$ in a yard."),
            ("A problem whose solution has no box.", "The answer is 7."));
        WriteJsonl(Path.Combine(data, "math", "test", "prealgebra.jsonl"),
            ("Compute $10,000 + 1$.", "That is $\\boxed{10,\\!001}$."));
        var replies = new Dictionary<string, string>
        {
            ["What is $1/2$ as a fraction?"] = Final("\\frac12"),                 // \frac12 → \frac{1}{2}: right
            ["Solve $x+1=4$."] = Final("x = 3"),                                 // the part after "=": right
            ["How many feet in a yard?"] = "It is 3 feet.",                      // no final-answer sentence: wrong
            ["Compute $10,000 + 1$."] = Final("10001"),                          // commas and \! dropped: right
        };
        var model = new ScriptedModel((prompt, _) => replies[prompt[(prompt.LastIndexOf("Problem:\n", StringComparison.Ordinal) + 9)..^"\n\nSolution:".Length]]);
        var spec = Registry.Select("minerva_math").Tasks.Single();
        var run = Evaluator.Run(model, [spec], new EvalOptions { DataDir = data },
            subjects: new Dictionary<string, IReadOnlyCollection<string>> { ["minerva_math"] = ["algebra", "prealgebra"] });

        var units = run.Tasks.Single().Units.ToDictionary(u => u.Name);
        Assert.Equal(2.0 / 3, units["minerva_math_algebra"].Metrics.Single().Value, 12);
        Assert.Equal(1.0, units["minerva_math_prealgebra"].Metrics.Single().Value);
        Assert.Equal(0.75, run.Tasks.Single().Aggregate.Single(m => m.Metric == "exact_match").Value, 12);   // (2 + 1) / 4 documents
        var skip = units["minerva_math_algebra"].Skipped.Single();
        Assert.Equal(4, skip.Line);
        Assert.Contains("no \\boxed", skip.Reason);
        Assert.Equal(4, run.Tasks.Single().NumFewshot);

        // The prompt: four shots "Problem:\n{problem}\n\nSolution: {solution}\n\n" from minerva_math/utils.py, then the problem.
        var prompt = model.Requests[0].Context;
        Assert.StartsWith("Problem:\nFind the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}\n\nSolution: The expressions inside each square root must be non-negative.", prompt);
        Assert.Contains("the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is correct.\n\nProblem:\nIf $\\det \\mathbf{A} = 2$", prompt);
        Assert.Contains("\\begin{align*}\n30n&=480\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\n", prompt);
        Assert.EndsWith("$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.\n\nProblem:\nWhat is $1/2$ as a fraction?\n\nSolution:", prompt);
        Assert.Equal(5, prompt.Split("Problem:\n").Length - 1);
        Assert.All(model.Requests, r => Assert.Equal(["Problem:"], r.Until));

        // samples.jsonl: the normalised gold answer as target, the extracted answer beside the generation.
        var first = run.Samples.First(s => s.Task == "minerva_math_algebra");
        Assert.Equal("\\frac{1}{2}", first.Target);
        Assert.Equal("\\frac{1}{2}", first.Filtered!["process_results"]);
        Assert.Equal("10001", run.Samples.Single(s => s.Task == "minerva_math_prealgebra").Target);
    }
}
