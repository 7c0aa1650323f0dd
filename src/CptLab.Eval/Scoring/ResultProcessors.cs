using CptLab.Eval.Tasks;

namespace CptLab.Eval.Scoring;

/// <summary>What a result processor sees of one document: the document, its prepared form, and the model's output.</summary>
public sealed record ProcessInput(PreparedDoc Doc, string? Generation, IReadOnlyList<double>? LogLikelihoods);

/// <summary>A processor's verdict on one document: metric name → value (averaged over documents), and an optional extracted answer for samples.jsonl.</summary>
public sealed record ProcessOutput(IReadOnlyDictionary<string, double> Metrics, string? Extracted = null);

/// <summary>
/// Named result processors, lm-eval's <c>process_results: !function utils.process_results</c>: a task file names one
/// (<c>process_results: humaneval_pass_at_1</c>) and the evaluator calls it for each document instead of the built-in
/// metrics; its metric names must be those of the task's metric_list. Domain scorers (code execution, MATH answers,
/// EQ-Bench) register themselves here by name.
/// </summary>
public static class ResultProcessors
{
    static readonly Dictionary<string, Func<ProcessInput, ProcessOutput>> _registry = new(StringComparer.Ordinal)
    {
        // The target, whitespace-trimmed, equals the generation, whitespace-trimmed: a trivial processor for tests and quick tasks.
        ["exact_trimmed"] = i => new ProcessOutput(new Dictionary<string, double> { ["exact_match"] = (i.Generation ?? "").Trim() == i.Doc.Target.Trim() ? 1 : 0 }, (i.Generation ?? "").Trim()),
    };

    public static void Register(string name, Func<ProcessInput, ProcessOutput> processor)
    {
        lock (_registry) _registry[name] = processor;
    }

    public static Func<ProcessInput, ProcessOutput> Get(string name, string taskFile)
    {
        lock (_registry)
            return _registry.TryGetValue(name, out var p) ? p
                : throw new Core.CptLabException($"{taskFile}: process_results '{name}' is not a registered result processor (known: {string.Join(", ", _registry.Keys.Order(StringComparer.Ordinal))})");
    }

    public static IReadOnlyCollection<string> Names
    {
        get { lock (_registry) return _registry.Keys.Order(StringComparer.Ordinal).ToArray(); }
    }
}
