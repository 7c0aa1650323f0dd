using System.IO.Compression;
using System.Text.Json;
using CptLab.Core;

namespace CptLab.Eval.Execution;

/// <summary>One HumanEval problem, as in openai/human-eval's data/HumanEval.jsonl.gz.</summary>
/// <param name="Prompt">Signature and docstring; the model continues it.</param>
/// <param name="CanonicalSolution">The reference body (continues <paramref name="Prompt"/>).</param>
/// <param name="Test">Defines <c>check(candidate)</c> with the asserts.</param>
/// <param name="EntryPoint">The function name passed to <c>check</c>.</param>
public sealed record HumanEvalProblem(string TaskId, string Prompt, string CanonicalSolution, string Test, string EntryPoint);

/// <summary>Reads HumanEval problem files: JSON lines, gzip-compressed when the name ends in .gz.</summary>
public static class HumanEvalProblems
{
    public static IReadOnlyList<HumanEvalProblem> Load(string path)
    {
        if (!File.Exists(path)) throw new CptLabException($"{path}: HumanEval file not found (openai/human-eval ships it as data/HumanEval.jsonl.gz)");
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new StreamReader(stream);
        var problems = new List<HumanEvalProblem>();
        var seen = new HashSet<string>();
        var lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            HumanEvalProblem problem;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                problem = new HumanEvalProblem(Field(root, "task_id"), Field(root, "prompt"), Field(root, "canonical_solution"),
                    Field(root, "test"), Field(root, "entry_point"));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new CptLabException($"{path}:{lineNumber}: not a HumanEval problem ({e.Message})", e);
            }
            if (!seen.Add(problem.TaskId)) throw new CptLabException($"{path}:{lineNumber}: task_id '{problem.TaskId}' appears twice");
            problems.Add(problem);
        }
        return problems;
    }

    static string Field(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new KeyNotFoundException($"missing string field '{name}'");
}
