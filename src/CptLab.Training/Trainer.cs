using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Hardware;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Training;

/// <summary>One line of progress, reported after every optimizer step (and for events).</summary>
public sealed record TrainProgress(long Step, long TotalSteps, long Tokens, double Lr, double Loss, double GradNorm, double TokensPerSecond, double Mfu);

/// <summary>Loss and bits per byte of one validation set.</summary>
public sealed record ValidationResult(double Loss, double BitsPerByte, long Tokens);

public sealed record TrainResult(long Steps, long Tokens, string FinalModelDir, IReadOnlyDictionary<string, ValidationResult> Validation, bool Interrupted);

/// <summary>Optional observers and test hooks of a run.</summary>
public sealed class TrainerHooks
{
    public IProgress<TrainProgress>? Progress { get; init; }
    /// <summary>Notable events (resume, skipped step, rollback, checkpoint), one line each.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Fault injection for tests: when it returns true for a step, that step's loss is made NaN.</summary>
    public Func<long, bool>? PoisonLoss { get; init; }
    /// <summary>Fault injection for tests: called after a step's update; may corrupt the weights.</summary>
    public Action<long, LlamaForCausalLM>? AfterUpdate { get; init; }
    /// <summary>Stops the run (as a kill would) once this returns true after a step.</summary>
    public Func<long, bool>? StopAfter { get; init; }
}

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
        hooks ??= new TrainerHooks();
        config.Validate();
        if (data.SequenceLength != config.SeqLen)
            throw new CptLabException($"the data yields sequences of {data.SequenceLength} tokens but the config says data.seq_len = {config.SeqLen}");
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
            Metrics.TruncateAfter(Path.Combine(runDir, MetricsFileName), state.Step);
            hooks.Log?.Invoke($"resumed from {dir} at step {state.Step} ({state.Tokens:N0} tokens)");
        }
        else
        {
            if (resume) hooks.Log?.Invoke($"{runDir} has no checkpoint yet; starting from the beginning");
            File.Delete(Path.Combine(runDir, MetricsFileName));
            run.InitialiseWeights(config);
            AtomicFile.WriteAllText(Path.Combine(runDir, ConfigFileName), configJson.ToJsonString(Json.Indented) + "\n");
        }
        hooks.Log?.Invoke(config.Describe());
        hooks.Log?.Invoke($"model {ModelMath.ParameterCount(run.Master.Config):N0} parameters");
        hooks.Log?.Invoke(config.Resolved is { } numerics
            ? $"compute {numerics.Dtype} ({numerics.DtypeReason}); {numerics.Threads} thread(s) ({numerics.ThreadsReason}); OpenMP wait policy {TorchRuntime.OmpWaitPolicy}"
            : $"compute {config.ComputeDtype}, {get_num_threads()} thread(s)");

        // MFU divides by the machine's cached quiet peak for this dtype and thread count, named here.
        var peak = config.MeasurePeakFlops ? MatmulRate.Get(computeType) : null;
        if (peak is not null) hooks.Log?.Invoke($"MFU against the {peak.Describe()}");
        double flopsPerToken = ModelMath.TrainingFlopsPerToken(run.Master.Config, config.SeqLen);
        using var metrics = new Metrics(Path.Combine(runDir, MetricsFileName));
        int consecutiveSkips = 0;
        var lastValidation = new Dictionary<string, ValidationResult>();

        long lastCheckpoint = TrainingCheckpoint.List(checkpointsDir) is { Count: > 0 } saved ? saved[^1].Step : -1;
        while (state.Step < config.TotalSteps)
        {
            if (cancellation.IsCancellationRequested)
            {
                // Ctrl-C or SIGTERM: keep the steps done since the last checkpoint, then stop.
                if (state.Step > lastCheckpoint && state.Step > 0) SaveCheckpoint(run, state, checkpointsDir, config, hooks, metrics);
                hooks.Log?.Invoke($"interrupted at step {state.Step}; continue with `cptlab train --resume {runDir}`");
                cancellation.ThrowIfCancellationRequested();
            }
            long step = state.Step;
            double lr = schedule.At(step) * state.LrScale;
            var sw = Stopwatch.StartNew();
            var (loss, gradNorm) = run.ForwardBackward(data, hooks.PoisonLoss?.Invoke(step) == true);
            bool finite = double.IsFinite(loss) && double.IsFinite(gradNorm);
            if (finite)
            {
                run.ClipAndUpdate(gradNorm, lr);
                hooks.AfterUpdate?.Invoke(step, run.Master);
                consecutiveSkips = 0;
            }
            double seconds = sw.Elapsed.TotalSeconds;
            state = state with { Step = step + 1, Tokens = state.Tokens + config.GlobalBatchTokens, DataState = data.SaveState() };
            double tps = config.GlobalBatchTokens / seconds;
            if (peak is not null) peak = MatmulRate.Observe(peak, tps * flopsPerToken);
            double mfu = peak is null ? double.NaN : tps * flopsPerToken / peak.Flops;
            metrics.Step(state.Step, state.Tokens, lr, loss, gradNorm, tps, double.IsFinite(mfu) ? mfu : null, skipped: !finite);
            hooks.Progress?.Report(new TrainProgress(state.Step, config.TotalSteps, state.Tokens, lr, loss, gradNorm, tps, mfu));

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
                lastValidation = run.Validate(data.Validation, config.MicroBatchSize);
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
                SaveCheckpoint(run, state, checkpointsDir, config, hooks, metrics);
                lastCheckpoint = state.Step;
            }
            if (hooks.StopAfter?.Invoke(state.Step) == true)
                return new TrainResult(state.Step, state.Tokens, "", lastValidation, Interrupted: true);
        }

        if (!run.WeightsAreFinite()) throw new CptLabException("the final weights are not finite; no final model was written");
        var finalDir = Path.Combine(runDir, FinalDir);
        HfCheckpoint.Save(run.Master, finalDir, ScalarType.Float32);
        hooks.Log?.Invoke($"final model written to {finalDir}");
        if (lastValidation.Count == 0) lastValidation = run.Validate(data.Validation, config.MicroBatchSize);
        return new TrainResult(state.Step, state.Tokens, finalDir, lastValidation, Interrupted: false);
    }

    static void SaveCheckpoint(RunState run, TrainerState state, string checkpointsDir, TrainConfig config, TrainerHooks hooks, Metrics metrics)
    {
        if (!run.WeightsAreFinite())
        {
            var msg = $"step {state.Step}: weights are not finite; checkpoint NOT written";
            hooks.Log?.Invoke(msg);
            metrics.Event(state.Step, msg);
            return;
        }
        TrainingCheckpoint.Write(checkpointsDir, run.Master, run.Optimizer, state);
        // Keep the last N, and the best by mean validation loss.
        var all = TrainingCheckpoint.List(checkpointsDir);
        foreach (var (step, dir) in all.Take(Math.Max(0, all.Count - config.KeepLast)))
            if (!(config.KeepBest && step == state.BestStep))
                Directory.Delete(dir, recursive: true);
        hooks.Log?.Invoke($"checkpoint step {state.Step}");
    }

    /// <summary>The dotted path of the first key whose value differs between two configs; null when equal.</summary>
    internal static string? FirstDifference(JsonNode? a, JsonNode? b, string path)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
                if (FirstDifference(oa[key], ob[key], path.Length == 0 ? key : $"{path}.{key}") is { } d) return d;
            return null;
        }
        return JsonNode.DeepEquals(a, b) ? null : path;
    }

    internal static JsonNode? Find(JsonNode? node, string path)
    {
        foreach (var part in path.Split('.')) node = (node as JsonObject)?[part];
        return node;
    }

    internal static string Show(JsonNode? n) => n?.ToJsonString() ?? "absent";
}

