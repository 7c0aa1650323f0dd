using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Laws;
using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Training;

namespace CptLab.Sweep;

public sealed record RunnerOptions
{
    public required IRunExecutor Executor { get; init; }
    /// <summary>Overrides the spec's workers / cores.</summary>
    public int? Workers { get; init; }
    public int? Cores { get; init; }
    /// <summary>Run failed runs again (they are kept as failed otherwise: a resumed sweep skips them like finished ones).</summary>
    public bool RetryFailed { get; init; }
    public Action<string>? Log { get; init; }
}

public sealed record SweepRunSummary(int Done, int Failed, int Pending, int GridSize, int RunsUsed, bool Adaptive, string? StopReason, bool Cancelled);

/// <summary>
/// Runs a sweep: every (ALMR, LR, seed) cell of the grid — or, in adaptive mode, the cells the design asks for —
/// as its own training run, P at a time with the cores split between them. Resumable at any point: the store
/// says which cells are done (skipped), failed (skipped unless retried) or unfinished (resumed from their
/// checkpoints, through `cptlab train --resume`). A result is recorded in one transaction when its run ends,
/// so a runner stopped by Ctrl-C, a crash or kill -9 loses nothing that finished, and a restarted runner
/// first stops any child the dead one left behind. Folder layout:
/// <code>
/// SWEEP_DIR/sweep.db            results (SweepStore)
/// SWEEP_DIR/spec.json           the resolved spec of the last `sweep run`
/// SWEEP_DIR/blends/             one blend manifest per (ALMR, seed)
/// SWEEP_DIR/runs/ID/            one run folder per cell: sweep-run.json (its config), train.log, and the
///                               trainer's config.json, metrics.jsonl, checkpoints/, final/
/// </code>
/// </summary>
public static class SweepRunner
{
    public const string SpecFileName = "spec.json";
    public const string RunConfigFileName = "sweep-run.json";

