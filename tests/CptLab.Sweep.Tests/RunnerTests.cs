using CptLab.Core;
using CptLab.Laws;
using CptLab.Sweep;
using Xunit.Abstractions;

namespace CptLab.Sweep.Tests;

/// <summary>
/// The runner's bookkeeping with instant fake runs (no training): what it skips, resumes, retries and records,
/// and the adaptive loop. The real processes are in <see cref="KillResumeTests"/>.
/// </summary>
[Collection(SweepCollection.Name)]
public class RunnerTests(SweepFixture fx, ITestOutputHelper output)
{
    internal const string Train = """
        train:
          batch: {micro_batch_size: 4, global_batch_tokens: 128}
          eval: {every_steps: 8, max_sequences: 4}
          checkpoint: {every_steps: 8, keep_last: 2}
        """;

    internal static string Grid(int almrs, int lrs, string extra = "") => $"""
        grid:
          almr: [{string.Join(", ", Enumerable.Range(0, almrs).Select(i => (0.9 * i / (almrs - 1)).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}]
          lr: [{string.Join(", ", Enumerable.Range(0, lrs).Select(j => Math.Pow(10, -5 + 2.0 * j / (lrs - 1)).ToString("0.####e0", System.Globalization.CultureInfo.InvariantCulture)))}]
        tokens_per_run: 1024
        {Train}
        objective: {"{"}kind: weighted, target_weight: 1, forgetting_weight: 2{"}"}
        workers: 2
        cores: 2
        fit: {"{"}bootstrap: 40, seed: 1{"}"}
        {extra}
        """;

    string NewDir() => Path.Combine(fx.NewDir("sweepdir-"), "sweep");

