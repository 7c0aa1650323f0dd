using System.Globalization;
using System.Text;

namespace CptLab.Laws;

/// <summary>The Markdown section of the sweep report: what was fitted, the optimum and how sure we are, the plan.</summary>
public static class LawReport
{
    /// <param name="plots">Figure paths as the report should link them (relative to the report), PNG preferred.</param>
    public static string Section(FitSummary s, IReadOnlyList<string>? plots = null, TrainingPlan? plan = null)
    {
        var ci = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        string P(double v) => v.ToString("0.####", ci);
        string E(double v) => v.ToString("0.###e0", ci);
        string Iv(Interval? iv, Func<double, string> f) => iv is null ? "—" : $"[{f(iv.Lo)}, {f(iv.Hi)}]";
        var pct = ((s.Bootstrap?.Confidence ?? 0.95) * 100).ToString("0.#", ci) + "%";

        md.Append("## Optimal ALMR and learning rate\n\n");
        md.Append($"Objective: **{s.ObjectiveDescription}**. Target language `{s.TargetLanguage}`, original `{s.OriginalLanguage}`");
        if (s.BaseLoss.TryGetValue(s.OriginalLanguage, out var b)) md.Append($" (base-model loss {P(b)})");
        md.Append($". {s.Runs} successful runs");
        if (s.FailedRuns > 0) md.Append($", {s.FailedRuns} failed and left out");
        md.Append($"; ALMR {P(s.AlmrRange.Lo)}–{P(s.AlmrRange.Hi)}, lr {E(s.LrRange.Lo)}–{E(s.LrRange.Hi)}");
        if (s.ExtrapolatedToTokens is { } t) md.Append($"; losses extrapolated to {t.ToString("N0", ci)} tokens with L(D) = E + B·D^-β");
        md.Append(".\n\n");
        if (s.DesignNote is { } note) md.Append($"Design: **{s.Design}** — {note}.\n\n");

        md.Append($"| | value | {pct} interval |\n|---|---|---|\n");
        md.Append($"| ALMR r* | {P(s.Optimum.Almr)} | {Iv(s.Optimum.AlmrInterval, P)} |\n");
        md.Append($"| learning rate η* | {E(s.Optimum.Lr)} | {Iv(s.Optimum.LrInterval, E)} |\n");
        md.Append($"| objective at optimum | {P(s.Optimum.Objective)} | |\n");
        md.Append($"| predicted `{s.TargetLanguage}` loss | {P(s.Optimum.PredictedTargetLoss)} | |\n");
        md.Append($"| predicted `{s.OriginalLanguage}` loss | {P(s.Optimum.PredictedOriginalLoss)} | |\n");
        if (s.CriticalAlmr is { } c)
        {
            var value = c.Status switch
            {
                "crossed" => P(c.Almr!.Value),
                "not_reached" => $"> {P(c.Almr!.Value)} (not reached in the sweep)",
                _ => $"< {P(s.AlmrRange.Lo)} (exceeded at the smallest ALMR)",
            };
            md.Append($"| critical ALMR (forgetting ≤ {P(c.MaxForgetting)}) | {value} | {Iv(c.Interval, P)} |\n");
        }
        md.Append('\n');
        if (s.Uncertainty is { } u)
        {
            md.Append($"How sure: {u.Method}. Contributors: {string.Join(", ", u.Contributors)}.");
            md.Append($" The law alone: ALMR {Iv(s.Optimum.LawAlmrInterval, P)}, log10 lr {Iv(s.Optimum.LawLog10LrInterval, P)}");
            if (s.Optimum.Nonparametric is { } gp)
                md.Append($"; the Gaussian process{(gp.Languages.Values.FirstOrDefault()?.Kernel is { } kernel ? $" ({kernel} kernel)" : "")}: ALMR {Iv(gp.AlmrInterval, P)}, log10 lr {Iv(gp.Log10LrInterval, P)} (optimum of its mean ALMR {P(gp.Almr)}, log10 lr {P(gp.Log10Lr)})");
            md.Append($". Widened where they disagree: ALMR {(u.AlmrWidened ? "yes" : "no")}, LR {(u.LrWidened ? "yes" : "no")}.\n\n");
        }

        md.Append($"Law: **{s.Law}** — `{s.Formula}`, fitted per language by Huber loss on log-loss (Levenberg–Marquardt, many starts)");
        if (s.CvError is { } cv) md.Append($"; leave-one-out RMS log-loss error {P(cv)}");
        md.Append(".\n\n| law | parameters / language | leave-one-out error | |\n|---|---|---|---|\n");
        foreach (var cand in s.Candidates)
            md.Append($"| {cand.Law} | {cand.ParametersPerLanguage} | {(cand.CvError is { } e ? P(e) : "—")} | {(cand.Law == s.Law ? "**chosen**" : cand.Skipped ?? "")} |\n");
        md.Append('\n');

        if (s.Design == "grid")
        {
            md.Append($"Optimal learning rate by ALMR, η*(r), with {pct} intervals:\n\n| ALMR | η* | interval |\n|---|---|---|\n");
            var step = Math.Max(1, s.OptimalLrCurve.Count / 10);
            for (var i = 0; i < s.OptimalLrCurve.Count; i += step)
            {
                var p = s.OptimalLrCurve[i];
                md.Append($"| {P(p.Almr)} | {(p.Lr is { } lr ? E(lr) : "infeasible")} | {(p.LrLo is { } lo && p.LrHi is { } hi ? $"[{E(lo)}, {E(hi)}]" : "—")} |\n");
            }
            md.Append('\n');
        }
        if (s.Bootstrap is { } bs)
            md.Append($"Intervals: {bs.Method}, {bs.Replicates} replicates ({bs.Failed} without a feasible optimum), seed {s.Seed}.\n\n");

        foreach (var path in plots ?? [])
            if (path.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                md.Append($"![{Path.GetFileNameWithoutExtension(path).Replace('_', ' ')}]({path.Replace('\\', '/')})\n\n");

        if (plan is not null)
        {
            md.Append("## Full-size run plan\n\n| | |\n|---|---|\n");
            md.Append($"| ALMR | {P(plan.Almr)} |\n| lr / min-lr | {E(plan.Lr)} / {E(plan.MinLr)} |\n");
            if (plan.LrInterval is { } li) md.Append($"| lr interval | [{E(li.Lo)}, {E(li.Hi)}] (proxy's interval × α in [{P(plan.AlphaInterval!.Lo)}, {P(plan.AlphaInterval.Hi)}]) |\n");
            md.Append($"| warmup / train iterations | {plan.WarmupIters} / {plan.TrainIters} ({plan.DecayStyle} decay) |\n");
            md.Append($"| sequence length × global batch | {plan.SeqLength} × {plan.GlobalBatchSize} = {plan.TokensPerIter.ToString("N0", ci)} tokens/iter |\n");
            foreach (var w in plan.Blend) md.Append($"| blend `{w.PathPrefix}` ({w.Role.ToString().ToLowerInvariant()}) | {P(w.Weight)} |\n");
            md.Append("\nAssumptions:\n\n");
            foreach (var a in plan.Assumptions) md.Append($"- {a}\n");
            md.Append('\n');
        }
        return md.ToString();
    }
}
