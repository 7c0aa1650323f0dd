using System.Diagnostics;
using System.Text;
using CptLab.Sweep;
using Xunit.Abstractions;

namespace CptLab.Sweep.Tests;

/// <summary>
/// The runner for real: each run a `cptlab train` child process on the tiny data and the debug-size model. A
/// child is killed with SIGKILL mid-run, then the runner itself (its other child left orphaned), and a new
/// runner finishes the sweep. The database must hold each cell exactly once, every result of the first runner
/// untouched, and the same numbers as a sweep that was never interrupted (runs resume bit-exactly from their
/// checkpoints, with the same thread count).
/// </summary>
[Collection(SweepCollection.Name)]
public class KillResumeTests(SweepFixture fx, ITestOutputHelper output)
{
    const int Steps = 160;

    string Spec() => fx.WriteSpec($"""
        grid:
          almr: [0.2, 0.6]
          lr: [3e-4, 3e-3]
        tokens_per_run: {Steps * 128}
        train:
          batch: {"{"}micro_batch_size: 4, global_batch_tokens: 128{"}"}
          schedule: {"{"}kind: cosine, warmup_tokens: 1280{"}"}
          eval: {"{"}every_steps: 40, max_sequences: 4{"}"}
          checkpoint: {"{"}every_steps: 10, keep_last: 2, keep_best: false{"}"}
        workers: 2
        cores: 2
        """, "kill");

    static IRunExecutor Executor() => new ProcessRunExecutor(CptLabCommand.Current(AppContext.BaseDirectory));

    [Fact]
    public void Killing_a_child_run_and_the_runner_then_resuming_loses_and_duplicates_nothing()
    {
        var specPath = Spec();
        var spec = SweepSpec.Load(specPath);
        var root = fx.NewDir("kill-");
        var reference = Path.Combine(root, "reference");
        var dir = Path.Combine(root, "killed");
        var runsDir = Path.Combine(dir, "runs");
        var sw = Stopwatch.StartNew();

        // The same sweep, never interrupted.
        var refSummary = SweepRunner.Run(spec, reference, new RunnerOptions { Executor = Executor(), Log = output.WriteLine });
        Assert.Equal(4, refSummary.Done);
        output.WriteLine($"reference sweep: {sw.Elapsed.TotalSeconds:F1} s");

        var log = new StringBuilder();
        Process? runner = null;
        try
        {
            runner = StartRunner(specPath, dir, log);

            // 1. SIGKILL a child that has written a checkpoint and is still training.
            var (childPid, killedRun) = WaitFor("a child past its first checkpoint", () => ChildMidRun(runsDir, dir));
            Process.GetProcessById(childPid).Kill();
            output.WriteLine($"killed child {childPid} of {killedRun}");

            // 2. Once the runner has resumed that run, and one run is recorded, SIGKILL the runner while a child trains.
            Dictionary<string, (int Attempts, double[] Final)> doneBefore = [];
            WaitFor<(int, string)>("the killed run resumed, a run done and another mid-run", () =>
            {
                if (!File.Exists(Path.Combine(dir, SweepStore.FileName))) return null;
                using var store = SweepStore.Open(dir, create: false);
                if (store.Attempts(killedRun).Count < 2 || store.Runs(RunStatus.Done).Count < 1) return null;
                if (ChildMidRun(runsDir, dir) is not { } mid) return null;
                doneBefore = store.Runs(RunStatus.Done).ToDictionary(r => r.Id, r => (r.Attempts, store.FinalLosses(r.Id).Select(l => l.Loss).ToArray()));
                return mid;
            });
            runner.Kill(); // the runner only: its children live on as orphans
            runner.WaitForExit();
            var orphans = OrphanRuns.Find(runsDir);
            output.WriteLine($"killed the runner with {doneBefore.Count} run(s) done; orphans left: {orphans.Count}");
            Assert.NotEmpty(orphans);

            // 3. A new runner: stops the orphans, resumes the interrupted runs, skips the finished ones.
            var summary = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = Executor(), Log = output.WriteLine });
            Assert.Equal(4, summary.Done);
            Assert.Empty(OrphanRuns.Find(runsDir));

