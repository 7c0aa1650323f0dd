using System.Globalization;
using System.Text;
using CptLab.Core;

namespace CptLab.Laws;

/// <summary>
/// Writes a <see cref="TrainingPlan"/> as Megatron-LM arguments (names as in megatron/training/arguments.py):
/// the blend as <c>--data-path w1 prefix1 w2 prefix2 …</c>, the schedule and the batch geometry. Model
/// architecture, parallelism and checkpoint paths are the cluster's business and are passed through.
/// </summary>
public static class MegatronLaunch
{
    public static IReadOnlyList<string> Arguments(TrainingPlan plan)
    {
        var args = new List<string> { "--data-path" };
        foreach (var b in plan.Blend)
        {
            args.Add(Num(b.Weight));
            args.Add(b.PathPrefix);
        }
        args.AddRange([
            "--lr", Num(plan.Lr),
            "--min-lr", Num(plan.MinLr),
            "--lr-warmup-iters", plan.WarmupIters.ToString(CultureInfo.InvariantCulture),
            "--lr-decay-style", plan.DecayStyle,
            "--lr-decay-iters", plan.TrainIters.ToString(CultureInfo.InvariantCulture),
            "--train-iters", plan.TrainIters.ToString(CultureInfo.InvariantCulture),
            "--seq-length", plan.SeqLength.ToString(CultureInfo.InvariantCulture),
            "--global-batch-size", plan.GlobalBatchSize.ToString(CultureInfo.InvariantCulture),
        ]);
        return args;
    }

    /// <summary>A bash launcher: the plan's arguments, its assumptions as comments, and "$@" for model/parallelism flags.</summary>
    public static string Script(TrainingPlan plan)
    {
        var sb = new StringBuilder();
        sb.Append("#!/usr/bin/env bash\n");
        sb.Append("# Megatron-LM continual pre-training launch, written by CptLab from the proxy sweep's law.\n");
        foreach (var a in plan.Assumptions) sb.Append("# - ").Append(a.Replace('\n', ' ')).Append('\n');
        sb.Append("# Add model, parallelism and checkpoint flags (--load, --save, --tensor-model-parallel-size, ...) as arguments.\n");
        sb.Append("set -euo pipefail\n");
        sb.Append("CPTLAB_ARGS=(\n");
        var args = Arguments(plan);
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal)) sb.Append(i == 0 ? "  " : "\n  ");
            else sb.Append(' ');
            sb.Append(Quote(args[i]));
        }
        sb.Append("\n)\n");
        sb.Append("exec torchrun ${TORCHRUN_ARGS:-} \"${MEGATRON_LM:?set MEGATRON_LM to a Megatron-LM checkout}/pretrain_gpt.py\" \"${CPTLAB_ARGS[@]}\" \"$@\"\n");
        return sb.ToString();
    }

    public static void WriteScript(string path, TrainingPlan plan)
    {
        AtomicFile.WriteAllText(path, Script(plan));
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
    }

    static string Num(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    static string Quote(string s) =>
        s.All(c => char.IsLetterOrDigit(c) || "-_./=:+,@".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
