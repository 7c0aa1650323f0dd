using System.Diagnostics;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Hardware;
using static TorchSharp.torch;

namespace CptLab.Training;

/// <summary>
/// Pre-training and continual pre-training. A run folder holds <c>config.json</c>, <c>metrics.jsonl</c>,
/// <c>checkpoints/</c> and, at the end, <c>final/</c> (the model in Hugging Face layout).
/// Legend: B micro-batch sequences, T sequence length, V vocabulary.
/// Precision: the optimizer owns float32 master weights and float32 gradient buffers; in bf16 mode a bf16
/// copy of the model does the forward and backward passes and its gradients are added, in float32, to the
/// buffers after each micro-batch. The loss is always computed from float32 logits.
/// </summary>
public static class Trainer
{
    public const string ConfigFileName = "config.json";
    public const string MetricsFileName = "metrics.jsonl";
    public const string CheckpointsDir = "checkpoints";
    public const string FinalDir = "final";

    public static TrainResult Run(TrainConfig config, ITrainingData data, string runDir, bool resume, TrainerHooks? hooks = null, CancellationToken cancellation = default)
    {
        config.Validate();
        if (data.SequenceLength != config.SeqLen)
            throw new CptLabException($"the data yields sequences of {data.SequenceLength} tokens but the config says data.seq_len = {config.SeqLen}");
        return Run(config, new NextTokenObjective(data, config), runDir, resume, hooks, cancellation);
    }