/// <summary>The models, optimizer and gradient buffers of a run.</summary>
internal sealed class RunState : IDisposable
{
    readonly TrainConfig _config;
    readonly ScalarType _computeType;
    readonly List<(string Name, Tensor Master, Tensor Compute, Tensor Grad)> _params = [];
    LlamaForCausalLM? _master, _compute;
    AdamW? _optimizer;

    public RunState(TrainConfig config, ScalarType computeType) => (_config, _computeType) = (config, computeType);

    public LlamaForCausalLM Master => _master!;
    /// <summary>The float32 gradient buffers of the last <see cref="ForwardBackward"/>, in parameter order.</summary>
    public IReadOnlyList<(string Name, Tensor Grad)> Gradients => _params.Select(p => (p.Name, p.Grad)).ToList();
    public AdamW Optimizer => _optimizer!;

    void Build(LlamaConfig modelConfig)
    {
        _master = new LlamaForCausalLM(modelConfig, ScalarType.Float32);
        _compute = _computeType == ScalarType.Float32 ? _master : new LlamaForCausalLM(modelConfig, _computeType);
        var compute = _compute.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (name, p) in _master.named_parameters())
            _params.Add((name, p, compute[name], zeros_like(p).DetachFromDisposeScope()));
        var withDecay = _params.Select(p => (p.Name, p.Master, Decay: p.Master.dim() >= 2 && (_config.DecayEmbeddings || !p.Name.Contains("embed_tokens", StringComparison.Ordinal)))).ToList();
        _optimizer = new AdamW(withDecay, _config.Beta1, _config.Beta2, _config.Eps, _config.WeightDecay);
    }

    public void InitialiseWeights(TrainConfig config)
    {
        Build(config.LoadModelConfig());
        if (config.InitFrom is { } dir) HfCheckpoint.LoadWeights(_master!, dir);
        else _master!.InitWeights(config.Seed);
    }

    public TrainerState RestoreFrom(string dir, long step, JsonObject configJson)
    {
        TrainingCheckpoint.Verify(dir);
        var state = TrainingCheckpoint.ReadState(dir);
        if (state.Step != step) throw new CorruptFileException(dir, $"state.json says step {state.Step}, the folder name says {step}");
        if (Trainer.FirstDifference(state.Config, configJson, "") is { } key)
            throw new CptLabException($"{dir}: checkpoint was written with a different config: '{key}' is {Trainer.Show(Trainer.Find(state.Config, key))} there and {Trainer.Show(Trainer.Find(configJson, key))} now; resume with the run's own config.json");
        if (_master is null) Build(LlamaConfig.Load(Path.Combine(dir, HfCheckpoint.ConfigFile)));
        TrainingCheckpoint.Restore(dir, _master!, _optimizer!, step);
        return state;
    }

    /// <summary>Accumulates the global batch's gradients into the float32 buffers; returns the mean loss and the gradient norm.</summary>
    public (double Loss, double GradNorm) ForwardBackward(ITrainingData data, bool poison)
    {
        using var _ = no_grad();
        // In-place ops hand back new tensor handles: even these run inside a scope, or each step leaks one per parameter.
        using (NewDisposeScope())
        foreach (var p in _params)
        {
            p.Grad.zero_();
            if (!ReferenceEquals(_compute, _master)) p.Compute.copy_(p.Master); // master → bf16 compute weights
        }
        int b = _config.MicroBatchSize, t = _config.SeqLen, vocab = _master!.Config.VocabSize;
        double lossSum = 0;
        for (int micro = 0; micro < _config.AccumulationSteps; micro++)
        {
            using var scope = NewDisposeScope();
            var batch = new long[b * (t + 1)];
            for (int i = 0; i < b; i++)
            {
                var seq = data.Next();
                if (seq.Length != t + 1) throw new CptLabException($"the data yielded a sequence of {seq.Length} tokens, expected {t + 1}");
                for (int j = 0; j <= t; j++)
                {
                    int id = seq[j];
                    if ((uint)id >= (uint)vocab) throw new CptLabException($"token id {id} is outside the model's vocabulary of {vocab}; the data was tokenized for a different model");
                    batch[i * (t + 1) + j] = id;
                }
            }
            var ids = tensor(batch).view(b, t + 1);                                              // (B, T+1)
            var input = ids.narrow(1, 0, t);                                                     // (B, T)
            var target = ids.narrow(1, 1, t);                                                    // (B, T)
            Tensor loss;
            using (enable_grad())
            {
                var logits = _compute!.forward(input);                                           // (B, T, V) float32
                // Sum over tokens divided by the global batch's token count: the micro-batches add up to the mean.
                loss = F.cross_entropy(logits.view(-1, vocab), target.reshape(-1), reduction: nn.Reduction.Sum) / (double)_config.GlobalBatchTokens;
                if (poison) loss = loss * double.NaN;
                loss.backward();
            }
            lossSum += loss.item<float>();
            foreach (var p in _params)
            {
                var g = p.Compute.grad;
                if (g is null) continue;
                p.Grad.add_(g.to(ScalarType.Float32));
            }
            _compute.zero_grad();
        }
        double sq = 0;
        using (NewDisposeScope())
            foreach (var p in _params) sq += p.Grad.square().sum().item<float>();
        return (lossSum, Math.Sqrt(sq));
    }

    public void ClipAndUpdate(double gradNorm, double lr)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        if (_config.GradClip > 0 && gradNorm > _config.GradClip)
        {
            double scale = _config.GradClip / (gradNorm + 1e-6);
            foreach (var p in _params) p.Grad.mul_(scale);
        }
        _optimizer!.Update(lr, _params.Select(p => p.Grad).ToList());
    }

    public bool WeightsAreFinite()
    {
        using var scope = NewDisposeScope();
        return _params.All(p => p.Master.isfinite().all().item<bool>());
    }

    public Dictionary<string, ValidationResult> Validate(IReadOnlyList<ValidationSet> sets, int microBatch)
    {
        using var _ = no_grad();
        if (!ReferenceEquals(_compute, _master))
            using (NewDisposeScope())
                foreach (var p in _params) p.Compute.copy_(p.Master);
        return ModelEvaluation.Evaluate(_compute!, sets, microBatch);
    }

    public void Dispose()
    {
        foreach (var p in _params) p.Grad.Dispose();
        _optimizer?.Dispose();
        if (!ReferenceEquals(_compute, _master)) _compute?.Dispose();
        _master?.Dispose();
    }
}


