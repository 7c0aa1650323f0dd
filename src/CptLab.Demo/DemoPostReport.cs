using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CptLab.Eval.Results;
using CptLab.Training;

namespace CptLab.Demo;

/// <summary>
/// The report's sections after continual pre-training. Every number is read from the run's records: each model's
/// results.json (as the harness wrote it), the deltas from `cptlab eval compare`'s function over two of them,
/// metrics.jsonl of the SFT and DPO runs (as the trainer wrote it), chat_samples.json, gguf/answer.json, serve/reply.json.
/// </summary>
public static class DemoPostReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>One benchmark column: the task and the metric shown (the first the task's results.json lists).</summary>
    public sealed record Column(string Task, string Metric);

    /// <summary>A benchmark cell as results.json has it: the task's group aggregate, or its single unit.</summary>
    public sealed record Cell(double? Value, double? Stderr, int N);

    /// <summary>The columns, in results.json's task order.</summary>
    public static IReadOnlyList<Column> Columns(string resultsJson) =>
        Tasks(resultsJson).Select(t => new Column(t["task"]!.GetValue<string>(), Headline(t)["metric"]!.GetValue<string>())).ToList();

    public static Cell Read(string resultsJson, Column column)
    {
        var task = Tasks(resultsJson).Single(t => t["task"]!.GetValue<string>() == column.Task);
        var m = Metrics(task).Single(x => x["metric"]!.GetValue<string>() == column.Metric);
        return new Cell(m["value"]?.GetValue<double>(), m["stderr"]?.GetValue<double>(), m["n"]!.GetValue<int>());
    }

    /// <summary>A table cell: the value to four decimals and, where the harness gives one, its standard error.</summary>
    public static string Format(Cell c) =>
        (c.Value is { } v ? v.ToString("0.0000", Inv) : "–") + (c.Stderr is { } s ? " ± " + s.ToString("0.0000", Inv) : "");

    public static void Write(StringBuilder s, DemoPipeline.Paths p, DemoScale scale)
    {
        void L(string line = "") => s.Append(line).Append('\n');
        var models = DemoPostStages.HarnessModels(p).Select(m => (m.Name, Results: Path.Combine(p.Eval, m.Name, ResultsWriter.ResultsFile))).Where(m => File.Exists(m.Results)).ToList();
        if (models.Count == 0) return;
        var columns = Columns(models[0].Results);

        L("## Benchmarks (evaluation harness)");
        L();
        L($"`cptlab eval` over every model: tasks {DemoPostStages.HarnessTasks}, 0-shot (the models' context is {scale.SeqLen} tokens, shorter than one 5-shot " +
          $"CMMLU prompt), `--limit {scale.Post.EvalLimit}` documents per task or subject (CMMLU: per each of its subjects), HumanEval run in the bubblewrap sandbox. " +
          "Value ± standard error (the harness's; bits per byte has none); n is the number of documents scored. Each model's results.json, samples.jsonl and results.md are in eval/<model>/.");
        L();
        L("| model | " + string.Join(" | ", columns.Select(c => $"{c.Task} {c.Metric}")) + " |");
        L("|---|" + string.Concat(columns.Select(_ => "---|")));
        foreach (var (name, results) in models)
            L($"| {name} | " + string.Join(" | ", columns.Select(c => Format(Read(results, c)))) + " |");
        L("| n | " + string.Join(" | ", columns.Select(c => Read(models[0].Results, c).N.ToString(Inv))) + " |");
        L();
        L("**What these numbers mean at this scale.** Models of a few million parameters trained for minutes score near chance on the knowledge and " +
          "reasoning benchmarks (CMMLU and EmoBench are multiple choice: chance is one over the number of options, 0.25 for CMMLU's four), and " +
          "GSM8K, HumanEval and EQ-Bench need fluent generation they do not have, so those columns sit at or near zero and their differences are " +
          "within the standard errors. Where the numbers do move is bits per byte per language " +
          "(continual pre-training should lower the Chinese one and raise the English one a little, the forgetting; fine-tuning on chat data moves both " +
          "again) and the post-training losses below (the SFT held-out loss on GSM8K solutions and translations, the DPO reward accuracy and margin). " +
          "Bits per byte along the chain, from the table:");
        L();

        foreach (var bpb in columns.Where(c => c.Metric == "bits_per_byte"))
            L($"- {bpb.Task} {bpb.Metric}: " + string.Join(" → ", models.Select(m => $"{m.Name} {Format(Read(m.Results, bpb) with { Stderr = null })}")) + ".");
        L();
        L("The texts: bpb_en the Brown Corpus, bpb_en_docs the English man pages, bpb_zh Song ci (classical Chinese), bpb_zh_docs the zh_CN man pages " +
          "(modern Chinese) — each only its documents held out from pre-training.");
        L();

        var byName = models.ToDictionary(m => m.Name, m => m.Results);
        L("Deltas CPT → SFT → DPO (`cptlab eval compare`: B − A over the same documents, McNemar's exact test for 0/1 scores, a paired t-test otherwise):");
        L();
        L("| A → B | task | metric | A | B | B − A | pairs | test | p |");
        L("|---|---|---|---|---|---|---|---|---|");
        foreach (var (a, b) in new[] { ("cpt-chosen", "sft"), ("sft", "dpo") })
        {
            if (!byName.ContainsKey(a) || !byName.ContainsKey(b)) continue;
            var rows = RunComparison.Compare(byName[a], byName[b]);
            foreach (var c in columns)
                foreach (var row in rows.Where(r => r.Task == c.Task && r.Metric == c.Metric && (r.Unit == r.Task || r.Unit == RunComparison.Aggregate)))
                    L($"| {a} → {b} | {c.Task} | {c.Metric} | {RunComparison.Format(row.A)} | {RunComparison.Format(row.B)} | {(row.Delta >= 0 ? "+" : "")}{RunComparison.Format(row.Delta)} | " +
                      $"{row.Pairs} | {row.Test} | {(double.IsFinite(row.PValue) ? row.PValue.ToString("0.0000", Inv) : "n/a")} |");
        }
        L();

        L("## Post-training");
        L();
        L($"SFT from the chosen CPT model on the sets `cptlab data post-train-sets` builds (the first {scale.Post.SftGsm8k} GSM8K and {scale.Post.SftTranslation} " +
          $"translation conversations, {scale.Post.SftValidation} of each held out), then DPO (sigmoid loss, β {scale.Post.DpoBeta.ToString("G", Inv)}) on " +
          $"{scale.Post.DpoGsm8k} + {scale.Post.DpoTranslation} preference pairs. The numbers are the trainer's metrics.jsonl lines.");
        L();
        L("| run | record | step | loss | rewards/accuracies | rewards/margins | rewards/chosen | rewards/rejected |");
        L("|---|---|---|---|---|---|---|---|");
        foreach (var (label, run) in new[] { ("sft", p.SftRun), ("dpo", p.DpoRun) })
        {
            var metrics = Path.Combine(run, Trainer.MetricsFileName);
            if (!File.Exists(metrics)) continue;
            var lines = File.ReadLines(metrics).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
            var vals = lines.Where(l => l["val"] is JsonObject).ToList();
            var steps = lines.Where(l => l["loss"] is not null && l["val"] is null).ToList();
            if (vals.Count > 0)
                foreach (var (which, v) in vals.Count > 1 ? new[] { ("first held-out evaluation", vals[0]), ("last held-out evaluation", vals[^1]) } : [("held-out evaluation", vals[0])])
                    foreach (var (key, node) in v["val"]!.AsObject().Select(kv => (kv.Key, kv.Value!)))
                        L($"| {label} | {which} ({key}) | {v["step"]} | {MetricCell(node, "loss")} | {MetricCell(node, "rewards/accuracies")} | {MetricCell(node, "rewards/margins")} | {MetricCell(node, "rewards/chosen")} | {MetricCell(node, "rewards/rejected")} |");
            if (steps.Count > 0)
            {
                var last = steps[^1];
                L($"| {label} | last training step | {last["step"]} | {MetricCell(last, "loss")} | {MetricCell(last, "rewards/accuracies")} | {MetricCell(last, "rewards/margins")} | {MetricCell(last, "rewards/chosen")} | {MetricCell(last, "rewards/rejected")} |");
            }
        }
        L();

        var samplesFile = Path.Combine(p.Out, DemoPostStages.ChatSamplesFile);
        if (File.Exists(samplesFile))
        {
            L("## Chat before and after post-training (greedy, through each model's chat template)");
            L();
            L("| model | prompt | reply |");
            L("|---|---|---|");
            foreach (var x in JsonNode.Parse(File.ReadAllText(samplesFile))!.AsArray())
                L($"| {x!["model"]} | {Text(x["prompt"]!.GetValue<string>())} | {Text(x["reply"]!.GetValue<string>())} |");
            L();
        }

        var answerFile = Path.Combine(p.Gguf, DemoPostStages.AnswerFile);
        if (File.Exists(answerFile))
        {
            var a = JsonNode.Parse(File.ReadAllText(answerFile))!;
            L("## GGUF in llama.cpp");
            L();
            L($"The DPO model exported to `{a["gguf"]}` ({a["type"]}, {a["gguf_bytes"]!.GetValue<long>():N0} bytes), loaded by **{a["engine"]}** (`{a["llama_cpp_library"]}` through LLamaSharp; " +
              $"`{Text(a["llama_cpp_system_info"]!.GetValue<string>())}`), which tokenized the prompt ({a["prompt_ids"]!.AsArray().Count} tokens) and answered greedily " +
              $"({a["answer_ids"]!.AsArray().Count} tokens of at most {a["max_new_tokens"]}{(a["answer_ids"]!.AsArray().Count < a["max_new_tokens"]!.GetValue<int>() ? ", then an end-of-generation token" : "")}):");
            L();
            L($"> **{Text(a["prompt"]!.GetValue<string>())}**");
            L(">");
            L($"> {Text(a["answer"]!.GetValue<string>())}");
            L();
        }

        var replyFile = Path.Combine(p.Serve, DemoPostStages.ReplyFile);
        if (File.Exists(replyFile))
        {
            var r = JsonNode.Parse(File.ReadAllText(replyFile))!;
            L("## Served");
            L();
            L($"`POST {r["url"]}` (HTTP/{r["http_version"]}, status {r["status"]}, {r["request_seconds"]!.GetValue<double>().ToString("0.000", Inv)} s; the model loaded in " +
              $"{r["load_seconds"]!.GetValue<double>().ToString("0.00", Inv)} s; the server then stopped). The server's request log of it: `{Text(string.Join("; ", r["server_request_log"]!.AsArray().Select(x => x!.GetValue<string>()).Where(x => x.Contains(" /v1/", StringComparison.Ordinal))))}`.");
            L();
            L($"> **{Text(r["request"]!["messages"]![0]!["content"]!.GetValue<string>())}**");
            L(">");
            L($"> {Text(r["reply"]!.GetValue<string>())}");
            L();
        }
    }

    static IEnumerable<JsonObject> Tasks(string resultsJson) =>
        JsonNode.Parse(File.ReadAllText(resultsJson))!["tasks"]!.AsArray().Select(t => t!.AsObject());

    /// <summary>A group's aggregate metrics, else its one unit's.</summary>
    static IEnumerable<JsonObject> Metrics(JsonObject task) =>
        (task["aggregate"]!.AsArray().Count > 0 ? task["aggregate"]! : task["units"]![0]!["metrics"]!).AsArray().Select(m => m!.AsObject());

    static JsonObject Headline(JsonObject task) => Metrics(task).First();

    static string MetricCell(JsonNode node, string key) =>
        node[key] is JsonValue v && v.TryGetValue<double>(out var d) ? d.ToString("0.0000", Inv) : "–";

    static string Text(string text) => text.Replace("\r", "").Replace("\n", "⏎").Replace("|", "\\|");
}
