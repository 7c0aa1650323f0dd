using CptLab.Model;
using CptLab.Model.Hardware;

namespace CptLab.Training;

/// <summary>
/// Chooses a run's dtype and threads when it starts (dtype auto and threads 0 are measured on this machine) and
/// keeps the recorded ones when it resumes: a resumed run must compute exactly as its first steps did, so on a
/// machine that would choose otherwise it keeps its own numerics and says so.
/// </summary>
internal static class RunNumericsChoice
{
    /// <param name="checkpointDir">The checkpoint a resumed run continues from; null for a new run.</param>
    public static TrainConfig Apply(TrainConfig config, string? checkpointDir, Action<string>? log)
    {
        if (checkpointDir is not null)
        {
            var recordedConfig = TrainingCheckpoint.ReadState(checkpointDir).Config;
            var recordedRun = TrainConfig.FromJson(recordedConfig, checkpointDir, checkpointDir);
            if (recordedRun.Resolved is not { } recorded)
            {
                // A checkpoint written before the numerics were recorded: its dtype was explicit (an auto config
                // resuming it takes that dtype), its threads as configured.
                TorchRuntime.Initialise(config.Threads);
                return ComputePrecision.IsAuto(config.ComputeDtype) ? config with { ComputeDtype = recordedRun.ComputeDtype } : config;
            }
            TorchRuntime.Initialise(recorded.Threads);
            if (ComputePrecision.IsAuto(config.ComputeDtype))
            {
                var now = ComputePrecision.Choose(config.LoadModelConfig(), Workload.Training, (int)config.TokensPerMicroBatch, config.SeqLen);
                if (now.Name != recorded.Dtype)
                    log?.Invoke($"this machine would compute in {now.Name} ({now.Reason}); the run keeps {recorded.Dtype}, its recorded dtype, so the resumed steps compute as the first ones did");
            }
            if (config.Threads == 0 && CpuLoad.ChooseThreads() is { } free && free.Threads < recorded.Threads)
                log?.Invoke($"{free.Reason}; the run keeps its {recorded.Threads} threads, which exact resume needs (expect it slower while the machine is busy)");
            return config with { Resolved = config.Resolved ?? recorded };
        }
        if (config.Resolved is not null)
        {
            TorchRuntime.Initialise(config.Resolved.Threads);
            return config; // a config that already carries its numerics (a copied run config): kept as it is
        }

        var threads = CpuLoad.ChooseThreads(config.Threads);
        TorchRuntime.Initialise(threads.Threads);
        var choice = ComputePrecision.Resolve(config.ComputeDtype, config.LoadModelConfig, Workload.Training, (int)config.TokensPerMicroBatch, config.SeqLen, log);
        return config with { Resolved = new RunNumerics(choice.Name, threads.Threads, choice.Reason, threads.Reason) };
    }
}
