using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Eval.Backends;
using CptLab.Eval.Tasks;

namespace CptLab.Eval;

/// <summary>
/// `cptlab eval rescore`: scores predictions made elsewhere, without a model, through the same code that scores a run
/// (<see cref="Evaluator.ScoreMultipleChoice"/>, <see cref="Evaluator.ScoreGenerations"/>, <see cref="Evaluator.ScoreRolling"/>),
/// so the task's filters, metrics and aggregation are exactly the evaluator's. The documents are loaded as a run loads
/// them (same --limit, shots and seed); the predictions file is JSON Lines, one record per document:
/// <list type="bullet">
/// <item><c>doc</c> (or lm-eval's <c>doc_id</c>): the document's index in its task or subject, as samples.jsonl numbers it;</item>
/// <item><c>task</c>: the task or subject (cmmlu_agronomy) — needed only for a task with several subjects;</item>
/// <item>generate_until: <c>generation</c> (or lm-eval's <c>resps</c>, [[text]]);</item>
/// <item>multiple_choice: <c>loglikelihoods</c>, one per choice (or lm-eval's <c>resps</c>, [[[ll, is_greedy]], …]);</item>
/// <item>loglikelihood_rolling: <c>loglikelihood</c>, the whole document's (or lm-eval's <c>resps</c>, [[ll]]).</item>
/// </list>
/// A samples.jsonl that `cptlab eval` wrote is such a file. A document without a prediction is an error naming it.
/// </summary>
public static class Rescore
{
    public static EvalRun Run(TaskSpec spec, string predictionsFile, EvalOptions options, IReadOnlyCollection<string>? subjects = null)
    {
        var clock = Stopwatch.StartNew();
        int shots = options.NumFewshot ?? spec.NumFewshot;
        var units = TaskData.Load(spec, options.DataDir, shots, options.Limit, options.Seed, subjects);
        var predictions = Read(predictionsFile, units);
        var samples = new List<SampleRecord>();
        JsonNode Find(TaskUnit u, PreparedDoc d) => predictions.GetValueOrDefault((u.Name, d.Index))
            ?? throw new CptLabException($"{predictionsFile}: no prediction for {u.Name} document {d.Index} ({d.Doc.File}:{d.Doc.Line}); give one line per document, with \"doc\" (and \"task\" for a task with subjects)");
        var results = spec.OutputType switch
        {
            OutputType.MultipleChoice => Evaluator.ScoreMultipleChoice(spec, units, units.SelectMany(u => u.Docs.SelectMany(d => ChoiceLls(Find(u, d), d, predictionsFile))).ToArray(), samples),
            OutputType.GenerateUntil => Evaluator.ScoreGenerations(spec, units, units.SelectMany(u => u.Docs.Select(d => Generation(Find(u, d), predictionsFile))).ToArray(), samples),
            OutputType.LoglikelihoodRolling => Evaluator.ScoreRolling(spec, units, units.SelectMany(u => u.Docs.Select(d => Rolling(Find(u, d), predictionsFile))).ToArray(), samples),
            _ => throw new CptLabException($"{spec.File}: output_type {spec.OutputType} cannot be rescored"),
        };
        var aggregate = spec.Subjects.Count == 0 ? [] : Evaluator.Aggregate(results, spec.WeightBySize);
        var task = new TaskResult(spec.Task, spec.File, spec.FileHash, spec.Version, shots, results, aggregate);
        return new EvalRun($"predictions:{Path.GetFullPath(predictionsFile)}", null, Evaluator.Version, options.Seed, options.Limit, clock.Elapsed.TotalSeconds, [task], samples);
    }

    static Dictionary<(string Unit, int Doc), JsonNode> Read(string file, IReadOnlyList<TaskUnit> units)
    {
        if (!File.Exists(file)) throw new CptLabException($"{file}: predictions file not found");
        var names = units.Select(u => u.Name).ToHashSet(StringComparer.Ordinal);
        var map = new Dictionary<(string, int), JsonNode>();
        long line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode o;
            try { o = JsonNode.Parse(text) ?? throw new FormatException("null"); }
            catch (Exception e) when (e is System.Text.Json.JsonException or FormatException) { throw new CptLabException($"{file}:{line}: not JSON ({e.Message})"); }
            var docNode = o["doc"] ?? o["doc_id"] ?? throw new CptLabException($"{file}:{line}: no \"doc\" (or \"doc_id\"): the document's index");
            int doc = (int)Number(docNode, file, line, "doc");
            var unit = (string?)o["task"] ?? (units.Count == 1 ? units[0].Name : throw new CptLabException($"{file}:{line}: no \"task\": this task has {units.Count} subjects, name one ({units[0].Name}, …)"));
            if (!names.Contains(unit)) continue; // another task's or an unselected subject's line (a whole samples.jsonl of several tasks)
            if (!map.TryAdd((unit, doc), o)) throw new CptLabException($"{file}:{line}: a second prediction for {unit} document {doc}");
        }
        return map;
    }

    static double Number(JsonNode n, string file, long line, string what)
    {
        if (n is JsonValue v)
        {
            if (v.TryGetValue<double>(out var d)) return d;
            if (v.TryGetValue<string>(out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) return d; // lm-eval writes numbers as strings
        }
        throw new CptLabException($"{file}:{line}: {what} is not a number ({n.ToJsonString()})");
    }

    static long LineOf(JsonNode o) => (long?)o["line"] ?? 0;

    static double[] ChoiceLls(JsonNode o, PreparedDoc d, string file)
    {
        double[] lls;
        if (o["loglikelihoods"] is JsonArray a) lls = a.Select(x => Number(x!, file, LineOf(o), "a log-likelihood")).ToArray();
        else if (o["resps"] is JsonArray r) lls = r.Select(x => Number(First(First(x)), file, LineOf(o), "resps' log-likelihood")).ToArray();
        else throw new CptLabException($"{file}: document {d.Index} has no \"loglikelihoods\" (one per choice) nor lm-eval \"resps\"");
        if (lls.Length != d.Choices.Count) throw new CptLabException($"{file}: document {d.Index} has {lls.Length} log-likelihoods for {d.Choices.Count} choices");
        return lls;
    }

    static string Generation(JsonNode o, string file) =>
        (string?)o["generation"] ?? (o["resps"] is JsonArray r ? (string?)First(First(r)) : null)
        ?? throw new CptLabException($"{file}: document {(int?)(o["doc"] ?? o["doc_id"])} has no \"generation\" (nor lm-eval \"resps\")");

    static LoglikelihoodResult Rolling(JsonNode o, string file)
    {
        var n = o["loglikelihood"] ?? (o["resps"] is JsonArray r ? First(First(r)) : null)
            ?? throw new CptLabException($"{file}: document {(int?)(o["doc"] ?? o["doc_id"])} has no \"loglikelihood\" (nor lm-eval \"resps\")");
        return new LoglikelihoodResult(Number(n, file, LineOf(o), "loglikelihood"), false, (int?)o["tokens"] ?? 0);
    }

    /// <summary>lm-eval nests responses in lists ([[x]]): the first element of a list, a scalar as itself.</summary>
    static JsonNode First(JsonNode? n) => n is JsonArray a ? a[0] ?? throw new CptLabException("an empty response list") : n ?? throw new CptLabException("a missing response");
}
