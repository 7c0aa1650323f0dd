using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Training;

namespace CptLab.Sweep;

/// <summary>
/// Reads a finished run's <c>metrics.jsonl</c> (written by the trainer) into what the store keeps: every
/// validation line as the curve (one per step and source), the one at the last step as the final losses, and
/// each language's loss as the token-weighted mean of its sources' losses.
/// </summary>
public static class RunMetrics
{
    /// <param name="totalSteps">The run's step count: the final validation must be at this step.</param>
    public static RunOutcome Read(string runDir, long totalSteps, IReadOnlyDictionary<string, IReadOnlyList<string>> languages)
    {
        var path = Path.Combine(runDir, Trainer.MetricsFileName);
        if (!File.Exists(path)) throw new CptLabException($"{path}: the run wrote no metrics");
        var curve = new List<SourceLoss>();
        var lineNo = 0;
        long lastStep = 0, lastTokens = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not an object"); }
            catch (JsonException e) { throw new CorruptFileException(path, $"line {lineNo}: {e.Message}"); }
            var step = o["step"]?.GetValue<long>() ?? throw new CorruptFileException(path, $"line {lineNo}: no step");
            if (o["tokens"] is { } t) (lastStep, lastTokens) = (step, t.GetValue<long>());
            if (o["val"] is not JsonObject val) continue;
            foreach (var (source, node) in val)
            {
                if (node is not JsonObject v) throw new CorruptFileException(path, $"line {lineNo}: val.{source} is not an object");
                curve.Add(new SourceLoss(step, o["tokens"]!.GetValue<long>(), source, Number(v["loss"]), Number(v["bpb"]), v["tokens"]?.GetValue<long>() ?? 0));
            }
        }
        // After a rollback (the trainer's guard against non-finite steps) the steps since the checkpoint are
        // trained and validated again: the later line of a (step, source) is the one the run continued from.
        curve = curve.GroupBy(c => (c.Step, c.Source)).Select(g => g.Last()).OrderBy(c => c.Step).ThenBy(c => c.Source, StringComparer.Ordinal).ToList();
        var final = curve.Where(c => c.Step == totalSteps).ToList();
        if (final.Count == 0)
            throw new CptLabException($"{path}: no validation at the last step ({totalSteps}); the run did not finish (last step logged: {lastStep})");
        return new RunOutcome(curve, final, ByLanguage(final, languages), lastStep, lastTokens);
    }

    /// <summary>
    /// Each language's loss: Σ loss·tokens / Σ tokens over its sources (per token, as if the sources were one
    /// validation set). NaN when a source is missing or not finite.
    /// </summary>
    public static Dictionary<string, double> ByLanguage(IEnumerable<SourceLoss> losses, IReadOnlyDictionary<string, IReadOnlyList<string>> languages)
    {
        var bySource = losses.ToDictionary(l => l.Source);
        var result = new Dictionary<string, double>();
        foreach (var (lang, sources) in languages)
        {
            double sum = 0, tokens = 0;
            foreach (var s in sources)
            {
                if (!bySource.TryGetValue(s, out var l) || !double.IsFinite(l.Loss)) { sum = double.NaN; break; }
                var w = Math.Max(1, l.ValidationTokens);
                sum += l.Loss * w;
                tokens += w;
            }
            result[lang] = tokens > 0 ? sum / tokens : double.NaN;
        }
        return result;
    }

    static double Number(JsonNode? n) => n switch
    {
        null => double.NaN,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
        JsonValue v when v.TryGetValue<string>(out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => double.NaN, // the trainer writes non-finite values as "NaN"/"Infinity" strings
    };
}
