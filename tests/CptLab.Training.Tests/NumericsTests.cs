using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Training;
using static TorchSharp.torch;

namespace CptLab.Training.Tests;

/// <summary>dtype auto, recorded numerics across resume, and MFU against a cached peak.</summary>
public class NumericsTests
{
    // Threads stay explicit (1) here: the thread count is process-wide, and other tests compare runs bit for bit.
    static TrainConfig AutoConfig() => Fixtures.Config() with { ComputeDtype = ComputePrecision.Auto };

    /// <summary>The "resolved" record of a run's config.json, or of the config inside a checkpoint's state.json.</summary>
    static JsonObject Resolved(string file)
    {
        var n = JsonNode.Parse(File.ReadAllText(file))!;
        return (JsonObject)(n["resolved"] ?? n["config"]!["resolved"])!;
    }

    [Fact]
    public void Auto_dtype_is_chosen_printed_and_recorded_in_the_run()
    {
        using var cache = MachineCache.UseDirectory(Directory.CreateTempSubdirectory("cptlab-cache-").FullName);
        var dir = Fixtures.RunDir();
        var logs = new List<string>();
        Trainer.Run(AutoConfig(), new ArrayData(16, 64), dir, resume: false, new TrainerHooks { Log = logs.Add });

        var expected = ComputePrecision.Choose(Fixtures.Tiny, Workload.Training, tokens: 32, seqLen: 16); // cached now: the same answer
        var recorded = Resolved(Path.Combine(dir, Trainer.ConfigFileName));
        Assert.Equal(expected.Name, recorded["dtype"]!.GetValue<string>());
        Assert.Equal(1, recorded["threads"]!.GetValue<int>());
        Assert.StartsWith("auto: ", recorded["dtype_reason"]!.GetValue<string>());
        if (!CpuInfo.Current.HasNativeBf16Matmul) Assert.Equal("float32", expected.Name);
        Assert.Contains(logs, l => l.StartsWith($"compute {expected.Name} (auto: ", StringComparison.Ordinal) && l.Contains("thread(s)"));
        // Every checkpoint carries the same record, and the run's config.json reads back with it.
        foreach (var (_, ckpt) in TrainingCheckpoint.List(Path.Combine(dir, Trainer.CheckpointsDir)))
            Assert.True(JsonNode.DeepEquals(recorded, Resolved(Path.Combine(ckpt, TrainingCheckpoint.StateFile))));
        Assert.Equal(expected.Name, TrainConfig.Load(Path.Combine(dir, Trainer.ConfigFileName)).Resolved!.Dtype);
    }

    [Fact]
    public void A_resumed_run_keeps_its_recorded_dtype_where_this_machine_would_choose_another()
    {
        using var cache = MachineCache.UseDirectory(Directory.CreateTempSubdirectory("cptlab-cache-").FullName);
        TorchRuntime.Initialise(1);
        // The run "was started on another machine": it recorded the dtype this one would not choose.
        var here = ComputePrecision.Choose(Fixtures.Tiny, Workload.Training, tokens: 32, seqLen: 16);
        var other = here.Dtype == ScalarType.Float32 ? "bfloat16" : "float32";
        var auto = AutoConfig();
        var elsewhere = auto with { Resolved = new RunNumerics(other, 1, "auto: measured on another machine", "1 asked for") };

        var straight = Fixtures.RunDir();
        Trainer.Run(elsewhere, new ArrayData(16, 64), straight, resume: false);

        var dir = Fixtures.RunDir();
        Trainer.Run(elsewhere, new ArrayData(16, 64), dir, resume: false, new TrainerHooks { StopAfter = s => s == 8 });
        var logs = new List<string>();
        // Resumed here, from a config that says only "auto": the checkpoint's record wins.
        Trainer.Run(auto, new ArrayData(16, 64), dir, resume: true, new TrainerHooks { Log = logs.Add });

        Assert.Contains(logs, l => l.Contains($"this machine would compute in {here.Name}") && l.Contains($"the run keeps {other}"));
        Assert.Contains(logs, l => l.StartsWith($"compute {other} ", StringComparison.Ordinal));
        Assert.Equal(Fixtures.FinalWeights(straight), Fixtures.FinalWeights(dir));
    }

