using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Chat;

/// <summary>
/// GSM8K (<c>{"question", "answer"}</c>, the answer ending in a <c>#### N</c> line) → SFT conversations and DPO pairs.
/// The solution keeps its <c>#### N</c> line (lm-eval's gsm8k target and answer extraction use it). Calculator
/// annotations <c>&lt;&lt;48/2=24&gt;&gt;</c> are stripped by default: they were written for a calculator that the
/// sampler calls, which a chat model does not have. The rejected solution is the same solution with a wrong final
/// answer (<see cref="WrongAnswer"/>).
/// </summary>
static partial class Gsm8kItems
{
    public sealed record Result(List<PostTrainItem> Items, long Records, SortedDictionary<string, long> Dropped, long FinalLineOnly);

    public static Result Read(string file, bool keepAnnotations, Random rng)
    {
        var items = new List<PostTrainItem>();
        var dropped = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long records = 0, finalLineOnly = 0;
        foreach (var record in RecordReader.Read(file))
        {
            records++;
            if (record.Error is { } e) { Drop(e.Key()); continue; }
            if (record.Value.ValueKind != JsonValueKind.Object || !Text(record.Value, "question", out var question) || !Text(record.Value, "answer", out var answer))
            { Drop("missing_field"); continue; }
            var final = FinalLine().Match(answer);
            if (!final.Success) { Drop("no_final_answer"); continue; }
            if (!seen.Add(question.Trim())) { Drop("duplicate_question"); continue; }
            var body = answer[..final.Index];
            if (!keepAnnotations) body = Annotation().Replace(body, "");
            var (wrongBody, wrongAnswer, changedBody) = WrongAnswer(body, final.Groups[1].Value, rng);
            if (!changedBody) finalLineOnly++;
            items.Add(new PostTrainItem("gsm8k\0" + question, [new ChatMessage("user", question)],
                $"{body}\n#### {final.Groups[1].Value}", $"{wrongBody}\n#### {wrongAnswer}"));
        }
        return new Result(items, records, dropped, finalLineOnly);

        void Drop(string reason) => dropped[reason] = dropped.GetValueOrDefault(reason) + 1;
    }

    /// <summary>
    /// A wrong final answer M for the true answer N: M = N ± d, d uniform in 1..10 and the sign a coin toss (both from
    /// <paramref name="rng"/>), kept ≥ 0 when N ≥ 0; written with thousands commas when N was. The last occurrence of N
    /// as a whole number in the solution text (where the last step computes it) becomes M too, so that the wrong
    /// solution is consistent with its answer; when N does not occur there, only the <c>#### </c> line changes.
    /// </summary>
    public static (string Body, string Answer, bool ChangedBody) WrongAnswer(string body, string answer, Random rng)
    {
        var n = long.Parse(answer.Replace(",", ""), CultureInfo.InvariantCulture);
        var d = rng.Next(1, 11);
        var m = rng.Next(2) == 0 && !(n >= 0 && n - d < 0) ? n - d : n + d;
        var wrong = Format(m, answer.Contains(','));
        Match? last = null;
        foreach (var form in new[] { answer, answer.Replace(",", "") }.Distinct())
        {
            var hit = new Regex($@"(?<![\d.,]){Regex.Escape(form)}(?!\d|[.,]\d)", RegexOptions.RightToLeft).Match(body);
            if (hit.Success && (last is null || hit.Index > last.Index)) last = hit;
        }
        if (last is null) return (body, wrong, false);
        return (body[..last.Index] + Format(m, last.Value.Contains(',')) + body[(last.Index + last.Length)..], wrong, true);
    }

    static string Format(long v, bool commas) => v.ToString(commas ? "#,0" : "0", CultureInfo.InvariantCulture);

    static bool Text(JsonElement obj, string name, out string value)
    {
        value = obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        return !string.IsNullOrWhiteSpace(value);
    }

    [GeneratedRegex(@"\n#### (-?\d[\d,]*)\s*$")]
    private static partial Regex FinalLine();

    [GeneratedRegex(@"<<[^<>]*>>")]
    private static partial Regex Annotation();
}
