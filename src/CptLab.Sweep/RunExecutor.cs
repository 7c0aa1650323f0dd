using System.Diagnostics;
using System.Globalization;
using CptLab.Core;
using CptLab.Training;

namespace CptLab.Sweep;

/// <summary>One run for a worker: its folder, the config to start it with, and the cores it may use.</summary>
public sealed record RunJob(string Id, double Almr, double Lr, long Seed, string RunDir, string ConfigPath, long TotalSteps, int Threads, IReadOnlyDictionary<string, IReadOnlyList<string>> Languages);

public enum ExecKind
{
    /// <summary>The run finished; <see cref="ExecResult.Outcome"/> holds its validation losses.</summary>
    Finished,
    /// <summary>The run failed for a reason a retry would not fix (bad config, divergence with nothing to roll back to, a bug).</summary>
    Failed,
    /// <summary>The child was killed or cancelled: resume it from its last checkpoint.</summary>
    Interrupted,
}

public sealed record ExecResult(ExecKind Kind, int? ExitCode, RunOutcome? Outcome, string? Error);

/// <summary>How a sweep's runs and its base-model evaluation are carried out. The runner calls it from its worker threads.</summary>
public interface IRunExecutor
{
    /// <summary>Starts the run, or resumes it from its checkpoints when its folder already holds one; blocks until it ends.</summary>
    ExecResult Execute(RunJob job, CancellationToken cancellation);

    /// <summary>The base checkpoint's validation loss on each source of the blend, computed in the runs' dtype (forgetting is measured against it).</summary>
    IReadOnlyList<SourceLoss> EvaluateBase(SweepSpec spec, string blendPath, int threads, string dtype);
}

/// <summary>What to execute for `cptlab …`: the apphost, or `dotnet cptlab.dll`.</summary>
public sealed record CptLabCommand(string FileName, IReadOnlyList<string> PrefixArguments)
{
    /// <summary>
    /// The command of the running CLI: its apphost when it was started as one, else `dotnet &lt;cptlab.dll&gt;`
    /// next to the running assembly (<paramref name="baseDirectory"/>, default AppContext.BaseDirectory).
    /// </summary>
    public static CptLabCommand Current(string? baseDirectory = null)
    {
        var dir = baseDirectory ?? AppContext.BaseDirectory;
        var process = Environment.ProcessPath;
        if (baseDirectory is null && process is not null && Path.GetFileNameWithoutExtension(process) == "cptlab") return new(process, []);
        var dll = Path.Combine(dir, "cptlab.dll");
        if (!File.Exists(dll)) throw new CptLabException($"cannot find cptlab.dll in {dir} to start the sweep's runs with; run the sweep from the built CLI");
        var dotnet = process is not null && Path.GetFileNameWithoutExtension(process) == "dotnet" ? process : "dotnet";
        return new(dotnet, [dll]);
    }
}

/// <summary>
/// Runs each sweep run as a `cptlab train` child process: `--config FILE --out DIR` the first time, `--resume DIR`
/// once the trainer has written the run's config.json (it then continues bit-exactly from the last checkpoint).
/// The child's output goes to <c>train.log</c> in the run folder. Exit 0 is a finished run (its metrics.jsonl is
/// read); exit 1 (a CptLab error) or 70 (a bug) a failed one; a kill, a signal or a cancelled child an
/// interrupted one. The base model is evaluated in this process (TorchSharp), with the trainer's own loop.
/// </summary>
public sealed class ProcessRunExecutor(CptLabCommand command) : IRunExecutor
{
    public const string LogFileName = "train.log";

    public ExecResult Execute(RunJob job, CancellationToken cancellation)
    {
        var resume = File.Exists(Path.Combine(job.RunDir, Trainer.ConfigFileName));
        var args = new List<string>(command.PrefixArguments) { "train" };
        if (resume) args.AddRange(["--resume", job.RunDir]);
        else args.AddRange(["--config", job.ConfigPath, "--out", job.RunDir]);

        var psi = new ProcessStartInfo(command.FileName)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            WorkingDirectory = job.RunDir,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // LibTorch reads these at start-up; the config's threads setting applies them again.
        psi.Environment["OMP_NUM_THREADS"] = job.Threads.ToString(CultureInfo.InvariantCulture);
        psi.Environment["MKL_NUM_THREADS"] = job.Threads.ToString(CultureInfo.InvariantCulture);

        Directory.CreateDirectory(job.RunDir);
        using var log = new StreamWriter(Path.Combine(job.RunDir, LogFileName), append: true) { AutoFlush = true };
        var gate = new object();
        string? lastError = null;
        void Line(string? line, bool stderr)
        {
            if (line is null) return;
            lock (gate)
            {
                log.WriteLine(line);
                if (stderr && (line.StartsWith("error:", StringComparison.Ordinal) || line.StartsWith("internal error", StringComparison.Ordinal))) lastError = line;
            }
        }
        lock (gate) log.WriteLine($"# {DateTimeOffset.UtcNow:O} {command.FileName} {string.Join(' ', args)}");

        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => Line(e.Data, false);
        process.ErrorDataReceived += (_, e) => Line(e.Data, true);
        process.Start();
        process.StandardInput.Close(); // the trainer reads nothing; a closed stdin keeps it from waiting on one
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using (cancellation.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } }))
            process.WaitForExit();
        var code = process.ExitCode;
        lock (gate) log.WriteLine($"# exit code {code}");

        if (cancellation.IsCancellationRequested) return new ExecResult(ExecKind.Interrupted, code, null, null);
        if (code == 0)
        {
            try
            {
                return new ExecResult(ExecKind.Finished, code, RunMetrics.Read(job.RunDir, job.TotalSteps, job.Languages), null);
            }
            catch (CptLabException e)
            {
                return new ExecResult(ExecKind.Failed, code, null, e.Message);
            }
        }
        // 130: the child was cancelled (SIGINT); ≥ 128: killed by a signal (kill -9 is 137).
        if (code >= 128) return new ExecResult(ExecKind.Interrupted, code, null, $"killed or cancelled (exit code {code})");
        var what = lastError ?? $"`cptlab train` exited with code {code}";
        return new ExecResult(ExecKind.Failed, code, null, $"{what} (see {Path.Combine(job.RunDir, LogFileName)})");
    }

    public IReadOnlyList<SourceLoss> EvaluateBase(SweepSpec spec, string blendPath, int threads, string dtype)
    {
        var config = spec.RunConfig(spec.Almrs[0], spec.Lrs[0], spec.Seeds[0], blendPath, threads, dtype);
        using var data = BlendTrainingData.Open(blendPath, config.SeqLen, config.EvalMaxSequences);
        var results = ModelEvaluation.Evaluate(spec.BaseCheckpoint, data.Validation, config.MicroBatchSize, config.ComputeDtype, threads);
        return results.Select(kv => new SourceLoss(0, 0, kv.Key, kv.Value.Loss, kv.Value.BitsPerByte, kv.Value.Tokens)).ToList();
    }
}
