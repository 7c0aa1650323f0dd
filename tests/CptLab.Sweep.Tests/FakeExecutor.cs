using System.Collections.Concurrent;
using CptLab.Sweep;

namespace CptLab.Sweep.Tests;

/// <summary>
/// A known loss surface in place of training: log-losses quadratic in x = log10 lr, with coefficients in the
/// ALMR r. The target ("zh") improves with r and wants a larger LR as r grows; the original ("en") forgets more
/// as r grows and prefers a fixed LR. Noise is seeded by a fixed hash of the cell, so a cell's result depends neither
/// on the order runs happen in (as with real, seeded runs) nor on the process (HashCode is salted per process).
/// </summary>
public static class Surface
{
    public static double LogZh(double r, double x) => 1.20 - 0.60 * r + 0.25 * r * r + 0.10 * Sq(x - (-3.6 + 0.5 * r));
    public static double LogEn(double r, double x) => 0.75 + 0.05 * r + 0.30 * r * r + 0.06 * Sq(x + 4.0);
    public static readonly double EnBase = Math.Exp(0.75);
    public static readonly double ZhBase = 4.0;
    static double Sq(double v) => v * v;

    public static (double Zh, double En) Losses(double r, double lr, long seed, double noise)
    {
        var x = Math.Log10(lr);
        var rng = new Random(CellSeed(r, x, seed));
        return (Math.Exp(LogZh(r, x) + noise * Gauss(rng)), Math.Exp(LogEn(r, x) + noise * Gauss(rng)));
    }

    /// <summary>The optimum of an objective by brute force on a dense grid.</summary>
    public static (double R, double X) TrueOptimum(Laws.Objective objective, double r0, double r1, double x0, double x1, int n = 401)
    {
        var best = (R: 0.0, X: 0.0, V: double.PositiveInfinity);
        for (var i = 0; i < n; i++)
        for (var j = 0; j < n; j++)
        {
            var r = r0 + (r1 - r0) * i / (n - 1);
            var x = x0 + (x1 - x0) * j / (n - 1);
            var v = objective.Evaluate(Math.Exp(LogZh(r, x)), Math.Exp(LogEn(r, x)), EnBase);
            if (v < best.V) best = (r, x, v);
        }
        return (best.R, best.X);
    }

    /// <summary>SplitMix64's finaliser over the cell's values, folded to a non-negative int: the same in every process.</summary>
    public static int CellSeed(double r, double x, long seed)
    {
        ulong h = Core.SplitMix64.Gamma;
        foreach (var v in new[] { (long)Math.Round(r * 1e6), (long)Math.Round(x * 1e6), seed })
        {
            var state = h ^ (ulong)v;
            h = Core.SplitMix64.Next(ref state); // one SplitMix64 step from the value folded into the hash so far
        }
        return (int)(h & 0x7fffffff);
    }

    static double Gauss(Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

/// <summary>
/// Runs "finish" instantly with losses from <see cref="Surface"/>; <see cref="Script"/> can make a cell fail,
/// be interrupted or diverge. Records every call, to check what the runner skipped and what it ran twice.
/// </summary>
public sealed class FakeExecutor(double noise = 0.004, double lrShift = 0) : IRunExecutor
{
    public ConcurrentQueue<string> Calls { get; } = new();
    /// <summary>Each call's thread count and the compute dtype of its config.</summary>
    public ConcurrentQueue<(int Threads, string Dtype)> Numerics { get; } = new();
    /// <summary>Per run id, the results to give on successive calls (then a normal finish).</summary>
    public ConcurrentDictionary<string, Queue<ExecKind>> Script { get; } = new();
    /// <summary>Called before each run; tests cancel the runner from here.</summary>
    public Action<string>? BeforeRun { get; set; }
    public HashSet<string> Diverge { get; } = [];

    public ExecResult Execute(RunJob job, CancellationToken cancellation)
    {
        Calls.Enqueue(job.Id);
        BeforeRun?.Invoke(job.Id);
        if (cancellation.IsCancellationRequested) return new ExecResult(ExecKind.Interrupted, 130, null, "cancelled");
        if (Script.TryGetValue(job.Id, out var q) && q.Count > 0)
        {
            var kind = q.Dequeue();
            if (kind == ExecKind.Failed) return new ExecResult(kind, 1, null, "error: scripted failure");
            if (kind == ExecKind.Interrupted) return new ExecResult(kind, 137, null, "killed (exit code 137)");
        }
        var cfg = CptLab.Training.TrainConfig.Load(job.ConfigPath);
        Numerics.Enqueue((job.Threads, cfg.ComputeDtype));
        // The surface's LR axis can be shifted (another proxy size prefers another LR).
        var (zh, en) = Surface.Losses(job.Almr, job.Lr * Math.Pow(10, -lrShift), job.Seed, noise);
        if (Diverge.Contains(job.Id)) zh = double.NaN;
        var steps = job.TotalSteps;
        var curve = new List<SourceLoss>();
        for (var k = 1; k <= 4; k++)
        {
            var step = steps * k / 4;
            var extra = 0.5 / k - 0.125; // losses fall along the run and end at the final values
            curve.Add(new SourceLoss(step, step * cfg.GlobalBatchTokens, "zh-web", zh + extra, 1, 100));
            curve.Add(new SourceLoss(step, step * cfg.GlobalBatchTokens, "en-web", en + extra, 1, 100));
        }
        var final = curve.Where(c => c.Step == steps).ToList();
        return new ExecResult(ExecKind.Finished, 0,
            new RunOutcome(curve, final, RunMetrics.ByLanguage(final, job.Languages), steps, steps * cfg.GlobalBatchTokens), null);
    }

    public IReadOnlyList<SourceLoss> EvaluateBase(SweepSpec spec, string blendPath, int threads, string dtype) =>
        [new SourceLoss(0, 0, "en-web", Surface.EnBase, 1, 100), new SourceLoss(0, 0, "zh-web", Surface.ZhBase, 1, 100)];
}