    public static SweepRunSummary Run(SweepSpec spec, string sweepDir, RunnerOptions options, CancellationToken cancellation = default)
    {
        sweepDir = Path.GetFullPath(sweepDir);
        var log = options.Log ?? (_ => { });
        using var runnerLock = RunnerLock.Acquire(sweepDir);
        using var store = SweepStore.Open(sweepDir);

        var fingerprint = spec.Fingerprint();
        if (store.GetMeta("fingerprint") is { } old && old != fingerprint)
        {
            // Only the train: section changed, and it still makes the config the earlier runs were made with (an old
            // default written out): the same experiment.
            var earlier = RunConfigCheck.Earlier(store);
            if (earlier is null || SweepFingerprint.Of(SweepData.Spec(store), withTrain: false) != SweepFingerprint.Of(spec, withTrain: false))
                throw new CptLabException(
                    $"{sweepDir} holds a sweep made with a different spec: the base checkpoint, data, languages, tokens_per_run or train section changed " +
                    "(the grid, objective, workers and fit settings may change). Mixing both would compare unlike runs; give a new --dir, or restore the spec");
            RunConfigCheck.Check(earlier, spec.RunConfig(earlier.Almr, earlier.Lr, earlier.Seed, Path.Combine(spec.DataDir, "blend.json"), threads: 1).ToJson(),
                "with the spec's changed train: section, runs");
            log($"the spec's train: section changed, but it makes the config the earlier runs (e.g. {earlier.Id}) were made with: the sweep continues");
        }
        store.SetMeta("fingerprint", fingerprint);
        var specJson = spec.ToJson().ToJsonString(Json.Indented);
        store.SetMeta("spec", specJson);
        store.SetMeta("spec_source", spec.Source);
        store.SetMeta("grid_size", spec.GridSize.ToString(CultureInfo.InvariantCulture));
        store.SetMeta("adaptive", spec.Adaptive ? "true" : "false");
        AtomicFile.WriteAllText(Path.Combine(sweepDir, SpecFileName), specJson + "\n");

        var runsDir = Path.Combine(sweepDir, "runs");
        var orphans = OrphanRuns.KillAll(runsDir);
        if (orphans.Count > 0) log($"stopped {orphans.Count} run process(es) left by an earlier runner: {string.Join(", ", orphans)}");
        var requeued = store.RequeueInterrupted();
        if (requeued > 0) log($"{requeued} interrupted run(s) will resume from their checkpoints");
        if (options.RetryFailed && store.RequeueFailed() is var retried and > 0) log($"{retried} failed run(s) will run again");

        var workers = options.Workers ?? spec.Workers;
        var coreChoice = CpuLoad.ChooseThreads(options.Cores ?? spec.Cores);
        var cores = coreChoice.Threads;
        if (workers < 1) throw new CptLabException($"workers ({workers}) must be at least 1");
        if (workers > cores)
        {
            // More workers than cores would put two runs' threads on one core: each would wait on the other.
            log($"{workers} workers asked for, but only {cores} core(s) to run them on: running {cores} at a time");
            workers = cores;
        }
        var threads = WorkerThreads(cores, workers);
        log($"{workers} worker(s) on {cores} core(s) ({coreChoice.Reason}): {string.Join(", ", threads)} thread(s) each");
        var dtype = ComputeDtype(spec, store, threads[0], log);

        if (store.BaseLosses().Count == 0)
        {
            var blend = EnsureBlend(spec, sweepDir, spec.Almrs[0], spec.Seeds[0]);
            log($"evaluating the base checkpoint {spec.BaseCheckpoint} on the validation sets ({dtype})");
            var baseLosses = options.Executor.EvaluateBase(spec, blend, cores, dtype);
            if (baseLosses.Count == 0) throw new CptLabException("the base model was evaluated on no validation set: the sources' held-out splits are empty; prepare the data with a larger --validation-fraction");
            store.SetBaseLosses(baseLosses);
            foreach (var b in baseLosses) log($"base {b.Source}: loss {b.Loss:F4}");
        }

        var cells = Cells(spec);
        string? stop = null;
        if (!spec.Adaptive)
        {
            foreach (var c in cells) store.AddRun(RunId(c.Almr, c.Lr, c.Seed), c.Almr, c.Lr, c.Seed, "", RunDir(sweepDir, c.Almr, c.Lr, c.Seed), "grid");
            RunPending(spec, sweepDir, store, options.Executor, threads, dtype, log, cancellation);
        }
        else
        {
            var design = new AdaptiveDesign(spec.Almrs, spec.Lrs, spec.AdaptiveOptions());
            while (!cancellation.IsCancellationRequested)
            {
                RunPending(spec, sweepDir, store, options.Executor, threads, dtype, log, cancellation);
                if (cancellation.IsCancellationRequested) break;
                var soFar = SweepData.Results(store, spec);
                var decision = design.Decide(soFar, batch: workers);
                if (decision.Done)
                {
                    stop = decision.Reason;
                    store.SetMeta("adaptive_stop", stop);
                    log($"adaptive design stops: {stop}; {decision.RunsUsed} runs of a {decision.GridSize}-cell grid");
                    break;
                }
                var added = 0;
                foreach (var cell in decision.Next)
                    foreach (var seed in spec.Seeds)
                        if (store.AddRun(RunId(cell.Almr, cell.Lr, seed), cell.Almr, cell.Lr, seed, "", RunDir(sweepDir, cell.Almr, cell.Lr, seed), decision.Reason)) added++;
                log($"adaptive design ({decision.Reason}): next {string.Join(", ", decision.Next)}");
                if (added == 0)
                {
                    stop = "the design proposed only cells that are already stored";
                    store.SetMeta("adaptive_stop", stop);
                    break;
                }
            }
        }

        var runs = store.Runs();
        return new SweepRunSummary(
            runs.Count(r => r.Status == RunStatus.Done), runs.Count(r => r.Status == RunStatus.Failed),
            runs.Count(r => r.Status is RunStatus.Pending or RunStatus.Running), spec.GridSize, runs.Count, spec.Adaptive,
            stop ?? store.GetMeta("adaptive_stop"), cancellation.IsCancellationRequested);
    }

    public const string ComputeDtypeKey = "compute_dtype";

