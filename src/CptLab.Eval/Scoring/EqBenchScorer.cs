using System.Globalization;
using CptLab.Core;
using CptLab.Eval.Metrics;
using CptLab.Eval.Tasks;

namespace CptLab.Eval.Scoring;

/// <summary>
/// EQ-Bench v2 both ways. Per question, lm-eval's eq_bench (utils.calculate_score_fullscale): <c>eqbench</c> = 10 ×
/// the v2 score, 0 when unparseable, and <c>percent_parseable</c> 100 or 0; their means are lm-eval's numbers. Over the
/// unit, the reference's (EQ-bench/EQ-Bench, <see cref="EqBenchRun"/>): <c>eqbench_reference</c> averages the
/// parseable questions only (its n is their count), <c>parseable_reference</c> is their share in percent (the
/// reference also rejects all-zero answers), and <c>failed_reference</c> is 1 when fewer than 83.33% were parseable —
/// a run the reference reports as failed, said in a note too.
/// </summary>
public static class EqBenchScorer
{
    public static BatchOutput Score(BatchInput input)
    {
        var docs = input.Unit.Docs;
        var items = docs.Select(d => new EqBenchItem(d.Doc["key"]?.ToString() ?? d.Index.ToString(CultureInfo.InvariantCulture), d.Prompt,
            Reference(d.Doc, "reference_answer"), Reference(d.Doc, "reference_answer_fullscale"))).ToArray();
        var replies = input.Generations.Select(g => (string?)g[0]).ToArray();
        var perDoc = new List<ProcessOutput>();
        for (int i = 0; i < items.Length; i++)
        {
            var (score, parseable) = EqBench.LmEvalScore(items[i].ReferenceFullscale, replies[i] ?? "");
            var pairs = EqBench.ParseAnswers(replies[i] ?? "", revise: false).FirstPass.Pairs;
            perDoc.Add(new ProcessOutput(new Dictionary<string, double> { ["eqbench"] = score, ["percent_parseable"] = parseable },
                string.Join(", ", pairs.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Emotion}: {p.Score}")))));
        }
        if (items.Length == 0) return new BatchOutput(perDoc, [], []);

        var run = EqBenchRun.Score(items, replies);
        var parsed = run.Items.Where(s => s.FirstPass is not null).Select(s => s.FirstPass!.Value * 10).ToArray();
        var parseableFlags = run.Items.Select(s => s.FirstPass is null ? 0.0 : 100.0).ToArray();
        var unit = new List<MetricValue>
        {
            new MetricValue("eqbench_reference", run.Score, TaskMetrics.MeanStderr(parsed), run.Parseable),
            new MetricValue("parseable_reference", 100 * run.ParseRate, TaskMetrics.MeanStderr(parseableFlags), run.Questions),
            new MetricValue("failed_reference", run.Failed ? 1 : 0, double.NaN, run.Questions),
        };
        var verdict = run.Failed ? "below 83.33%: FAILED run" : "at least 83.33%: not failed";
        var note = string.Create(CultureInfo.InvariantCulture, $"EQ-Bench reference rule: {run.Parseable}/{run.Questions} ({100 * run.ParseRate:0.00}%) parseable, {verdict}");
        return new BatchOutput(perDoc, unit, [note]);
    }

    /// <summary>A reference answer as the JSON reader gives it: emotion1..4 names and scores (numbers, or strings such as "6").</summary>
    static EqBenchReference Reference(EvalDoc d, string key)
    {
        if (d[key] is not IReadOnlyDictionary<string, object?> r) throw new CptLabException($"{d.File}:{d.Line}: EQ-Bench item has no object '{key}'");
        var emotions = new List<(string, double)>();
        for (int i = 1; i <= 4; i++)
        {
            var name = r.GetValueOrDefault($"emotion{i}") as string ?? throw new CptLabException($"{d.File}:{d.Line}: '{key}' has no string 'emotion{i}'");
            var score = r.GetValueOrDefault($"emotion{i}_score") switch
            {
                long l => l,
                double x => x,
                string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) => v,
                var o => throw new CptLabException($"{d.File}:{d.Line}: '{key}'.emotion{i}_score is not a number: {o}"),
            };
            emotions.Add((name, score));
        }
        return new EqBenchReference(emotions);
    }
}
