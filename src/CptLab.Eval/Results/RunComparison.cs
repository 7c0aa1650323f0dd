using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Eval.Results;

/// <summary>One metric of one task or subject in two runs: both values, B − A, and the paired test over its documents.</summary>
public sealed record ComparisonRow(string Task, string Unit, string Metric, double A, double B, double Delta, int Pairs, string Test, double PValue);

/// <summary>
/// `cptlab eval compare A.json B.json`: every task, subject and metric of run A against run B, with a paired
/// significance test over the documents both scored, read from the samples.jsonl beside each results.json.
/// Tests, two-sided: for a metric whose per-document scores are all 0 or 1 (acc, acc_norm, exact_match, pass@1 greedy)
/// McNemar's exact test — the discordant documents b (A right, B wrong) and c (A wrong, B right),
/// p = min(1, 2 · P[Binomial(b + c, ½) ≤ min(b, c)]); for any other metric (bits_per_byte per document, EQ-Bench's
/// per-item score) the paired t-test on B − A with n − 1 degrees of freedom. A group's aggregate row pools all its
/// subjects' documents. The runs must have scored the same documents (same subject, index, source line and target);
/// otherwise the comparison is refused, since a paired test of different documents means nothing.
/// </summary>
public static class RunComparison
{
    public const string Aggregate = "(aggregate)";

    public static IReadOnlyList<ComparisonRow> Compare(string resultsA, string resultsB)
    {
        var a = RunFile.Load(resultsA);
        var b = RunFile.Load(resultsB);
        var rows = new List<ComparisonRow>();
        foreach (var (task, ta) in a.Tasks)
        {
            if (!b.Tasks.TryGetValue(task, out var tb))
                throw new CptLabException($"{resultsB} has no task '{task}' (it has {string.Join(", ", b.Tasks.Keys)}): the two runs scored different documents");
            var unitsA = ta.Units.Keys.Order(StringComparer.Ordinal).ToArray();
            if (!unitsA.SequenceEqual(tb.Units.Keys.Order(StringComparer.Ordinal)))
                throw new CptLabException($"task '{task}': {resultsA} scored the units {string.Join(", ", unitsA)}, {resultsB} {string.Join(", ", tb.Units.Keys.Order(StringComparer.Ordinal))}: the two runs scored different documents");
            var pooled = new Dictionary<string, (List<double> A, List<double> B)>();
            foreach (var unit in unitsA)
            {
                var pairs = Pair(unit, a.Samples.GetValueOrDefault(unit) ?? [], b.Samples.GetValueOrDefault(unit) ?? [], resultsA, resultsB);
                foreach (var (metric, va) in ta.Units[unit])
                {
                    if (!tb.Units[unit].TryGetValue(metric, out var vb)) continue;
                    var (sa, sb) = (pairs.Select(p => p.A.Scores.GetValueOrDefault(metric, double.NaN)).ToList(), pairs.Select(p => p.B.Scores.GetValueOrDefault(metric, double.NaN)).ToList());
                    rows.Add(Row(task, ta.Units.Count > 1 || ta.Aggregate.Count > 0 ? unit : task, metric, va, vb, sa, sb));
                    var pool = pooled.TryGetValue(metric, out var p) ? p : pooled[metric] = ([], []);
                    pool.A.AddRange(sa);
                    pool.B.AddRange(sb);
                }
            }
            foreach (var (metric, va) in ta.Aggregate)
                if (tb.Aggregate.TryGetValue(metric, out var vb) && pooled.TryGetValue(metric, out var pool))
                    rows.Add(Row(task, Aggregate, metric, va, vb, pool.A, pool.B));
        }
        return rows;
    }

    static ComparisonRow Row(string task, string unit, string metric, double a, double b, List<double> sa, List<double> sb)
    {
        int n = sa.Count;
        if (n == 0 || sa.Concat(sb).Any(double.IsNaN)) return new ComparisonRow(task, unit, metric, a, b, b - a, n, "none (no per-document scores)", double.NaN);
        bool binary = sa.Concat(sb).All(v => v is 0 or 1);
        if (binary)
        {
            int onlyA = 0, onlyB = 0;
            for (int i = 0; i < n; i++)
            {
                if (sa[i] == 1 && sb[i] == 0) onlyA++;
                if (sa[i] == 0 && sb[i] == 1) onlyB++;
            }
            return new ComparisonRow(task, unit, metric, a, b, b - a, n, "McNemar exact", McNemarExact(onlyA, onlyB));
        }
        return new ComparisonRow(task, unit, metric, a, b, b - a, n, "paired t", PairedT(sa, sb));
    }

    /// <summary>Two-sided exact McNemar: p = min(1, 2 · Σ_{k ≤ min(b,c)} C(b+c, k) / 2^(b+c)); 1 when no document is discordant.</summary>
    public static double McNemarExact(int b, int c)
    {
        int n = b + c, k = Math.Min(b, c);
        if (n == 0) return 1;
        double tail = 0;
        for (int i = 0; i <= k; i++) tail += Math.Exp(LogChoose(n, i) - n * Math.Log(2));
        return Math.Min(1, 2 * tail);
    }

