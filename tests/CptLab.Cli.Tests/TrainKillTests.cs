using System.Diagnostics;
using CptLab.Model;
using CptLab.Training;
using CptLab.Training.Tests;

namespace CptLab.Cli.Tests;

/// <summary>`cptlab train` killed with SIGKILL mid-run, then resumed, ends with the weights of an uninterrupted run.</summary>
public class TrainKillTests
{
    [Fact]
    public void Kill_9_then_resume_gives_bitwise_identical_final_weights()
    {
        var (dir, blend, modelConfig) = PrepareRunFolder("cptlab-kill-");
        var config = Path.Combine(dir, "train.yaml");
        File.WriteAllText(config, $"""
            model:
              config: {modelConfig}
            data:
              mixture: {blend}
              seq_len: 32
            optimizer:
              lr: 3e-3
            schedule:
              kind: cosine
              warmup_tokens: 1280
            batch:
              micro_batch_size: 2
              global_batch_tokens: 128
            budget_tokens: 51200
            eval:
              every_steps: 100
              max_sequences: 4
            checkpoint:
              every_steps: 40
              keep_last: 3
            threads: 1
            measure_peak_flops: false
            """);

        var straight = Path.Combine(dir, "straight");
        Assert.Equal(0, CliProcess.Start("train", "--config", config, "--out", straight).WaitForExitOrKill(TimeSpan.FromMinutes(3)));

        var killed = Path.Combine(dir, "killed");
        using (var child = CliProcess.Start("train", "--config", config, "--out", killed))
        {
            var checkpoints = Path.Combine(killed, Trainer.CheckpointsDir);
            var sw = Stopwatch.StartNew();
            while (TrainingCheckpoint.List(checkpoints).Count < 2 && !child.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(20);
            Assert.False(child.HasExited, "the run finished before it could be killed; make it longer");
            child.Kill(entireProcessTree: true); // SIGKILL: no clean-up code runs
            child.WaitForExit();
        }
        long lastCheckpoint = TrainingCheckpoint.List(Path.Combine(killed, Trainer.CheckpointsDir))[^1].Step;
        Assert.InRange(lastCheckpoint, 40, 360);

        Assert.Equal(0, CliProcess.Start("train", "--resume", killed).WaitForExitOrKill(TimeSpan.FromMinutes(3)));
        var a = File.ReadAllBytes(Path.Combine(straight, Trainer.FinalDir, HfCheckpoint.SingleFile));
        var b = File.ReadAllBytes(Path.Combine(killed, Trainer.FinalDir, HfCheckpoint.SingleFile));
        Assert.True(a.AsSpan().SequenceEqual(b), "final weights differ after kill -9 and resume");
    }

    [Fact]
    public void Sigint_checkpoints_and_exits_130()
    {
        var (dir, blend, modelConfig) = PrepareRunFolder("cptlab-sigint-");
        var config = Path.Combine(dir, "train.yaml");
        File.WriteAllText(config, $"model: {{config: {modelConfig}}}\ndata: {{mixture: {blend}, seq_len: 32}}\n" +
            "batch: {micro_batch_size: 2, global_batch_tokens: 128}\nbudget_tokens: 51200\ncheckpoint: {every_steps: 1000}\n" +
            "eval: {every_steps: 1000, max_sequences: 2}\nthreads: 1\nmeasure_peak_flops: false\n");
        var run = Path.Combine(dir, "run");
        using var child = CliProcess.Start("train", "--config", config, "--out", run);
        var metrics = Path.Combine(run, Trainer.MetricsFileName);
        var sw = Stopwatch.StartNew();
        while ((!File.Exists(metrics) || File.ReadLines(metrics).Count() < 20) && !child.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(20);
        Assert.False(child.HasExited, "the run ended before the signal");
        using (var kill = Process.Start("kill", ["-INT", child.Id.ToString()])) kill.WaitForExit();
        Assert.True(child.WaitForExit(TimeSpan.FromMinutes(1)), "cptlab train did not stop after SIGINT");
        Assert.Equal(130, child.ExitCode);
        var checkpoints = TrainingCheckpoint.List(Path.Combine(run, Trainer.CheckpointsDir));
        Assert.Single(checkpoints); // written on the signal: every_steps is 1000
        Assert.InRange(checkpoints[0].Step, 20, 399);
        TrainingCheckpoint.Verify(checkpoints[0].Dir);
    }

    /// <summary>A temp folder with a small real blend (400 sequences of 32 tokens) and a debug-size model config for it.</summary>
    static (string Dir, string Blend, string ModelConfig) PrepareRunFolder(string prefix)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        var (blend, vocab) = TinyBlend.Create(Path.Combine(dir, "data"), almr: 0.3, seqLen: 32, tokens: 128 * 400);
        var modelConfig = Path.Combine(dir, "model.json");
        (Flavors.Get("debug") with { VocabSize = vocab, MaxPositionEmbeddings = 64 }).Save(modelConfig);
        return (dir, blend, modelConfig);
    }
}
