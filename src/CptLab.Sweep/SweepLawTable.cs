using System.Globalization;
using CptLab.Laws.Registry;

namespace CptLab.Sweep;

/// <summary>A sweep's finished runs as a law table, and the runs left out of it with the reason.</summary>
public sealed record SweepTable(LawTable Table, IReadOnlyList<string> LeftOut);

/// <summary>
/// A sweep folder (written by `cptlab sweep run`) read as a <see cref="LawTable"/>, so that any registry law can
/// be fitted to its losses: `cptlab laws fit --data SWEEP_DIR --law data_mixing_law --input r=almr`.
/// One row per finished run ("run ID"), in (ALMR, LR, seed) order, with the columns
/// <list type="bullet">
/// <item>almr, lr, log10_lr, tokens (trained), seed: the run's cell;</item>
/// <item>loss: the target language's final validation loss (the default --target), also as target_loss;
/// original_loss: the original language's;</item>
/// <item>loss_LANG for every language of the spec (the token-weighted mean of its sources, as the sweep fit reads it);</item>
/// <item>forgetting (original_loss − the base model's) and objective (the spec's objective), when the base model's losses are recorded;</item>
/// <item>source_loss_SOURCE and source_bpb_SOURCE for every validation source of the final evaluation.</item>
/// </list>
/// Failed, unfinished and diverged runs (a non-finite final language loss) are left out, as the sweep fit leaves them out.
/// </summary>
public static class SweepLawTable
{
    public static SweepTable Read(string sweepDir)
    {
        sweepDir = Path.GetFullPath(sweepDir);
        using var store = SweepStore.Open(sweepDir, create: false);
        var spec = SweepData.Spec(store);
        var languages = spec.Languages.Keys.ToArray();
        var baseLoss = RunMetrics.ByLanguage(store.BaseLosses(), spec.Languages);
        var originalBase = baseLoss.GetValueOrDefault(spec.OriginalLanguage, double.NaN);
        var hasBase = double.IsFinite(originalBase);

        var leftOut = new List<string>();
        var finished = new List<(RunRecord Run, IReadOnlyDictionary<string, double> ByLanguage, IReadOnlyList<SourceLoss> Sources)>();
        foreach (var run in store.Runs())
        {
            if (run.Status != RunStatus.Done)
            {
                leftOut.Add(run.Status == RunStatus.Failed ? $"run {run.Id}: failed ({run.Error ?? "no error recorded"})" : $"run {run.Id}: not finished ({Name(run.Status)})");
                continue;
            }
            var byLanguage = store.FinalByLanguage(run.Id);
            if (languages.FirstOrDefault(l => !double.IsFinite(byLanguage.GetValueOrDefault(l, double.NaN))) is { } bad)
            {
                leftOut.Add($"run {run.Id}: non-finite final '{bad}' loss");
                continue;
            }
            finished.Add((run, byLanguage, store.FinalLosses(run.Id)));
        }

        var sources = finished.SelectMany(f => f.Sources.Select(s => s.Source)).Distinct().Order(StringComparer.Ordinal).ToArray();
        var columns = new List<string> { "almr", "lr", "log10_lr", "tokens", "seed", "loss", "target_loss", "original_loss" };
        columns.AddRange(languages.Select(l => "loss_" + l));
        if (hasBase) columns.AddRange(["forgetting", "objective"]);
        columns.AddRange(sources.SelectMany(s => new[] { "source_loss_" + s, "source_bpb_" + s }));

        var rows = finished.Select(f =>
        {
            var (target, original) = (f.ByLanguage[spec.TargetLanguage], f.ByLanguage[spec.OriginalLanguage]);
            var cells = new List<string>
            {
                R(f.Run.Almr), R(f.Run.Lr), R(Math.Log10(f.Run.Lr)), (f.Run.Tokens ?? spec.TokensPerRun).ToString(CultureInfo.InvariantCulture),
                f.Run.Seed.ToString(CultureInfo.InvariantCulture), R(target), R(target), R(original),
            };
            cells.AddRange(languages.Select(l => R(f.ByLanguage[l])));
            if (hasBase) cells.AddRange([R(original - originalBase), R(spec.Objective.Evaluate(target, original, originalBase))]);
            var bySource = f.Sources.ToDictionary(s => s.Source);
            // A source missing from a run's final evaluation is an empty cell: an error only if a fit uses that column.
            cells.AddRange(sources.SelectMany(s => bySource.TryGetValue(s, out var l) ? new[] { R(l.Loss), R(l.BitsPerByte) } : ["", ""]));
            return new LawTableRow($"run {f.Run.Id}", cells);
        }).ToArray();
        return new SweepTable(new LawTable(sweepDir, columns, rows), leftOut);
    }

    /// <summary>Round-trip text; a non-finite value (a constrained objective where forgetting is too large) as "NaN", an error only if a fit uses it.</summary>
    static string R(double v) => double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "NaN";

    static string Name(RunStatus s) => s.ToString().ToLowerInvariant();
}
