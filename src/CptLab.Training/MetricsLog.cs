using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Training;

/// <summary>
/// A run's metrics.jsonl: one JSON object per line — steps {step, tokens, lr, loss, grad_norm, tokens_per_s, mfu},
/// validations {step, tokens, val: {SOURCE: {loss, bpb, tokens}}} and events {step, event} — flushed as written.
/// Non-finite numbers are written as strings ("NaN"), which JSON has no number for.
/// </summary>
sealed class MetricsLog : IDisposable
{
    readonly StreamWriter _writer;

    public MetricsLog(string path) => _writer = new StreamWriter(path, append: true) { AutoFlush = true };

    public void Step(long step, long tokens, double lr, double loss, double gradNorm, double tps, double? mfu, bool skipped,
                     IReadOnlyDictionary<string, double>? extra = null)
    {
        var o = new JsonObject
        {
            ["step"] = step, ["tokens"] = tokens, ["lr"] = lr,
            ["loss"] = Num(loss), ["grad_norm"] = Num(gradNorm), ["tokens_per_s"] = Math.Round(tps, 1),
        };
        if (mfu is { } m) o["mfu"] = Math.Round(m, 4);
        if (skipped) o["skipped"] = true;
        foreach (var (name, value) in extra ?? new Dictionary<string, double>()) o[name] = Num(value);
        Write(o);
    }

    public void Validation(long step, long tokens, IReadOnlyDictionary<string, ValidationResult> results)
    {
        var val = new JsonObject();
        foreach (var (name, r) in results)
        {
            var o = new JsonObject { ["loss"] = Num(r.Loss), ["bpb"] = Num(r.BitsPerByte), ["tokens"] = r.Tokens };
            foreach (var (metric, value) in r.Metrics ?? new Dictionary<string, double>()) o[metric] = Num(value);
            val[name] = o;
        }
        Write(new JsonObject { ["step"] = step, ["tokens"] = tokens, ["val"] = val });
    }

    public void Event(long step, string message) => Write(new JsonObject { ["step"] = step, ["event"] = message });

    void Write(JsonObject o) => _writer.WriteLine(o.ToJsonString());

    static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// On resume: drops the lines of steps after the checkpoint, which the resumed run logs again. Lines are written
    /// whole and in order, so only the last one can be cut short by a kill: an unreadable last line is dropped (and
    /// described in the return value, for the log); an unreadable line anywhere else means the file was changed by
    /// something other than the trainer, and is an error naming the line, since dropping it would lose its record.
    /// </summary>
    /// <returns>What was dropped as a cut last line, or null when every line was whole.</returns>
    public static string? TruncateAfter(string path, long step)
    {
        if (!File.Exists(path)) return null;
        var lines = File.ReadAllText(path).Split('\n');
        var last = Array.FindLastIndex(lines, l => !string.IsNullOrWhiteSpace(l));
        var keep = new List<string>();
        string? cut = null;
        for (var i = 0; i <= last; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            if (StepOf(lines[i], out var problem) is { } s)
            {
                if (s <= step) keep.Add(lines[i]);
            }
            else if (i == last) cut = $"line {i + 1}: {problem}";
            else
                throw new CorruptFileException(path, $"line {i + 1} is not a metrics record ({problem}); only the last line can be cut by an interruption, " +
                    $"so something else changed this file: repair or delete line {i + 1}, then resume");
        }
        AtomicFile.WriteAllText(path, keep.Count == 0 ? "" : string.Join("\n", keep) + "\n");
        return cut;
    }

    static long? StepOf(string line, out string problem)
    {
        problem = "";
        JsonNode? node;
        try { node = JsonNode.Parse(line); }
        catch (JsonException e) { problem = $"not JSON: {e.Message.Split(" LineNumber")[0]}"; return null; }
        if (node is not JsonObject o) { problem = "not a JSON object"; return null; }
        if (o["step"] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var step)) return step;
        problem = "no whole-number \"step\"";
        return null;
    }

    public void Dispose() => _writer.Dispose();
}