    [Fact]
    public void New_runs_must_have_the_config_of_the_earlier_runs_and_an_old_default_can_be_written_out()
    {
        var dir = NewDir();
        SweepRunner.Run(SweepSpec.Load(fx.WriteSpec(Grid(2, 2))), dir, new RunnerOptions { Executor = new FakeExecutor() });
        // As if the four runs had been made by a CptLab whose default was decay_embeddings: false.
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, SweepStore.FileName)};Pooling=False"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = """UPDATE runs SET config = replace(config, '"decay_embeddings": true', '"decay_embeddings": false')""";
            Assert.Equal(4, cmd.ExecuteNonQuery());
        }

        // The same spec, one more LR: its new runs would get today's default. Refused, naming the key and the fix.
        var grown = fx.WriteSpec(Grid(2, 3));
        var e = Assert.Throws<CptLabException>(() => SweepRunner.Run(SweepSpec.Load(grown), dir, new RunnerOptions { Executor = new FakeExecutor() }));
        output.WriteLine(e.Message);
        Assert.Contains("'optimizer.decay_embeddings' = true", e.Message);
        Assert.Contains("were made with false", e.Message);
        Assert.Contains("set train.optimizer.decay_embeddings: false", e.Message);

        // The old default written out: the train: section (so the fingerprint) changed, but it makes the earlier runs' config.
        var logs = new List<string>();
        var kept = fx.WriteSpec(Grid(2, 3).Replace("train:\n", "train:\n  optimizer: {decay_embeddings: false}\n"));
        var summary = SweepRunner.Run(SweepSpec.Load(kept), dir, new RunnerOptions { Executor = new FakeExecutor(), Log = logs.Add });
        Assert.Equal(6, summary.Done);
        Assert.Contains(logs, l => l.Contains("train: section changed, but it makes the config the earlier runs"));
        using (var store = SweepStore.Open(dir, create: false))
            foreach (var run in store.Runs())
                Assert.False(CptLab.Training.TrainConfig.FromJson((System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(run.Config)!, run.Id, "/").DecayEmbeddings, run.Id);

        // A train: change that makes another config is still refused, with the key named.
        var other = fx.WriteSpec(Grid(2, 3).Replace("train:\n", "train:\n  optimizer: {decay_embeddings: false, weight_decay: 0.05}\n"));
        var e2 = Assert.Throws<CptLabException>(() => SweepRunner.Run(SweepSpec.Load(other), dir, new RunnerOptions { Executor = new FakeExecutor() }));
        Assert.Contains("'optimizer.weight_decay' = 0.05", e2.Message);
    }

    [Fact]
    public void The_fake_surface_noise_is_the_same_in_every_process()
    {
        // Known answers from an independent implementation of the same mix (Python integers); HashCode.Combine,
        // used before, gave other values in every process.
        Assert.Equal(789597345, Surface.CellSeed(0.3, Math.Log10(3e-4), 0));
        Assert.Equal(1950617219, Surface.CellSeed(0.7, -3.0, 2));
    }

    [Fact]
    public void A_cancelled_sweep_resumes_running_each_cell_exactly_once()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(Grid(3, 3)));
        var dir = NewDir();
        using var cts = new CancellationTokenSource();
        var exec = new FakeExecutor();
        var started = 0;
        exec.BeforeRun = _ => { if (Interlocked.Increment(ref started) == 4) cts.Cancel(); };
        var first = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec }, cts.Token);
        Assert.True(first.Cancelled);
        Assert.InRange(first.Done, 2, 4);
        Assert.Equal(9, first.RunsUsed);

        var second = new FakeExecutor();
        var summary = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = second });
        Assert.Equal(9, summary.Done);
        // Only what was not finished ran again: together the two runners finished each cell once.
        var finishedFirst = first.Done;
        Assert.Equal(9 - finishedFirst, second.Calls.Count);
        using var store = SweepStore.Open(dir, create: false);
        var runs = store.Runs();
        Assert.Equal(9, runs.Count);
        Assert.Equal(9, runs.Select(r => (r.Almr, r.Lr)).Distinct().Count());
        Assert.All(runs, r => Assert.Equal(RunStatus.Done, r.Status));
        Assert.All(runs, r => Assert.Equal(8, store.Curve(r.Id).Count)); // 4 validations × 2 sources, no duplicates
        // A third runner has nothing to do.
        var third = new FakeExecutor();
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = third });
        Assert.Empty(third.Calls);
    }

    [Fact]
    public void Failed_interrupted_and_diverged_runs_are_recorded_as_such()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(Grid(2, 2, "max_attempts: 2")));
        var dir = NewDir();
        var ids = spec.Almrs.SelectMany(a => spec.Lrs.Select(lr => SweepRunner.RunId(a, lr, 0))).ToArray();
        var exec = new FakeExecutor();
        exec.Script[ids[0]] = new Queue<ExecKind>([ExecKind.Failed]);
        exec.Script[ids[1]] = new Queue<ExecKind>([ExecKind.Interrupted]);                        // resumed once, then finishes
        exec.Script[ids[2]] = new Queue<ExecKind>([ExecKind.Interrupted, ExecKind.Interrupted]); // gives up at max_attempts
        exec.Diverge.Add(ids[3]);
        var summary = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec });
        Assert.Equal(1, summary.Done);
        Assert.Equal(3, summary.Failed);

        using (var store = SweepStore.Open(dir, create: false))
        {
            Assert.Contains("scripted failure", store.Run(ids[0])!.Error);
            Assert.Equal(RunStatus.Done, store.Run(ids[1])!.Status);
            Assert.Equal(2, store.Run(ids[1])!.Attempts);
            Assert.Equal([137, 0], store.Attempts(ids[1]).Select(a => a.ExitCode ?? -1));
            Assert.Contains("interrupted 2 times", store.Run(ids[2])!.Error);
            Assert.Contains("diverged", store.Run(ids[3])!.Error);
            Assert.True(double.IsNaN(store.FinalByLanguage(ids[3])["zh"])); // stored as NULL, read back as NaN
        }

        // A resumed sweep skips failed runs; --retry-failed runs them again.
        var again = new FakeExecutor();
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = again });
        Assert.Empty(again.Calls);
        var retry = new FakeExecutor();
        var retried = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = retry, RetryFailed = true });
        Assert.Equal(3, retry.Calls.Count);
        Assert.Equal(4, retried.Done);
    }

    [Fact]
    public void A_changed_spec_is_refused_but_a_grown_grid_is_run()
    {
        var dir = NewDir();
        SweepRunner.Run(SweepSpec.Load(fx.WriteSpec(Grid(2, 2))), dir, new RunnerOptions { Executor = new FakeExecutor() });
        var grown = SweepSpec.Load(fx.WriteSpec(Grid(2, 3)));
        var exec = new FakeExecutor();
        var summary = SweepRunner.Run(grown, dir, new RunnerOptions { Executor = exec });
        Assert.Equal(6, summary.Done);
        // 2 LRs → 3 LRs log-spaced over the same range: only the middle LR is new (the ends are the same values).
        Assert.Equal(2, exec.Calls.Count);

        var changed = SweepSpec.Load(fx.WriteSpec(Grid(2, 2).Replace("tokens_per_run: 1024", "tokens_per_run: 2048")));
        var e = Assert.Throws<CptLabException>(() => SweepRunner.Run(changed, dir, new RunnerOptions { Executor = new FakeExecutor() }));
        Assert.Contains("different spec", e.Message);
    }

    [Fact]
    public void Only_one_runner_works_on_a_sweep()
    {
        var dir = NewDir();
        using var held = RunnerLock.Acquire(dir);
        Assert.True(RunnerLock.IsHeld(dir));
        var e = Assert.Throws<CptLabException>(() => SweepRunner.Run(SweepSpec.Load(fx.WriteSpec(Grid(2, 2))), dir, new RunnerOptions { Executor = new FakeExecutor() }));
        Assert.Contains("another runner", e.Message);
    }

    [Fact]
    public void Adaptive_mode_reaches_the_grid_optimum_with_fewer_runs()
    {
        const double tolR = 0.05, tolX = 0.1;
        var spec = SweepSpec.Load(fx.WriteSpec(Grid(7, 7, $"adaptive: {{enabled: true, almr_tolerance: {tolR}, log10_lr_tolerance: {tolX}}}")));
        var dir = NewDir();
        var exec = new FakeExecutor();
        var summary = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec, Log = output.WriteLine });
        output.WriteLine($"adaptive: {summary.RunsUsed} of {summary.GridSize} runs; {summary.StopReason}");
        Assert.True(summary.RunsUsed < summary.GridSize, $"{summary.RunsUsed} runs of {summary.GridSize}");
        Assert.StartsWith("no unrun cell is likely to beat the best run", summary.StopReason);
        Assert.Equal(summary.RunsUsed, exec.Calls.Distinct().Count());
        Assert.Equal(summary.RunsUsed, exec.Calls.Count);

        var fit = SweepFit.Run(dir, bootstrap: 40).Summary.Optimum;
        var truth = Surface.TrueOptimum(spec.Objective, 0, 0.9, -5, -3);
        output.WriteLine($"adaptive optimum r*={fit.Almr:0.000} x*={fit.Log10Lr:0.000}; truth r*={truth.R:0.000} x*={truth.X:0.000}");
        Assert.InRange(fit.Almr - truth.R, -tolR, tolR);
        Assert.InRange(fit.Log10Lr - truth.X, -tolX, tolX);
        Assert.Contains($"{summary.RunsUsed} of {summary.GridSize} runs", File.ReadAllText(Path.Combine(dir, SweepReport.MarkdownFileName)));

        // Resuming a finished adaptive sweep runs nothing more.
        var again = new FakeExecutor();
        var resumed = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = again });
        Assert.Empty(again.Calls);
        Assert.Equal(summary.RunsUsed, resumed.RunsUsed);
    }
}
