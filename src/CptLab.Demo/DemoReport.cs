using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Laws;
using CptLab.Reports;
using CptLab.Sweep;
using CptLab.Training;

namespace CptLab.Demo;

/// <summary>
/// report.md and report.html of a demo run. Every number comes from the run's own files: demo.json (the
/// evaluation), the sweep's database and fit.json, plan.json, metrics.jsonl and stages.json; after continual
/// pre-training (<see cref="DemoPostReport"/>) each model's results.json, the post-training metrics.jsonl, the GGUF
/// answer and the served reply.
/// </summary>
public static class DemoReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(string outDir, DemoPipeline.Paths p, DemoScale scale, DemoResults r, FitSummary fit, TrainingPlan plan, StageLog stages)
    {
        var curves = CurvesPlot(p, Path.Combine(outDir, "cpt-curves"));
        var md = Markdown(outDir, p, scale, r, fit, plan, stages, Path.GetFileName(curves));
        AtomicFile.WriteAllText(Path.Combine(outDir, DemoPipeline.ReportFile), md);
        AtomicFile.WriteAllText(Path.Combine(outDir, DemoPipeline.HtmlReportFile), MarkdownHtml.Convert(md, "CptLab demo report"));
    }

    public static string Markdown(string outDir, DemoPipeline.Paths p, DemoScale scale, DemoResults r, FitSummary fit, TrainingPlan plan, StageLog stages, string curvesPng)
    {
        var s = new StringBuilder();
        void L(string line = "") => s.Append(line).Append('\n');
        var chosen = r.Models.Single(m => m.Name == "chosen");
        var naive = r.Models.Single(m => m.Name == "naive");
        var baseLarge = r.Models.Single(m => m.Name == "base-large");
        double gain = naive.Objective - chosen.Objective;

        L($"# CptLab demo ({r.Mode} mode)");
        L();
        L("Continual pre-training of a small English Llama into Chinese, with the mixture ratio (ALMR) and learning rate chosen " +
          "by a proxy sweep and a fitted law, then transferred to a larger model and compared with a naive setup; the chosen model is then " +
          "fine-tuned (SFT), aligned (DPO), evaluated with the benchmark harness, exported to GGUF for llama.cpp and served over the OpenAI API. English: the Brown " +
          "Corpus; Chinese: Tang poems and Song ci (npm `chinese-poetry`). Every number below was measured in this run.");
        L();
        L("## Result");
        L();
        L($"- **Objective**: {r.Objective}; lower is better.");
        L($"- **Proxy optimum** (law `{fit.Law}`, leave-one-out error {Num(fit.CvError)}): ALMR **{r.ProxyAlmr:0.###}** {Ci(r.AlmrInterval, "0.###")}, " +
          $"LR **{r.ProxyLr:0.###e0}** {Ci(r.LrInterval, "0.###e0")} (95% bootstrap intervals).");
        L($"- **Transferred to the large model**: ALMR {plan.Almr:0.###}, LR {plan.Lr:0.###e0}.");
        L($"- **Chosen vs naive** (ALMR 0.5 at the base's peak LR {scale.BasePeakLr:0.###e0}, same {scale.CptTokens:N0} tokens): objective " +
          $"{chosen.Objective:F4} vs {naive.Objective:F4} — " +
          (gain > 0 ? $"**the chosen setup beat the naive one by {gain:F4}** ({gain / naive.Objective:P1})." : $"**the chosen setup did not beat the naive one** (worse by {-gain:F4})."));
        L();
        L("| model | ALMR | LR | zh loss | en loss | zh bits/byte | en bits/byte | en forgetting | objective |");
        L("|---|---|---|---|---|---|---|---|---|");
        foreach (var m in r.Models)
            L($"| {m.Name} | {(m.Name == "base-large" ? "–" : m.Almr.ToString("0.###", Inv))} | {(m.Lr is { } lr ? lr.ToString("0.###e0", Inv) : "–")} | " +
              $"{m.TargetLoss:F4} | {m.OriginalLoss:F4} | {m.TargetBpb:F4} | {m.OriginalBpb:F4} | {m.Forgetting:+0.0000;-0.0000} | {m.Objective:F4} |");
        L();
        L($"Chinese loss fell from {baseLarge.TargetLoss:F3} (English-only base) to {chosen.TargetLoss:F3} with the chosen setup and {naive.TargetLoss:F3} with the naive one; " +
          $"English loss moved by {chosen.Forgetting:+0.000;-0.000} and {naive.Forgetting:+0.000;-0.000}.");
        L();
        L($"![validation curves of the two continual pre-training runs]({curvesPng})");
        L();

        L("## The English-only bases");
        L();
        L("| base | parameters | tokens | English validation loss at the end | change over the last quarter of pre-training |");
        L("|---|---|---|---|---|");
        foreach (var (name, dir) in new[] { ("small (proxy, stand-in for 8B)", p.BaseSmall), ("large (stand-in for 70B)", p.BaseLarge) })
        {
            var curve = Curve(Path.Combine(dir, "run", Trainer.MetricsFileName));
            var config = CptLab.Model.LlamaConfig.Load(Path.Combine(dir, "run", Trainer.FinalDir, CptLab.Model.HfCheckpoint.ConfigFile));
            var last = curve[^1];
            var quarter = curve.Last(c => c.Tokens <= last.Tokens * 3 / 4);
            L($"| {name} | {CptLab.Model.ModelMath.ParameterCount(config):N0} | {last.Tokens:N0} | {last.Loss["brown"].Loss:F4} | {last.Loss["brown"].Loss - quarter.Loss["brown"].Loss:+0.0000;-0.0000} |");
        }
        L();
        L("## The sweep on the proxy");
        L();
        using (var store = SweepStore.Open(p.Sweep, create: false))
        {
            var runs = store.Runs();
            var baseLoss = fit.BaseLoss;
            L($"{runs.Count} runs of {scale.CptTokens:N0} tokens each from the small base (English loss {Num(baseLoss.GetValueOrDefault("en"))}, Chinese {Num(baseLoss.GetValueOrDefault("zh"))}):");
            L();
            L("| ALMR | LR | status | zh loss | en loss | en forgetting | wall s |");
            L("|---|---|---|---|---|---|---|");
            foreach (var run in runs.OrderBy(x => x.Almr).ThenBy(x => x.Lr))
            {
                var lang = store.FinalByLanguage(run.Id);
                var zh = lang.GetValueOrDefault("zh", double.NaN);
                var en = lang.GetValueOrDefault("en", double.NaN);
                L($"| {run.Almr:0.###} | {run.Lr:0.###e0} | {run.Status.ToString().ToLowerInvariant()} | {Num(zh)} | {Num(en)} | {Num(en - baseLoss.GetValueOrDefault("en", double.NaN))} | {run.WallSeconds:F0} |");
            }
        }
        L();
        L($"Fitted law: `{fit.Law}` — {fit.Formula}. Candidates by leave-one-out error: " +
          string.Join("; ", fit.Candidates.Select(c => $"{c.Law} {(c.CvError is { } e ? e.ToString("0.#####", Inv) : "skipped: " + c.Skipped)}")) + ".");
        L();
        L("Optimal learning rate per ALMR, η*(r):");
        L();
        L("| ALMR | η* | 95% interval |");
        L("|---|---|---|");
        foreach (var pt in fit.OptimalLrCurve.Where((_, i) => i % 4 == 0))
            L($"| {pt.Almr:0.###} | {(pt.Lr is { } lr ? lr.ToString("0.###e0", Inv) : "infeasible")} | {(pt.LrLo is { } lo && pt.LrHi is { } hi ? $"[{lo.ToString("0.###e0", Inv)}, {hi.ToString("0.###e0", Inv)}]" : "–")} |");
        L();
        var plotsDir = Path.Combine(p.Sweep, SweepFit.PlotsDir);
        foreach (var plot in Directory.Exists(plotsDir) ? Directory.GetFiles(plotsDir, "*.png").Order().ToArray() : [])
            L($"![{Path.GetFileNameWithoutExtension(plot)}]({Path.GetRelativePath(outDir, plot)})");
        L();
        L($"The sweep's own report: [sweep/report.md](sweep/report.md).");
        L();

        L("## Transfer plan");
        L();
        foreach (var a in plan.Assumptions) L($"- {a}");
        L();

        L("## Samples (temperature 0.7, top-p 0.9, seed 1)");
        L();
        foreach (var m in r.Models)
        {
            L($"**{m.Name}**");
            L();
            L($"> {Quote(m.SampleEnglish)}");
            L(">");
            L($"> {Quote(m.SampleChinese)}");
            L();
        }

        DemoPostReport.Write(s, p, scale);

        L("## Wall time per stage");
        L();
        L("| stage | what | seconds |");
        L("|---|---|---|");
        double total = 0;
        foreach (var (name, description, seconds, done) in stages.Entries)
        {
            total += seconds;
            L($"| {name} | {description} | {seconds:F0}{(done ? "" : " (unfinished)")} |");
        }
        L($"| total | | {total:F0} |");
        L();
        L("## What this does and does not show");
        L();
        L("- The models are tiny (a few million parameters) and trained for minutes, so losses are high and samples are rough; the " +
          "point is the method — a measured choice of ALMR and LR, transferred by size — not the models' quality.");
        L("- The benchmarks of the paper (CMMLU, GSM8K, HumanEval, EmoBench, EQ-Bench) are run, with small `--limit`s and 0 shots, but they need models " +
          "large enough to score above chance: at this scale the per-language bits per byte and the post-training losses are what move.");
        L("- One seed per cell: the intervals come from a bootstrap over the fitted law's residuals, not from repeated runs.");
        L("- The LR transfer uses one proxy size, so its exponent is an assumption (stated above), not a fit.");
        if (gain <= 0) L("- Here the chosen setup did not win: the proxy's optimum did not transfer to the larger model at this scale.");
        return s.ToString();
    }

    /// <summary>Validation loss against tokens for zh and en, naive and chosen CPT runs (PNG; SVG beside it).</summary>
    static string CurvesPlot(DemoPipeline.Paths p, string pathWithoutExtension)
    {
        var series = new List<PlotSeries>();
        foreach (var (label, dir) in new[] { ("chosen", p.CptChosen), ("naive", p.CptNaive) })
        {
            var points = Curve(Path.Combine(dir, "run", Trainer.MetricsFileName));
            foreach (var (lang, sources) in new[] { ("zh", new[] { "tang", "songci" }), ("en", new[] { "brown" }) })
            {
                var xs = points.Select(x => (double)x.Tokens).ToArray();
                var ys = points.Select(x => sources.Sum(s => x.Loss[s].Loss * x.Loss[s].Tokens) / sources.Sum(s => (double)x.Loss[s].Tokens)).ToArray();
                series.Add(new PlotSeries($"{label} {lang}", xs, ys, OpenMarkers: label == "naive"));
            }
        }
        return LinePlot.Write("Continual pre-training of the large base: validation loss", "tokens", "validation loss (nats/token)",
            series, pathWithoutExtension).Png;
    }

    static List<(long Tokens, Dictionary<string, (double Loss, long Tokens)> Loss)> Curve(string metrics) =>
        File.ReadLines(metrics).Select(l => JsonNode.Parse(l)!).Where(n => n["val"] is JsonObject)
            .Select(n => (n["tokens"]!.GetValue<long>(), ((JsonObject)n["val"]!).ToDictionary(kv => kv.Key, kv => (kv.Value!["loss"]!.GetValue<double>(), kv.Value!["tokens"]!.GetValue<long>()))))
            .ToList();

    static string Num(double? v) => v is { } x && double.IsFinite(x) ? x.ToString("0.0000", Inv) : "–";
    static string Ci(Interval? i, string format) => i is null ? "" : $"[{i.Lo.ToString(format, Inv)}, {i.Hi.ToString(format, Inv)}]";
    static string Quote(string text) => text.Replace("\n", " ").Replace("|", "\\|");
}
