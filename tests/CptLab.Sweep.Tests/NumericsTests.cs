using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Sweep;
using CptLab.Training;

namespace CptLab.Sweep.Tests;

/// <summary>A sweep's threads never oversubscribe the cores, and all of its runs compute in one dtype.</summary>
[Collection(SweepCollection.Name)]
public class NumericsTests(SweepFixture fx)
{
    string NewDir() => Path.Combine(fx.NewDir("sweepdir-"), "sweep");

    [Fact]
    public void More_workers_than_cores_run_as_many_at_a_time_as_there_are_cores()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(2, 3, "").Replace("workers: 2", "workers: 3")));
        var exec = new FakeExecutor();
        var logs = new List<string>();
        var summary = SweepRunner.Run(spec, NewDir(), new RunnerOptions { Executor = exec, Cores = 2, Log = l => { lock (logs) logs.Add(l); } });
        Assert.Equal(6, summary.Done);
        Assert.Contains(logs, l => l.Contains("3 workers asked for, but only 2 core(s)"));
        Assert.Contains(logs, l => l.StartsWith("2 worker(s) on 2 core(s)"));
        Assert.All(exec.Numerics, n => Assert.Equal(1, n.Threads)); // 2 runs × 1 thread on 2 cores, never 3 × 1
    }

    [Fact]
    public void Every_run_computes_in_the_sweeps_one_recorded_dtype()
    {
        using var cache = MachineCache.UseDirectory(Directory.CreateTempSubdirectory("cptlab-cache-").FullName);
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(2, 2)));
        var dir = NewDir();
        var logs = new List<string>();
        TorchRuntime.Initialise(1);
        var here = ComputePrecision.Choose(LlamaConfig.Load(Path.Combine(fx.BaseCheckpoint, HfCheckpoint.ConfigFile)), Workload.Training, tokens: 4 * 32, seqLen: 32);

        // A sweep begun on a machine that chose the other dtype: its runs so far were made in that one.
        var other = here.Name == "float32" ? "bfloat16" : "float32";
        using (var store = SweepStore.Open(dir)) store.SetMeta(SweepRunner.ComputeDtypeKey, other);
        var exec = new FakeExecutor();
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec, Log = l => { lock (logs) logs.Add(l); } });
        Assert.All(exec.Numerics, n => Assert.Equal(other, n.Dtype));
        Assert.Contains(logs, l => l.Contains($"this machine would compute in {here.Name}") && l.Contains($"the sweep keeps {other}"));

        // A new sweep records this machine's choice and gives it to every run, as an explicit dtype.
        var fresh = NewDir();
        var exec2 = new FakeExecutor();
        SweepRunner.Run(spec, fresh, new RunnerOptions { Executor = exec2 });
        Assert.All(exec2.Numerics, n => Assert.Equal(here.Name, n.Dtype));
        using var s2 = SweepStore.Open(fresh, create: false);
        Assert.Equal(here.Name, s2.GetMeta(SweepRunner.ComputeDtypeKey));
    }

    [Fact]
    public void A_sweep_from_before_the_record_keeps_the_dtype_its_runs_were_made_in()
    {
        using var cache = MachineCache.UseDirectory(Directory.CreateTempSubdirectory("cptlab-cache-").FullName);
        var dir = NewDir();
        SweepRunner.Run(SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(2, 2))), dir, new RunnerOptions { Executor = new FakeExecutor() });
        TorchRuntime.Initialise(1);
        var here = ComputePrecision.Choose(LlamaConfig.Load(Path.Combine(fx.BaseCheckpoint, HfCheckpoint.ConfigFile)), Workload.Training, tokens: 4 * 32, seqLen: 32);
        var other = here.Name == "float32" ? "bfloat16" : "float32";
        // As an older CptLab left it: no recorded dtype, and a run whose trainer config names the dtype explicitly.
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, SweepStore.FileName)};Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "DELETE FROM meta WHERE key = $k";
            cmd.Parameters.AddWithValue("$k", SweepRunner.ComputeDtypeKey);
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }
        using (var store = SweepStore.Open(dir, create: false))
        {
            var run = store.Runs()[0];
            var old = TrainConfig.Load(Path.Combine(run.RunDir, SweepRunner.RunConfigFileName)) with { ComputeDtype = other };
            File.WriteAllText(Path.Combine(run.RunDir, Trainer.ConfigFileName), old.ToJson().ToJsonString());
        }
        // The grid grows (allowed on resume); the new runs must be made in the old runs' dtype.
        var exec = new FakeExecutor();
        SweepRunner.Run(SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(3, 2))), dir, new RunnerOptions { Executor = exec });
        Assert.NotEmpty(exec.Numerics);
        Assert.All(exec.Numerics, n => Assert.Equal(other, n.Dtype));
        using var after = SweepStore.Open(dir, create: false);
        Assert.Equal(other, after.GetMeta(SweepRunner.ComputeDtypeKey));
    }
}