    [Fact]
    public void Mfu_never_exceeds_one_when_the_cached_peak_was_measured_low()
    {
        using var cache = MachineCache.UseDirectory(Directory.CreateTempSubdirectory("cptlab-cache-").FullName);
        TorchRuntime.Initialise(1);
        // A peak "measured" far too low (as at start-up beside another job): 1 MFLOP/s, recorded as quiet so it is used.
        MatmulRate.Save(new MatmulMeasurement(ScalarType.Float32, 1, 1e6, 256, 0.0, DateTimeOffset.UtcNow, "measured"));
        var dir = Fixtures.RunDir();
        var progress = new List<TrainProgress>();
        Trainer.Run(Fixtures.Config() with { MeasurePeakFlops = true }, new ArrayData(16, 64), dir, resume: false,
            new TrainerHooks { Progress = new SyncProgress<TrainProgress>(progress.Add) });

        var mfus = File.ReadLines(Path.Combine(dir, Trainer.MetricsFileName)).Select(l => JsonNode.Parse(l)!["mfu"]).Where(m => m is not null).Select(m => m!.GetValue<double>()).ToList();
        Assert.Equal(progress.Count, mfus.Count);
        Assert.All(mfus, m => Assert.InRange(m, 0, 1.0));
        Assert.Equal(1.0, mfus[0], 6); // the first step beat the planted peak, which became that step's rate
        // The raised peak is remembered: at least the fastest step's model FLOP/s.
        double flopsPerToken = ModelMath.TrainingFlopsPerToken(Fixtures.Tiny, 16);
        var peak = MatmulRate.Get(ScalarType.Float32);
        Assert.True(peak.Flops >= progress.Max(p => p.TokensPerSecond) * flopsPerToken * 0.999, $"peak {peak.Flops:E3}");
    }

    [Fact]
    public void A_checkpoint_from_before_the_record_resumes_from_an_auto_config_in_its_own_dtype()
    {
        using var cache = MachineCache.UseDirectory(Directory.CreateTempSubdirectory("cptlab-cache-").FullName);
        var auto = AutoConfig();
        var explicitDtype = auto with { ComputeDtype = "float32" };
        var straight = Fixtures.RunDir();
        Trainer.Run(explicitDtype, new ArrayData(16, 64), straight, resume: false);

        // As an older CptLab left a run: explicit dtype, no "resolved" record (manifest rewritten to match).
        var dir = Fixtures.RunDir();
        Trainer.Run(explicitDtype, new ArrayData(16, 64), dir, resume: false, new TrainerHooks { StopAfter = s => s == 8 });
        var (_, ckpt) = TrainingCheckpoint.List(Path.Combine(dir, Trainer.CheckpointsDir))[^1];
        var statePath = Path.Combine(ckpt, TrainingCheckpoint.StateFile);
        var state = JsonNode.Parse(File.ReadAllText(statePath))!;
        Assert.True(((JsonObject)state["config"]!).Remove("resolved"));
        File.WriteAllText(statePath, state.ToJsonString());
        var manifestPath = Path.Combine(ckpt, TrainingCheckpoint.ManifestFile);
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!;
        manifest["files"]![TrainingCheckpoint.StateFile] = new JsonObject
        {
            ["bytes"] = new FileInfo(statePath).Length,
            ["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(statePath))),
        };
        File.WriteAllText(manifestPath, manifest.ToJsonString());

        // Resumed in-process from a config that says only "auto" (as the demo does): the checkpoint's dtype is taken.
        Trainer.Run(auto, new ArrayData(16, 64), dir, resume: true);
        Assert.Equal(Fixtures.FinalWeights(straight), Fixtures.FinalWeights(dir));
    }
}
