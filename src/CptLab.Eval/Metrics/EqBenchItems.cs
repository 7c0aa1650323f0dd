using System.Text.Json;
using CptLab.Core;

namespace CptLab.Eval.Metrics;

/// <summary>The four emotions of one EQ-Bench question, in the reference's order (emotion1..emotion4), with their scores.</summary>
public sealed record EqBenchReference(IReadOnlyList<(string Emotion, double Score)> Emotions);

/// <summary>
/// One EQ-Bench v2 question. <see cref="Reference"/> is v1's normalised answer (scores summing to 10);
/// <see cref="ReferenceFullscale"/> is v2's raw 0–10 answer, the one v2 scores against.
/// </summary>
public sealed record EqBenchItem(string Id, string Prompt, EqBenchReference Reference, EqBenchReference ReferenceFullscale);

/// <summary>Reads EQ-bench/EQ-Bench's data/eq_bench_v2_questions_171.json: an object keyed "1".."171".</summary>
public static class EqBenchItems
{
    public static IReadOnlyList<EqBenchItem> Load(string path)
    {
        if (!File.Exists(path)) throw new CptLabException($"{path}: EQ-Bench file not found (EQ-bench/EQ-Bench ships it as data/eq_bench_v2_questions_171.json)");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new CptLabException($"{path}: expected a JSON object of questions keyed by id");
        var items = new List<EqBenchItem>();
        foreach (var question in doc.RootElement.EnumerateObject())
        {
            var where = $"{path}: question '{question.Name}'";
            var q = question.Value;
            var prompt = q.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String
                ? p.GetString()! : throw new CptLabException($"{where}: missing string 'prompt'");
            items.Add(new EqBenchItem(question.Name, prompt, ReadReference(q, "reference_answer", where), ReadReference(q, "reference_answer_fullscale", where)));
        }
        return items;
    }

    /// <summary>Scores are ints in some questions and strings ("6") in others; the reference float()s both.</summary>
    static EqBenchReference ReadReference(JsonElement question, string key, string where)
    {
        if (!question.TryGetProperty(key, out var r) || r.ValueKind != JsonValueKind.Object) throw new CptLabException($"{where}: missing object '{key}'");
        var emotions = new List<(string, double)>();
        for (var i = 1; i <= 4; i++)
        {
            if (!r.TryGetProperty($"emotion{i}", out var name) || name.ValueKind != JsonValueKind.String)
                throw new CptLabException($"{where}: '{key}' has no string 'emotion{i}'");
            if (!r.TryGetProperty($"emotion{i}_score", out var score)) throw new CptLabException($"{where}: '{key}' has no 'emotion{i}_score'");
            var value = score.ValueKind switch
            {
                JsonValueKind.Number => score.GetDouble(),
                JsonValueKind.String when double.TryParse(score.GetString(), System.Globalization.CultureInfo.InvariantCulture, out var v) => v,
                _ => throw new CptLabException($"{where}: '{key}'.emotion{i}_score is not a number: {score.GetRawText()}"),
            };
            emotions.Add((name.GetString()!, value));
        }
        return new EqBenchReference(emotions);
    }
}