    /// <summary>
    /// The one compute dtype of every run of the sweep (runs made in different precisions are not comparable): the
    /// spec's, or with dtype auto the faster on this machine for the base model's shapes at one worker's threads,
    /// chosen once and recorded in the sweep's database. A sweep resumed on a machine that would choose otherwise
    /// keeps the recorded dtype and says so.
    /// </summary>
    static string ComputeDtype(SweepSpec spec, SweepStore store, int threads, Action<string> log)
    {
        // A sweep made before the dtype was recorded: its runs' own configs say what they computed in.
        var recorded = store.GetMeta(ComputeDtypeKey) ?? store.Runs()
            .Select(r => Path.Combine(r.RunDir, Trainer.ConfigFileName)).Where(File.Exists)
            .Select(f => TrainConfig.Load(f)).Select(c => c.Resolved?.Dtype ?? StoredDtypes.Normalise(c.ComputeDtype))
            .FirstOrDefault(d => d is not null);
        var asked = spec.RunConfig(spec.Almrs[0], spec.Lrs[0], spec.Seeds[0], Path.Combine(spec.DataDir, "blend.json"), threads);
        TorchRuntime.Initialise(threads);
        // No warning here for a slow explicit dtype: each run's trainer gives it.
        var choice = ComputePrecision.Resolve(asked.ComputeDtype, asked.LoadModelConfig, Workload.Training, (int)asked.TokensPerMicroBatch, asked.SeqLen, warn: null);
        var (chosen, why) = (choice.Name, choice.Reason);
        if (recorded is not null)
        {
            if (recorded != chosen)
                log($"this machine would compute in {chosen} ({why}); the sweep keeps {recorded}, the dtype of its runs so far, so that they stay comparable");
            store.SetMeta(ComputeDtypeKey, recorded);
            return recorded;
        }
        store.SetMeta(ComputeDtypeKey, chosen);
        log($"every run computes in {chosen} ({why})");
        return chosen;
    }

    /// <summary>Threads per worker: the cores split as evenly as possible, the first workers taking the remainder; at least one each.</summary>
    public static IReadOnlyList<int> WorkerThreads(int cores, int workers) =>
        Enumerable.Range(0, workers).Select(w => Math.Max(1, cores / workers + (w < cores % workers ? 1 : 0))).ToArray();

    /// <summary>A cell's id, also its folder name: readable and the same in every runner.</summary>
    public static string RunId(double almr, double lr, long seed) =>
        string.Create(CultureInfo.InvariantCulture, $"almr{almr:0.######}_lr{lr:0.####e+00}_seed{seed}");

    static string RunDir(string sweepDir, double almr, double lr, long seed) => Path.Combine(sweepDir, "runs", RunId(almr, lr, seed));

    static IReadOnlyList<(double Almr, double Lr, long Seed)> Cells(SweepSpec spec) =>
        (from a in spec.Almrs from lr in spec.Lrs from s in spec.Seeds select (a, lr, s)).ToArray();

    /// <summary>The blend of one (ALMR, seed), made once and shared by that ALMR's runs.</summary>
    public static string EnsureBlend(SweepSpec spec, string sweepDir, double almr, long seed)
    {
        var path = Path.Combine(sweepDir, "blends", string.Create(CultureInfo.InvariantCulture, $"almr{almr:0.######}_seed{seed}.json"));
        if (File.Exists(path)) return path;
        BlendManifest.Create(spec.Mix(almr, seed)).Save(path);
        return path;
    }

