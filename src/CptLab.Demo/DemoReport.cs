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
        var chosen = r.Model("chosen");
        var naive = r.Model("naive");
        var baseLarge = r.Model("base-large");
        var cmp = r.Comparison ?? SeedComparison.Of(r.Models);

        L($"# CptLab demo ({r.Mode} mode)");
        L();
        L("Continual pre-training of a small English Llama into modern Chinese, with the mixture ratio (ALMR) and learning rate chosen " +
          "by a proxy sweep and a fitted law, then transferred to a larger model and compared with a naive setup over several seeds; the chosen model is then " +
          "fine-tuned (SFT), aligned (DPO), evaluated with the benchmark harness, exported to GGUF for llama.cpp and served over the OpenAI API. " +
          "English: the Brown Corpus (general) and Debian's English man pages and Debian Reference (the domain); Chinese, the target: the zh_CN man pages " +
          "(manpages-zh) and the Chinese Debian Reference — modern Chinese of the same domain — with Tang poems and Song ci (npm `chinese-poetry`) as a second, classical source " +
          "(three parts modern to one classical in the Chinese share). Every number below was measured in this run.");
        L();
        L("## Result");
        L();
        L($"- **Objective**: {r.Objective}; lower is better.");
        L($"- **Proxy optimum** (law `{fit.Law}`, leave-one-out error {Num(fit.CvError)}): ALMR **{r.ProxyAlmr:0.###}** {Ci(r.AlmrInterval, "0.###")}, " +
          $"LR **{r.ProxyLr:0.###e0}** {Ci(r.LrInterval, "0.###e0")} (95% intervals).");
        L($"- **How well the sweep resolved the ALMR**: {AlmrResolution(r.AlmrInterval, scale, SweepRuns(p))}");
        L($"- **Transferred to the large model**: ALMR {plan.Almr:0.###}, LR {plan.Lr:0.###e0}.");
        L($"- **Chosen vs naive** (ALMR {DemoPipeline.NaiveAlmr:0.###} at the base's peak LR {scale.BasePeakLr:0.###e0}, same {scale.CptTokens:N0} tokens), over seeds " +
          $"{string.Join(", ", cmp.Seeds)}: {Verdict(cmp)}");
        L();
        L("| model | seed | ALMR | LR | modern zh loss | en loss | modern zh bits/byte | en bits/byte | classical zh bits/byte | en forgetting | objective |");
        L("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var m in r.Models)
            L($"| {m.Name} | {(m.Seed is { } seed ? seed.ToString(Inv) : "–")} | {(m.Name == "base-large" ? "–" : m.Almr.ToString("0.###", Inv))} | {(m.Lr is { } lr ? lr.ToString("0.###e0", Inv) : "–")} | " +
              $"{m.TargetLoss:F4} | {m.OriginalLoss:F4} | {m.TargetBpb:F4} | {m.OriginalBpb:F4} | {Num(m.ClassicalBpb)} | {m.Forgetting:+0.0000;-0.0000} | {m.Objective:F4} |");
        L();
        L("| seed | chosen objective | naive objective | gain (naive − chosen) |");
        L("|---|---|---|---|");
        foreach (var (seed, gain) in cmp.Seeds.Zip(cmp.Gains))
        {
            var c = r.Models.Single(m => m.Name == "chosen" && m.Seed == seed);
            var n = r.Models.Single(m => m.Name == "naive" && m.Seed == seed);
            L($"| {seed} | {c.Objective:F4} | {n.Objective:F4} | {gain:+0.0000;-0.0000} |");
        }
        L();
        L($"Mean gain {cmp.MeanGain:+0.0000;-0.0000}; seed spread {cmp.Spread:F4} (the larger of the chosen setup's range over seeds, {cmp.ChosenRange:F4}, and the naive one's, {cmp.NaiveRange:F4}). " +
          "The verdict is \"beat\" only when every seed's gain is positive and the mean gain exceeds the spread, \"lost\" in the mirror case, \"within noise\" otherwise. " +
          "A seed changes the order and selection of the CPT documents and the trainer's seed; both setups start from the same large base.");
        L();
        L($"Modern Chinese loss fell from {baseLarge.TargetLoss:F3} (English-only base) to {chosen.TargetLoss:F3} with the chosen setup and {naive.TargetLoss:F3} with the naive one (seed {chosen.Seed}); " +
          $"English loss moved by {chosen.Forgetting:+0.000;-0.000} and {naive.Forgetting:+0.000;-0.000}.");
        L();
        L($"![validation curves of the two continual pre-training runs]({curvesPng})");
        L();

        L("## The English-only bases");
        L();
        L($"Criterion for a flattened base: its English validation loss changed by less than {FlatTolerance:P0} (relative) over the last quarter of its pre-training tokens.");
        L();
        L("| base | parameters | tokens | English validation loss at the end | change over the last quarter of pre-training | flattened |");
        L("|---|---|---|---|---|---|");
        foreach (var (name, dir) in new[] { ("small (proxy, stand-in for 8B)", p.BaseSmall), ("large (stand-in for 70B)", p.BaseLarge) })
        {
            var curve = Curve(Path.Combine(dir, "run", Trainer.MetricsFileName));
            var config = CptLab.Model.LlamaConfig.Load(Path.Combine(dir, "run", Trainer.FinalDir, CptLab.Model.HfCheckpoint.ConfigFile));
            var last = curve[^1];
            var quarter = curve.Last(c => c.Tokens <= last.Tokens * 3 / 4);
            double end = LangLoss(last.Loss, DemoPipeline.EnSources), then = LangLoss(quarter.Loss, DemoPipeline.EnSources);
            double change = (end - then) / then;
            L($"| {name} | {CptLab.Model.ModelMath.ParameterCount(config):N0} | {last.Tokens:N0} | {end:F4} | {end - then:+0.0000;-0.0000} ({change:+0.0%;-0.0%}) | " +
              (Math.Abs(change) < FlatTolerance ? "yes" : "**no: it was still improving when pre-training stopped**") + " |");
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
        foreach (var m in r.Models.Where(m => m.SampleEnglish.Length > 0))
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
        L("- One seed per sweep cell: the optimum's intervals come from the fitted law and a Gaussian-process surface over the cells, not from repeated runs; " +
          "the chosen-vs-naive comparison is the part repeated over seeds.");
        L("- The LR transfer uses one proxy size, so its exponent is an assumption (stated above), not a fit.");
        if (cmp.Verdict != SeedComparison.Beat)
            L("- Here the chosen setup did not win beyond the seed spread: at this scale the proxy's optimum, transferred, is not distinguishable from the naive setup.");
        return s.ToString();
    }

    /// <summary>Validation loss against tokens for zh and en, naive and chosen CPT runs (PNG; SVG beside it).</summary>
    static string CurvesPlot(DemoPipeline.Paths p, string pathWithoutExtension)
    {
        var series = new List<PlotSeries>();
        foreach (var (label, dir) in new[] { ("chosen", p.CptChosen), ("naive", p.CptNaive) })
        {
            var points = Curve(Path.Combine(dir, "run", Trainer.MetricsFileName));
            foreach (var (lang, sources) in new[] { ("modern zh", DemoPipeline.ZhSources), ("en", DemoPipeline.EnSources) })
            {
                var xs = points.Select(x => (double)x.Tokens).ToArray();
                var ys = points.Select(x => LangLoss(x.Loss, sources)).ToArray();
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

    /// <summary>Relative change of the English validation loss over the last quarter below which a base counts as flattened.</summary>
    public const double FlatTolerance = 0.01;

    /// <summary>A language's loss: the token-weighted mean over its sources.</summary>
    static double LangLoss(Dictionary<string, (double Loss, long Tokens)> loss, IReadOnlyList<string> sources) =>
        sources.Sum(s => loss[s].Loss * loss[s].Tokens) / sources.Sum(s => (double)loss[s].Tokens);

    /// <summary>The sweep's runs used and its grid size (with the adaptive design, fewer than the grid).</summary>
    static (int Runs, int Grid, string? Stop) SweepRuns(DemoPipeline.Paths p)
    {
        using var store = SweepStore.Open(p.Sweep, create: false);
        int runs = store.Runs().Count;
        return (runs, store.GetMeta("grid_size") is { } g ? int.Parse(g, Inv) : runs, store.GetMeta("adaptive_stop"));
    }

    /// <summary>
    /// The ALMR interval against the grid: its width in grid steps, and when it covers every swept ALMR, that the sweep did
    /// not resolve the optimum and roughly what would (widths shrink about as 1/√runs at the same noise).
    /// </summary>
    public static string AlmrResolution(Interval? interval, DemoScale scale, (int Runs, int Grid, string? Stop) sweep)
    {
        double lo = scale.Almrs.Min(), hi = scale.Almrs.Max(), step = (hi - lo) / (scale.Almrs.Count - 1);
        string runs = sweep.Runs < sweep.Grid
            ? $"{sweep.Runs} runs of the {sweep.Grid}-cell grid (the adaptive design{(sweep.Stop is { } st ? $" stopped: {st}" : "")})"
            : $"all {sweep.Grid} cells of the grid";
        if (interval is null) return $"no interval ({runs}).";
        double width = interval.Hi - interval.Lo;
        string head = $"the 95% interval is {width:0.###} wide, {width / step:0.#} grid steps of {step:0.###} (ALMR {lo:0.###}–{hi:0.###}, {runs}). ";
        bool atLow = interval.Lo <= lo + 1e-9, atHigh = interval.Hi >= hi - 1e-9;
        if (atLow && atHigh)
        {
            long needed = (long)Math.Ceiling(sweep.Runs * Math.Pow(width / step, 2) - 1e-6);
            return head + $"**It spans the whole grid: the sweep could not resolve the optimum ALMR.** At this noise it would take about {needed:N0} runs " +
                   $"(more seeds per cell; widths shrink about as 1/√runs) to narrow it to one grid step, or longer runs ({scale.CptTokens:N0} tokens each here), which " +
                   "lower the noise against the ALMR's effect.";
        }
        if (atLow || atHigh)
            return head + $"**It reaches the edge of the grid (ALMR {(atHigh ? hi : lo):0.###}): the optimum may lie beyond the swept range**, so the sweep " +
                   $"did not resolve it; a grid extended past {(atHigh ? hi : lo):0.###} would.";
        return head + (width <= 2 * step
            ? "The sweep resolved the optimum to within two grid steps."
            : "It narrows the choice but is wider than two grid steps: a denser or repeated sweep would sharpen it.");
    }

    static string Verdict(SeedComparison c) => c.Verdict switch
    {
        SeedComparison.Beat => $"**the chosen setup beat the naive one beyond the seed spread**: mean gain {c.MeanGain:F4} > spread {c.Spread:F4}, positive on every seed.",
        SeedComparison.Lost => $"**the chosen setup lost to the naive one beyond the seed spread**: mean gain {c.MeanGain:F4}, negative on every seed, spread {c.Spread:F4}.",
        SeedComparison.OneSeed => $"one seed only, gain {c.MeanGain:F4}: no spread to judge it against.",
        _ => $"**within noise**: mean gain {c.MeanGain:+0.0000;-0.0000} against a seed spread of {c.Spread:F4}" +
             (c.Gains.Any(g => g > 0) && c.Gains.Any(g => g < 0) ? ", and the seeds disagree on the sign." : "."),
    };

    static string Num(double? v) => v is { } x && double.IsFinite(x) ? x.ToString("0.0000", Inv) : "–";
    static string Ci(Interval? i, string format) => i is null ? "" : $"[{i.Lo.ToString(format, Inv)}, {i.Hi.ToString(format, Inv)}]";
    static string Quote(string text) => text.Replace("\n", " ").Replace("|", "\\|");
}