    static double LogChoose(int n, int k) => MathNet.Numerics.SpecialFunctions.FactorialLn(n) - MathNet.Numerics.SpecialFunctions.FactorialLn(k) - MathNet.Numerics.SpecialFunctions.FactorialLn(n - k);

    /// <summary>Two-sided paired t-test on d = B − A: t = mean(d) / (sd(d) / √n), Student's t with n − 1 df; NaN below two pairs.</summary>
    public static double PairedT(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        int n = a.Count;
        if (n < 2) return double.NaN;
        var d = a.Zip(b, (x, y) => y - x).ToArray();
        double mean = d.Average();
        double sd = Math.Sqrt(d.Sum(x => (x - mean) * (x - mean)) / (n - 1));
        if (sd == 0) return mean == 0 ? 1 : 0;
        double t = mean / (sd / Math.Sqrt(n));
        return 2 * (1 - MathNet.Numerics.Distributions.StudentT.CDF(0, 1, n - 1, Math.Abs(t)));
    }

    static List<(Sample A, Sample B)> Pair(string unit, List<Sample> a, List<Sample> b, string fileA, string fileB)
    {
        var byDoc = b.GroupBy(s => s.Doc).ToDictionary(g => g.Key, g => g.First());
        if (a.Count != b.Count || a.Any(s => !byDoc.ContainsKey(s.Doc)))
            throw new CptLabException($"{unit}: {fileA} has {a.Count} scored documents and {fileB} {b.Count}, not the same ones (documents {string.Join(", ", a.Select(s => s.Doc).Except(byDoc.Keys).Concat(byDoc.Keys.Except(a.Select(s => s.Doc))).Take(5))} are in one only): the two runs scored different documents; rerun with the same --limit and data");
        var pairs = new List<(Sample, Sample)>();
        foreach (var s in a)
        {
            var t = byDoc[s.Doc];
            if (s.Line != t.Line || s.Target != t.Target)
                throw new CptLabException($"{unit} document {s.Doc}: {fileA} scored line {s.Line} (target '{Short(s.Target)}'), {fileB} line {t.Line} (target '{Short(t.Target)}'): the two runs scored different documents");
            pairs.Add((s, t));
        }
        return pairs;
    }

    static string Short(string s) => s.Length > 40 ? s[..40] + "…" : s;

    sealed record Sample(int Doc, long Line, string Target, IReadOnlyDictionary<string, double> Scores);

    sealed record TaskValues(Dictionary<string, Dictionary<string, double>> Units, Dictionary<string, double> Aggregate);

    /// <summary>A results.json and the samples.jsonl beside it.</summary>
    sealed record RunFile(Dictionary<string, TaskValues> Tasks, Dictionary<string, List<Sample>> Samples)
    {
        public static RunFile Load(string resultsPath)
        {
            JsonNode root;
            try { root = JsonNode.Parse(File.ReadAllText(resultsPath)) ?? throw new CptLabException($"{resultsPath}: empty"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
            { throw new CptLabException($"{resultsPath}: cannot read the results file: {e.Message}"); }
            var tasks = new Dictionary<string, TaskValues>(StringComparer.Ordinal);
            foreach (var t in root["tasks"]?.AsArray() ?? throw new CptLabException($"{resultsPath}: no 'tasks' (not a `cptlab eval` results.json)"))
            {
                var units = t!["units"]!.AsArray().ToDictionary(u => (string)u!["name"]!, u => Metrics(u!["metrics"]), StringComparer.Ordinal);
                tasks[(string)t["task"]!] = new TaskValues(units, Metrics(t["aggregate"]));
            }
            var samplesPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(resultsPath))!, ResultsWriter.SamplesFile);
            if (!File.Exists(samplesPath)) throw new CptLabException($"{samplesPath}: not found; the paired test needs the samples.jsonl written beside {resultsPath}");
            var samples = new Dictionary<string, List<Sample>>(StringComparer.Ordinal);
            long line = 0;
            foreach (var text in File.ReadLines(samplesPath))
            {
                line++;
                if (text.Length == 0) continue;
                try
                {
                    var o = JsonNode.Parse(text)!;
                    var scores = o["scores"]!.AsObject().Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => (double)kv.Value!, StringComparer.Ordinal);
                    var s = new Sample((int)o["doc"]!, (long?)o["line"] ?? 0, (string?)o["target"] ?? "", scores);
                    (samples.TryGetValue((string)o["task"]!, out var l) ? l : samples[(string)o["task"]!] = []).Add(s);
                }
                catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException or FormatException)
                { throw new CptLabException($"{samplesPath}:{line}: not a samples.jsonl record ({e.Message})"); }
            }
            return new RunFile(tasks, samples);
        }

        static Dictionary<string, double> Metrics(JsonNode? list) =>
            (list?.AsArray() ?? []).Where(m => m!["value"] is not null).ToDictionary(m => (string)m!["metric"]!, m => (double)m!["value"]!, StringComparer.Ordinal);
    }

    public static string Format(double v) => double.IsFinite(v) ? (Math.Abs(v) >= 1e5 ? v.ToString("0.###E+0", CultureInfo.InvariantCulture) : v.ToString("0.0000", CultureInfo.InvariantCulture)) : "n/a";
}