    /// <summary>The training loop for any objective (pre-training, SFT, DPO): the same optimizer, precision, checkpoints, resume and guards.</summary>
    internal static TrainResult Run(TrainConfig config, IStepObjective data, string runDir, bool resume, TrainerHooks? hooks, CancellationToken cancellation)
    {
        hooks ??= new TrainerHooks();
        config.Validate();
        Directory.CreateDirectory(runDir);
        var checkpointsDir = Path.Combine(runDir, CheckpointsDir);
        TrainingCheckpoint.RemoveIncomplete(checkpointsDir);
        var existing = TrainingCheckpoint.List(checkpointsDir);
        if (!resume && existing.Count > 0)
            throw new CptLabException($"{runDir} already holds checkpoints of a run; resume it with --resume, or choose a new run folder");

        // Dtype and threads: chosen now for a new run, the recorded ones for a resumed run (exact resume needs them).
        config = RunNumericsChoice.Apply(config, resume && existing.Count > 0 ? existing[^1].Dir : null, hooks.Log);
        var computeType = config.Resolved?.ScalarType ?? DtypeNames.Parse(config.ComputeDtype)!.Value;
        using var run = new RunState(config, computeType);
        var configJson = config.ToJson();
        var schedule = config.BuildSchedule();
        var state = new TrainerState(0, 0, 1.0, data.SaveState(), null, null, configJson);

        if (resume && existing.Count > 0)
        {
            var (step, dir) = existing[^1];
            state = run.RestoreFrom(dir, step, configJson);
            data.RestoreState(state.DataState);
            if (MetricsLog.TruncateAfter(Path.Combine(runDir, MetricsFileName), state.Step) is { } cut)
                hooks.Log?.Invoke($"{MetricsFileName}: dropped its last line, cut short by the interruption ({cut})");
            hooks.Log?.Invoke($"resumed from {dir} at step {state.Step} ({state.Tokens:N0} tokens)");
        }
        else
        {
            if (resume) hooks.Log?.Invoke($"{runDir} has no checkpoint yet; starting from the beginning");
            File.Delete(Path.Combine(runDir, MetricsFileName));
            run.InitialiseWeights(config);
            AtomicFile.WriteAllText(Path.Combine(runDir, ConfigFileName), configJson.ToJsonString(Json.Indented) + "\n");
        }
        data.Prepare(run.SyncedCompute(), resumed: state.Step > 0);
        // Every model folder the run writes (checkpoints, final) carries the tokenizer and generation config: gathered once.
        var contents = ModelFolderContents.For(config.Tokenizer, config.InitFrom, run.Master.Config.MaxPositionEmbeddings, data.TokenizerPath);
        hooks.Log?.Invoke(contents.Tokenizer is { } tf
            ? $"model folders get the tokenizer of {tf.Source}"
            : "no tokenizer known (model.tokenizer, a base with one, or blended data name it): model folders will hold weights only and cannot be served as they are");
        hooks.Log?.Invoke(config.Describe());
        hooks.Log?.Invoke($"model {ModelMath.ParameterCount(run.Master.Config):N0} parameters");
        hooks.Log?.Invoke(config.Resolved is { } numerics
            ? $"compute {numerics.Dtype} ({numerics.DtypeReason}); {numerics.Threads} thread(s) ({numerics.ThreadsReason}); OpenMP wait policy {TorchRuntime.OmpWaitPolicy}"
            : $"compute {config.ComputeDtype}, {get_num_threads()} thread(s)");

        // MFU divides by the machine's cached quiet peak for this dtype and thread count, named here.
        var peak = config.MeasurePeakFlops ? MatmulRate.Get(computeType) : null;
        if (peak is not null) hooks.Log?.Invoke($"MFU against the {peak.Describe()}");
        double flopsPerToken = ModelMath.TrainingFlopsPerToken(run.Master.Config, config.SeqLen);
        using var metrics = new MetricsLog(Path.Combine(runDir, MetricsFileName));
        int consecutiveSkips = 0;
        var lastValidation = new Dictionary<string, ValidationResult>();

        long lastCheckpoint = TrainingCheckpoint.List(checkpointsDir) is { Count: > 0 } saved ? saved[^1].Step : -1;
        while (state.Step < config.TotalSteps)
        {
            if (cancellation.IsCancellationRequested)
            {
                // Ctrl-C or SIGTERM: keep the steps done since the last checkpoint, then stop.
                if (state.Step > lastCheckpoint && state.Step > 0) SaveCheckpoint(run, state, checkpointsDir, config, contents, hooks, metrics);
                hooks.Log?.Invoke($"interrupted at step {state.Step}; continue with `cptlab train --resume {runDir}`");
                cancellation.ThrowIfCancellationRequested();
            }
            long step = state.Step;
            double lr = schedule.At(step) * state.LrScale;
            var sw = Stopwatch.StartNew();
            var (loss, gradNorm) = run.ForwardBackward(data, hooks.PoisonLoss?.Invoke(step) == true);
            var stats = data.EndStep();
            bool finite = double.IsFinite(loss) && double.IsFinite(gradNorm);
            if (finite)
            {
                run.ClipAndUpdate(gradNorm, lr);
                hooks.AfterUpdate?.Invoke(step, run.Master);
                consecutiveSkips = 0;
            }
            double seconds = sw.Elapsed.TotalSeconds;
            state = state with { Step = step + 1, Tokens = state.Tokens + stats.Tokens, DataState = data.SaveState() };
            double tps = stats.Tokens / seconds;
            if (peak is not null) peak = MatmulRate.Observe(peak, tps * flopsPerToken);
            double mfu = peak is null ? double.NaN : tps * flopsPerToken / peak.Flops;
            metrics.Step(state.Step, state.Tokens, lr, loss, gradNorm, tps, double.IsFinite(mfu) ? mfu : null, skipped: !finite, stats.Metrics);
            hooks.Progress?.Report(new TrainProgress(state.Step, config.TotalSteps, state.Tokens, lr, loss, gradNorm, tps, mfu) { Metrics = stats.Metrics });

            if (!finite)
            {
                consecutiveSkips++;
                var what = $"step {state.Step}: non-finite {(double.IsFinite(loss) ? "gradient" : "loss")} (loss {loss}, grad norm {gradNorm}); update skipped ({consecutiveSkips} in a row)";
                hooks.Log?.Invoke(what);
                metrics.Event(state.Step, what);
                if (consecutiveSkips >= config.MaxConsecutiveSkips)
                {
                    var checkpoints = TrainingCheckpoint.List(checkpointsDir);
                    if (checkpoints.Count == 0)
                        throw new CptLabException($"{consecutiveSkips} non-finite steps in a row and no checkpoint to roll back to; lower optimizer.lr or check the data");
                    var (cstep, cdir) = checkpoints[^1];
                    var restored = run.RestoreFrom(cdir, cstep, configJson);
                    state = restored with { LrScale = state.LrScale * config.RollbackLrFactor };
                    data.RestoreState(state.DataState);
                    consecutiveSkips = 0;
                    var msg = $"rolled back to step {cstep} after {config.MaxConsecutiveSkips} non-finite steps; learning rate scaled by {state.LrScale:G3}";
                    hooks.Log?.Invoke(msg);
                    metrics.Event(state.Step, msg);
                    continue;
                }
            }

            bool last = state.Step == config.TotalSteps;
            if (last || state.Step % config.EvalEverySteps == 0)
            {
                lastValidation = data.Validate(run.SyncedCompute());
                metrics.Validation(state.Step, state.Tokens, lastValidation);
                if (lastValidation.Count > 0)
                {
                    double mean = lastValidation.Values.Average(v => v.Loss);
                    if (double.IsFinite(mean) && (state.BestLoss is null || mean < state.BestLoss))
                        state = state with { BestLoss = mean, BestStep = state.Step };
                }
            }
            if (last || state.Step % config.CheckpointEverySteps == 0)
            {
                SaveCheckpoint(run, state, checkpointsDir, config, contents, hooks, metrics);
                lastCheckpoint = state.Step;
            }
            if (hooks.StopAfter?.Invoke(state.Step) == true)
                return new TrainResult(state.Step, state.Tokens, "", lastValidation, Interrupted: true);
        }

        if (!run.WeightsAreFinite()) throw new CptLabException("the final weights are not finite; no final model was written");
        var finalDir = Path.Combine(runDir, FinalDir);
        var finalDtype = config.FinalDtype();
        ModelFolder.Save(run.Master, finalDir, contents, finalDtype);
        hooks.Log?.Invoke($"final model written to {finalDir} ({DtypeNames.HfName(finalDtype)})");
        if (lastValidation.Count == 0) lastValidation = data.Validate(run.SyncedCompute());
        return new TrainResult(state.Step, state.Tokens, finalDir, lastValidation, Interrupted: false);
    }

    static void SaveCheckpoint(RunState run, TrainerState state, string checkpointsDir, TrainConfig config, ModelFolderContents contents, TrainerHooks hooks, MetricsLog metrics)
    {
        if (!run.WeightsAreFinite())
        {
            var msg = $"step {state.Step}: weights are not finite; checkpoint NOT written";
            hooks.Log?.Invoke(msg);
            metrics.Event(state.Step, msg);
            return;
        }
        TrainingCheckpoint.Write(checkpointsDir, run.Master, run.Optimizer, state, contents);
        // Keep the last N, and the best by mean validation loss.
        var all = TrainingCheckpoint.List(checkpointsDir);
        foreach (var (step, dir) in all.Take(Math.Max(0, all.Count - config.KeepLast)))
            if (!(config.KeepBest && step == state.BestStep))
                Directory.Delete(dir, recursive: true);
        hooks.Log?.Invoke($"checkpoint step {state.Step}");
    }
}
