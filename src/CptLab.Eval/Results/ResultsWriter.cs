using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Eval.Results;

/// <summary>
/// Writes an evaluation to a folder, each file atomically: results.json (per task and subject: metric, value, stderr,
/// n, skipped with file:line:reason; the model, its config hash, the task files' hashes, few-shot count, seed, CptLab
/// version, wall time, limit), samples.jsonl (every prompt, options' log-likelihoods or the generation, the filtered
/// answers, the target, the scores) and results.md (a table).
/// </summary>
public static class ResultsWriter
{
    public const string ResultsFile = "results.json", SamplesFile = "samples.jsonl", TableFile = "results.md";

    static readonly JsonSerializerOptions _line = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Write(EvalRun run, string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ResultsFile), ResultsJson(run).ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
        AtomicFile.Write(Path.Combine(dir, SamplesFile), s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true);
            foreach (var r in run.Samples) w.Write(JsonSerializer.Serialize(Sample(r), _line) + "\n");
        });
        AtomicFile.WriteAllText(Path.Combine(dir, TableFile), Markdown(run));
    }

    static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>A table value: four decimals, or E-notation past a million (word perplexities of near-random models).</summary>
    static string Show(double v, IFormatProvider c) => Math.Abs(v) >= 1e6 ? v.ToString("0.000E+0", c) : v.ToString("0.0000", c);

    static JsonObject Metric(MetricValue m) => new() { ["metric"] = m.Metric, ["value"] = Num(m.Value), ["stderr"] = Num(m.Stderr), ["n"] = m.N };

    public static JsonObject ResultsJson(EvalRun run) => new()
    {
        ["model"] = run.Model,
        ["api_base"] = run.ApiBase,
        ["model_config_sha256"] = run.ModelConfigHash,
        ["dtype"] = run.Dtype,
        ["cptlab_version"] = run.CptLabVersion,
        ["fewshot_seed"] = run.Seed,
        ["limit"] = run.Limit,
        ["wall_seconds"] = Math.Round(run.WallSeconds, 3),
        ["tasks"] = new JsonArray(run.Tasks.Select(t => (JsonNode)new JsonObject
        {
            ["task"] = t.Task,
            ["file"] = t.File,
            ["file_sha256"] = t.FileHash,
            ["version"] = t.Version,
            ["num_fewshot"] = t.NumFewshot,
            ["aggregate"] = new JsonArray(t.Aggregate.Select(m => (JsonNode)Metric(m)).ToArray()),
            ["skipped"] = t.Skipped,
            ["units"] = new JsonArray(t.Units.Select(u => (JsonNode)new JsonObject
            {
                ["name"] = u.Name,
                ["n"] = u.N,
                ["metrics"] = new JsonArray(u.Metrics.Select(m => (JsonNode)Metric(m)).ToArray()),
                ["files"] = new JsonArray(u.Files.Select(f => (JsonNode)f).ToArray()),
                ["skipped"] = u.Skipped.Count,
                ["skipped_reasons"] = new JsonArray(u.Skipped.Take(50).Select(s => (JsonNode)s.ToString()).ToArray()),
                ["notes"] = new JsonArray(u.Notes.Select(n => (JsonNode)n).ToArray()),
            }).ToArray()),
        }).ToArray()),
    };

    static JsonObject Sample(SampleRecord r)
    {
        var o = new JsonObject
        {
            ["task"] = r.Task, ["doc"] = r.Doc, ["file"] = r.File, ["line"] = r.Line, ["prompt"] = r.Prompt, ["target"] = r.Target,
        };
        if (r.Choices is not null)
        {
            o["choices"] = new JsonArray(r.Choices.Select(c => (JsonNode)c).ToArray());
            o["loglikelihoods"] = new JsonArray(r.LogLikelihoods!.Select(v => Num(v)).ToArray());
            o["gold"] = r.Gold;
        }
        else if (r.LogLikelihoods is { Count: 1 } rolling) o["loglikelihood"] = Num(rolling[0]);   // loglikelihood_rolling: the whole document's
        if (r.Counts is not null) foreach (var (k, v) in r.Counts) o[k] = v;
        if (r.Generation is not null) o["generation"] = r.Generation;
        if (r.Generations is not null) o["generations"] = new JsonArray(r.Generations.Select(g => (JsonNode)g).ToArray());
        if (r.Filtered is not null) o["filtered"] = new JsonObject(r.Filtered.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        o["scores"] = new JsonObject(r.Scores.Select(kv => KeyValuePair.Create(kv.Key, Num(kv.Value))));
        return o;
    }

    /// <summary>A Markdown table: one row per task metric (group aggregate first, then subjects when there are few).</summary>
    public static string Markdown(EvalRun run)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"# Evaluation of `{run.Model}`\n\nCptLab {run.CptLabVersion}, few-shot seed {run.Seed}{(run.Limit is { } l ? $", limit {l} per task" : "")}, {run.WallSeconds:0.0} s.\n\n");
        sb.Append("| task | shots | metric | value | ± stderr | n | skipped |\n|---|---:|---|---:|---:|---:|---:|\n");
        foreach (var t in run.Tasks)
        {
            var rows = t.Aggregate.Count > 0 ? t.Aggregate.Select(m => (t.Task, m, t.Skipped)) : t.Units.SelectMany(u => u.Metrics.Select(m => (u.Name, m, u.Skipped.Count)));
            foreach (var (name, m, skipped) in rows)
                sb.Append(c, $"| {name} | {t.NumFewshot} | {m.Metric} | {Show(m.Value, c)} | {(double.IsFinite(m.Stderr) ? m.Stderr.ToString("0.0000", c) : "n/a")} | {m.N} | {skipped} |\n");
        }
        var notes = run.Tasks.SelectMany(t => t.Units.SelectMany(u => u.Notes.Select(n => $"- {u.Name}: {n}\n"))).ToArray();
        if (notes.Length > 0) sb.Append('\n').Append(string.Concat(notes));
        return sb.ToString();
    }
}