/// <summary>metrics.jsonl: one JSON object per line (steps, validations, events), flushed as written.</summary>
sealed class Metrics : IDisposable
{
    readonly StreamWriter _writer;

    public Metrics(string path) => _writer = new StreamWriter(path, append: true) { AutoFlush = true };

    public void Step(long step, long tokens, double lr, double loss, double gradNorm, double tps, double? mfu, bool skipped)
    {
        var o = new JsonObject
        {
            ["step"] = step, ["tokens"] = tokens, ["lr"] = lr,
            ["loss"] = Num(loss), ["grad_norm"] = Num(gradNorm), ["tokens_per_s"] = Math.Round(tps, 1),
        };
        if (mfu is { } m) o["mfu"] = Math.Round(m, 4);
        if (skipped) o["skipped"] = true;
        Write(o);
    }

    public void Validation(long step, long tokens, IReadOnlyDictionary<string, ValidationResult> results)
    {
        var val = new JsonObject();
        foreach (var (name, r) in results) val[name] = new JsonObject { ["loss"] = Num(r.Loss), ["bpb"] = Num(r.BitsPerByte), ["tokens"] = r.Tokens };
        Write(new JsonObject { ["step"] = step, ["tokens"] = tokens, ["val"] = val });
    }

    public void Event(long step, string message) => Write(new JsonObject { ["step"] = step, ["event"] = message });

    void Write(JsonObject o) => _writer.WriteLine(o.ToJsonString());

    static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));

    /// <summary>On resume: drops lines of steps after the checkpoint, which the resumed run will log again.</summary>
    public static void TruncateAfter(string path, long step)
    {
        if (!File.Exists(path)) return;
        var keep = File.ReadLines(path).Where(line =>
        {
            try { return JsonNode.Parse(line)?["step"]?.GetValue<long>() <= step; }
            catch (System.Text.Json.JsonException) { return false; } // a line cut by the kill
        }).ToList();
        AtomicFile.WriteAllText(path, keep.Count == 0 ? "" : string.Join("\n", keep) + "\n");
    }

    public void Dispose() => _writer.Dispose();
}