    /// <summary>Runs every pending run, P at a time, until none is left or the runner is cancelled.</summary>
    static void RunPending(SweepSpec spec, string sweepDir, SweepStore store, IRunExecutor executor, IReadOnlyList<int> threads, string dtype,
        Action<string> log, CancellationToken cancellation)
    {
        var queue = new ConcurrentQueue<RunRecord>(store.Runs(RunStatus.Pending));
        if (queue.IsEmpty) return;
        log($"{queue.Count} run(s) to do");
        var blendGate = new object();
        var tasks = threads.Select(t => Task.Factory.StartNew(() =>
        {
            while (!cancellation.IsCancellationRequested && queue.TryDequeue(out var run))
                RunOne(spec, sweepDir, store, executor, run, t, dtype, blendGate, log, cancellation);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        try { Task.WaitAll(tasks); }
        catch (AggregateException e)
        {
            // A worker stopped on an error of the sweep itself (a blend that cannot be made, a bad config): report
            // it as it is, not wrapped. The run it was preparing stays pending.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw();
        }
    }

    static void RunOne(SweepSpec spec, string sweepDir, SweepStore store, IRunExecutor executor, RunRecord run, int threads, string dtype,
        object blendGate, Action<string> log, CancellationToken cancellation)
    {
        var configPath = Path.Combine(run.RunDir, RunConfigFileName);
        string configText;
        long totalSteps;
        var trainerConfig = Path.Combine(run.RunDir, Trainer.ConfigFileName);
        if (File.Exists(trainerConfig))
        {
            // Started before: it resumes with its own config (threads included, so the resumed steps are the same computation).
            var cfg = TrainConfig.Load(trainerConfig);
            (configText, totalSteps) = (cfg.ToJson().ToJsonString(Json.Indented), cfg.TotalSteps);
        }
        else
        {
            string blend;
            lock (blendGate) blend = EnsureBlend(spec, sweepDir, run.Almr, run.Seed);
            var cfg = spec.RunConfig(run.Almr, run.Lr, run.Seed, blend, threads, dtype);
            if (RunConfigCheck.Earlier(store, except: run.Id) is { } earlier) RunConfigCheck.Check(earlier, cfg.ToJson(), $"run {run.Id}");
            configText = cfg.ToJson().ToJsonString(Json.Indented);
            totalSteps = cfg.TotalSteps;
            AtomicFile.WriteAllText(configPath, configText + "\n");
        }
        var job = new RunJob(run.Id, run.Almr, run.Lr, run.Seed, run.RunDir, configPath, totalSteps, threads, spec.Languages);

        for (var attempt = 1; ; attempt++)
        {
            var resumedFrom = TrainingCheckpoint.List(Path.Combine(run.RunDir, Trainer.CheckpointsDir)).LastOrDefault().Step;
            var n = store.StartAttempt(run.Id, resumedFrom, configText);
            log(resumedFrom > 0 ? $"{run.Id}: resuming from step {resumedFrom} (attempt {n})" : $"{run.Id}: starting (attempt {n}, {threads} thread(s))");
            var sw = Stopwatch.StartNew();
            ExecResult result;
            try { result = executor.Execute(job, cancellation); }
            catch (Exception e) when (e is CptLabException or IOException or System.ComponentModel.Win32Exception)
            {
                result = new ExecResult(ExecKind.Failed, null, null, e.Message);
            }
            var wall = sw.Elapsed.TotalSeconds;
            switch (result.Kind)
            {
                case ExecKind.Finished:
                    var bad = result.Outcome!.FinalByLanguage.FirstOrDefault(kv => !double.IsFinite(kv.Value) || kv.Value <= 0);
                    var error = bad.Key is null ? null : $"diverged: the final '{bad.Key}' validation loss is {bad.Value}";
                    store.FinishAttempt(run.Id, n, wall, result.ExitCode, result.Outcome, error);
                    log(error is null
                        ? $"{run.Id}: done in {wall:F1} s, " + string.Join(", ", result.Outcome.FinalByLanguage.Select(kv => $"{kv.Key} {kv.Value:F4}"))
                        : $"{run.Id}: {error}");
                    if (!spec.KeepModels) RemoveModels(run.RunDir);
                    return;
                case ExecKind.Failed:
                    store.FinishAttempt(run.Id, n, wall, result.ExitCode, null, result.Error ?? "failed");
                    log($"{run.Id}: failed: {result.Error}");
                    return;
                default:
                    if (cancellation.IsCancellationRequested || attempt >= spec.MaxAttempts)
                    {
                        var giveUp = !cancellation.IsCancellationRequested;
                        store.FinishAttempt(run.Id, n, wall, result.ExitCode, null,
                            giveUp ? $"interrupted {attempt} times in a row (last exit code {result.ExitCode}); raise max_attempts or look at its train.log" : null);
                        log(giveUp ? $"{run.Id}: giving up after {attempt} interrupted attempts" : $"{run.Id}: interrupted; it resumes when the sweep is run again");
                        return;
                    }
                    store.FinishAttempt(run.Id, n, wall, result.ExitCode, null, null);
                    log($"{run.Id}: interrupted ({result.Error}); resuming");
                    break;
            }
        }
    }

    /// <summary>After a run is recorded its weights are not needed for the fit; proxies' checkpoints add up fast.</summary>
    static void RemoveModels(string runDir)
    {
        foreach (var d in new[] { Trainer.CheckpointsDir, Trainer.FinalDir })
        {
            var path = Path.Combine(runDir, d);
            try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
            catch (IOException) { }
        }
    }
}
