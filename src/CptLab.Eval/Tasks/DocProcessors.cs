using CptLab.Core;
using CptLab.Eval.Metrics;

namespace CptLab.Eval.Tasks;

/// <summary>
/// Named document transforms, lm-eval's <c>process_docs: !function utils.process_docs</c>: a task file names one and
/// every document read (and every fewshot_config sample) goes through it before the templates see it. A transform
/// that cannot handle a document throws <see cref="CptLabException"/>, and the document is skipped with that reason.
/// </summary>
public static class DocProcessors
{
    static readonly Dictionary<string, Func<EvalDoc, EvalDoc>> _registry = new(StringComparer.Ordinal)
    {
        // eq_bench/default.yaml's dataset (pbevan11/EQ-Bench) holds the v2 prompts without the critique-and-revise part.
        ["eq_bench_v2"] = d => With(d, "prompt", EqBench.PromptWithoutRevision(Field(d, "prompt"))),
        // hendrycks_math/utils.py process_docs: answer = remove_boxed(last_boxed_only_string(solution)).
        ["hendrycks_math"] = d => With(d, "answer", BoxedAnswer(d)),
        // minerva_math/utils.py process_docs: the same, through normalize_final_answer.
        ["minerva_math"] = d => With(d, "answer", MathAnswers.NormalizeFinalAnswer(BoxedAnswer(d))),
    };

    public static IReadOnlyCollection<string> Names => _registry.Keys.Order(StringComparer.Ordinal).ToArray();

    public static Func<EvalDoc, EvalDoc> Get(string name) =>
        _registry.TryGetValue(name, out var p) ? p : throw new CptLabException($"process_docs '{name}' is not a known document transform (known: {string.Join(", ", Names)})");

    static string Field(EvalDoc d, string key) =>
        d[key] as string ?? throw new CptLabException($"missing string field '{key}' (fields: {string.Join(", ", d.Fields.Keys)})");

    static string BoxedAnswer(EvalDoc d) =>
        MathAnswers.RemoveBoxed(MathAnswers.LastBoxedOnlyString(Field(d, "solution")))
        ?? throw new CptLabException("the solution has no \\boxed{…} answer to score against");

    static EvalDoc With(EvalDoc d, string key, object? value) =>
        d with { Fields = new Dictionary<string, object?>(d.Fields) { [key] = value } };
}
