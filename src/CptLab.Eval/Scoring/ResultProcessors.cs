using CptLab.Eval.Tasks;

namespace CptLab.Eval.Scoring;

/// <summary>What a result processor sees of one document: the document, its prepared form, and the model's output.</summary>
public sealed record ProcessInput(PreparedDoc Doc, string? Generation, IReadOnlyList<double>? LogLikelihoods);

/// <summary>A processor's verdict on one document: metric name → value (averaged over documents), and an optional extracted answer for samples.jsonl.</summary>
public sealed record ProcessOutput(IReadOnlyDictionary<string, double> Metrics, string? Extracted = null);

/// <summary>What a corpus-level processor sees: a task or subject's documents and, per document, its generations (repeats of them).</summary>
public sealed record BatchInput(TaskSpec Spec, TaskUnit Unit, IReadOnlyList<IReadOnlyList<string>> Generations, EvalOptions Options);

/// <summary>Per-document verdicts (in document order), metrics over the whole unit that are not a mean of documents, and notes for the report.</summary>
public sealed record BatchOutput(IReadOnlyList<ProcessOutput> PerDoc, IReadOnlyList<MetricValue> UnitMetrics, IReadOnlyList<string> Notes);

/// <summary>
/// Named result processors, lm-eval's <c>process_results: !function utils.process_results</c>: a task file names one
/// (<c>process_results: humaneval_pass_at_1</c>) and the evaluator calls it for each document instead of the built-in
/// metrics; its metric names must be those of the task's metric_list. Domain scorers (code execution, MATH answers,
/// EQ-Bench) are listed here by name. A corpus-level processor (<see cref="GetBatch"/>) gets a whole unit at once:
/// HumanEval runs all its programs with bounded parallelism, EQ-Bench applies its run-level failed rule.
/// </summary>
public static class ResultProcessors
{
    static readonly Dictionary<string, Func<ProcessInput, ProcessOutput>> _registry = new(StringComparer.Ordinal)
    {
        // The target, whitespace-trimmed, equals the generation, whitespace-trimmed: a trivial processor for tests and quick tasks.
        ["exact_trimmed"] = i => new ProcessOutput(new Dictionary<string, double> { ["exact_match"] = (i.Generation ?? "").Trim() == i.Doc.Target.Trim() ? 1 : 0 }, (i.Generation ?? "").Trim()),
        ["hendrycks_math"] = MathScorers.Hendrycks,
        ["minerva_math"] = MathScorers.Minerva,
    };

    // Corpus-level processors: one call per task or subject with every document and all its generations.
    static readonly Dictionary<string, Func<BatchInput, BatchOutput>> _batch = new(StringComparer.Ordinal)
    {
        ["humaneval_pass_at_k"] = HumanEvalScorer.Score,
        ["eq_bench"] = EqBenchScorer.Score,
    };

    public static void RegisterBatch(string name, Func<BatchInput, BatchOutput> processor)
    {
        lock (_registry) _batch[name] = processor;
    }

    /// <summary>The corpus-level processor of that name, or null when it is a per-document one (or unknown).</summary>
    public static Func<BatchInput, BatchOutput>? GetBatch(string name)
    {
        lock (_registry) return _batch.GetValueOrDefault(name);
    }

    public static void Register(string name, Func<ProcessInput, ProcessOutput> processor)
    {
        lock (_registry) _registry[name] = processor;
    }

    public static Func<ProcessInput, ProcessOutput> Get(string name, string taskFile)
    {
        lock (_registry)
            return _registry.TryGetValue(name, out var p) ? p
                : throw new Core.CptLabException($"{taskFile}: process_results '{name}' is not a registered result processor (known: {string.Join(", ", Names)})");
    }

    public static IReadOnlyCollection<string> Names
    {
        get { lock (_registry) return _registry.Keys.Concat(_batch.Keys).Order(StringComparer.Ordinal).ToArray(); }
    }
}