            using var killed = SweepStore.Open(dir, create: false);
            using var clean = SweepStore.Open(reference, create: false);
            var runs = killed.Runs();
            Assert.Equal(4, runs.Count);
            Assert.Equal(4, runs.Select(r => (r.Almr, r.Lr, r.Seed)).Distinct().Count());
            Assert.All(runs, r => Assert.Equal(RunStatus.Done, r.Status));
            Assert.Equal(clean.Runs().Select(r => r.Id), runs.Select(r => r.Id));
            foreach (var r in runs)
            {
                // Same curve (every validation once, no step logged twice) and the same final losses, to the bit.
                var a = killed.Curve(r.Id).Select(c => (c.Step, c.Tokens, c.Source, c.Loss)).ToList();
                var b = clean.Curve(r.Id).Select(c => (c.Step, c.Tokens, c.Source, c.Loss)).ToList();
                Assert.Equal(2 * (Steps / 40), b.Count);
                Assert.Equal(b, a);
                Assert.Equal(clean.FinalLosses(r.Id).Select(l => l.Loss), killed.FinalLosses(r.Id).Select(l => l.Loss));
                Assert.Equal(clean.FinalByLanguage(r.Id), killed.FinalByLanguage(r.Id));
                Assert.Equal((long)Steps, r.Steps);
            }
            // Results recorded before the runner died were kept as they were, and not run again.
            foreach (var (id, before) in doneBefore)
            {
                Assert.Equal(before.Attempts, killed.Run(id)!.Attempts);
                Assert.Equal(before.Final, killed.FinalLosses(id).Select(l => l.Loss).ToArray());
            }
            // The killed child's run resumed from a checkpoint, not from the start.
            Assert.Contains(killed.Attempts(killedRun), a => a.Attempt > 1 && a.ResumedFromStep > 0);
            Assert.Contains(killed.Attempts(killedRun), a => a.ExitCode == 137);
            output.WriteLine($"attempts: {string.Join("; ", killed.Attempts().Select(a => $"{a.RunId}#{a.Attempt} from {a.ResumedFromStep} exit {a.ExitCode}"))}");
            output.WriteLine($"total {sw.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            if (runner is { HasExited: false }) runner.Kill(entireProcessTree: true);
            OrphanRuns.KillAll(runsDir);
            output.WriteLine(log.ToString());
        }
    }

    [Fact]
    public void Ctrl_c_stops_the_children_and_leaves_their_runs_to_resume()
    {
        var specPath = Spec();
        var dir = Path.Combine(fx.NewDir("sigint-"), "sweep");
        var runsDir = Path.Combine(dir, "runs");
        var log = new StringBuilder();
        var runner = StartRunner(specPath, dir, log);
        try
        {
            WaitFor("a child past its first checkpoint", () => ChildMidRun(runsDir, dir));
            Assert.Equal(0, Kill(runner.Id, SigInt)); // what Ctrl-C sends
            Assert.True(runner.WaitForExit(60_000), "the runner did not stop after SIGINT");
            runner.WaitForExit();
            output.WriteLine(log.ToString());
            Assert.Equal(130, runner.ExitCode);
            Assert.Contains("cancelled; run the same command again to resume", log.ToString());
            Assert.Empty(OrphanRuns.Find(runsDir)); // it stopped its children itself

            using (var store = SweepStore.Open(dir, create: false))
            {
                var runs = store.Runs();
                Assert.DoesNotContain(runs, r => r.Status == RunStatus.Running);
                Assert.Contains(runs, r => r.Status == RunStatus.Pending && r.Attempts > 0); // interrupted, to resume
                Assert.All(store.Attempts(), a => Assert.NotNull(a.ExitCode));      // every child's end was recorded
            }
            var summary = SweepRunner.Run(SweepSpec.Load(specPath), dir, new RunnerOptions { Executor = Executor() });
            Assert.Equal(4, summary.Done);
        }
        finally
        {
            if (!runner.HasExited) runner.Kill(entireProcessTree: true);
            OrphanRuns.KillAll(runsDir);
        }
    }

    const int SigInt = 2;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    /// <summary>A training child of the sweep whose run folder holds a checkpoint (and no final model yet): its pid and run id.</summary>
    static (int Pid, string Run)? ChildMidRun(string runsDir, string sweepDir)
    {
        foreach (var pid in OrphanRuns.Find(runsDir))
        {
            string cmdline;
            try { cmdline = File.ReadAllText($"/proc/{pid}/cmdline"); } catch (IOException) { continue; }
            var arg = cmdline.Split('\0').FirstOrDefault(a => a.StartsWith(runsDir + "/", StringComparison.Ordinal));
            if (arg is null) continue;
            var id = Path.GetRelativePath(runsDir, arg).Split('/')[0];
            var checkpoints = Path.Combine(runsDir, id, "checkpoints");
            if (Directory.Exists(checkpoints) && Directory.GetDirectories(checkpoints, "step-*").Length > 0 && !Directory.Exists(Path.Combine(runsDir, id, "final")))
                return (pid, id);
        }
        return null;
    }

    static Process StartRunner(string specPath, string dir, StringBuilder log)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "cptlab.dll"), "sweep", "run", "--spec", specPath, "--dir", dir }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine("stderr: " + e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    static T WaitFor<T>(string what, Func<T?> probe, int seconds = 120) where T : struct
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (probe() is { } v) return v;
            Thread.Sleep(25);
        }
        throw new TimeoutException($"waited {seconds} s for {what}");
    }
}
