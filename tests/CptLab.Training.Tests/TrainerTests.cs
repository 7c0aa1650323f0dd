using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using CptLab.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CptLab.Training.Tests;

public class TrainerTests
{
    [Fact]
    public void Tiny_model_overfits_a_fixed_batch()
    {
        var rng = new Random(5);
        var batch = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 17).Select(_ => rng.Next(64)).ToArray()).ToArray();
        var config = Fixtures.Config(micro: 2, globalTokens: 32, budget: 32 * 150) with
        {
            Lr = 1e-2, WarmupTokens = 0, Schedule = ScheduleKind.Constant, WeightDecay = 0, EvalEverySteps = 1000, CheckpointEverySteps = 1000,
        };
        var losses = new List<double>();
        var result = Trainer.Run(config, new FixedBatch(batch), Fixtures.RunDir(), resume: false,
            new TrainerHooks { Progress = new SyncProgress<TrainProgress>(p => losses.Add(p.Loss)) });
        Assert.True(losses[0] > 3.5, $"first loss {losses[0]:F3} should be near ln 64 = 4.16");
        Assert.True(losses[^1] < 0.1, $"final loss {losses[^1]:F4}");
        Assert.True(result.Validation["train"].Loss < 0.1);
    }

    [Fact]
    public void Four_micro_batches_of_one_give_the_gradients_of_one_batch_of_four()
    {
        TorchRuntime.Initialise(1);
        Dictionary<string, Tensor> Gradients(int micro)
        {
            var config = Fixtures.Config(micro: micro, globalTokens: 64) with { ModelConfigPath = Fixtures.ModelConfig() };
            using var run = new RunState(config, ScalarType.Float32);
            run.InitialiseWeights(config);
            run.ForwardBackward(new NextTokenObjective(new ArrayData(16, 64), config), poison: false);
            return run.Gradients.ToDictionary(g => g.Name, g => g.Grad.clone().DetachFromDisposeScope());
        }
        var accumulated = Gradients(1);
        var single = Gradients(4);
        Assert.Equal(4, (Fixtures.Config(micro: 1, globalTokens: 64)).AccumulationSteps);
        foreach (var (name, g) in single)
        {
            double diff = (accumulated[name] - g).abs().max().item<float>();
            double scale = g.abs().max().item<float>();
            Assert.True(scale > 0, name);
            Assert.True(diff <= 1e-5 * scale + 1e-9, $"{name}: max diff {diff:E2} of {scale:E2}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Weight_decay_applies_to_weight_matrices_and_to_embeddings_unless_exempted(bool decayEmbeddings)
    {
        TorchRuntime.Initialise(1);
        Assert.True(new TrainConfig().DecayEmbeddings); // the default, as nanoGPT, HF Trainer and Megatron-LM
        var config = Fixtures.Config() with { WeightDecay = 0.1, DecayEmbeddings = decayEmbeddings };
        using var run = new RunState(config, ScalarType.Float32);
        run.InitialiseWeights(config);
        var before = run.Master.named_parameters().ToDictionary(p => p.name, p => p.parameter.clone().DetachFromDisposeScope());
        // Zero gradients: AdamW's step is then only the decoupled decay, p ← p·(1 − lr·wd) = 0.95·p with lr 0.5.
        run.ClipAndUpdate(gradNorm: 0, lr: 0.5);
        var names = before.Keys.ToList();
        Assert.Contains(names, n => n.Contains("embed_tokens"));
        Assert.Contains(names, n => n.Contains("norm"));
        foreach (var (name, p) in run.Master.named_parameters())
        {
            // Norms (the only 1-D parameters of a Llama) are never decayed; the embeddings as configured; every other matrix is.
            bool decayed = !name.Contains("norm") && (decayEmbeddings || !name.Contains("embed_tokens"));
            var expected = decayed ? before[name] * 0.95 : before[name];
            Assert.True(p.allclose(expected, rtol: 1e-6, atol: 0), $"{name}: {(decayed ? "should be decayed" : "should not be decayed")}");
        }
    }

    /// <summary>An uninterrupted run of <paramref name="config"/>, and one stopped (as by a kill) after step 10.</summary>
    static (string Straight, string Interrupted) StraightAndStoppedAfter10(TrainConfig config)
    {
        var straight = Fixtures.RunDir();
        Trainer.Run(config, new ArrayData(16, 64), straight, resume: false);
        var interrupted = Fixtures.RunDir();
        var first = Trainer.Run(config, new ArrayData(16, 64), interrupted, resume: false, new TrainerHooks { StopAfter = s => s == 10 });
        Assert.True(first.Interrupted);
        return (straight, interrupted);
    }

    /// <summary>metrics.jsonl holds each step once, in order, as if never interrupted.</summary>
    static void AssertEachStepLoggedOnce(string runDir, int steps)
    {
        var logged = File.ReadLines(Path.Combine(runDir, Trainer.MetricsFileName)).Select(l => JsonNode.Parse(l)!)
            .Where(n => n["loss"] is not null).Select(n => n["step"]!.GetValue<long>()).ToList();
        Assert.Equal(Enumerable.Range(1, steps).Select(i => (long)i), logged);
    }

    [Fact]
    public void Kill_and_resume_gives_bitwise_identical_weights()
    {
        var config = Fixtures.Config();
        var (straight, interrupted) = StraightAndStoppedAfter10(config);
        Assert.Equal(8, TrainingCheckpoint.List(Path.Combine(interrupted, Trainer.CheckpointsDir))[^1].Step); // steps 9-10 are lost
        var logs = new List<string>();
        var resumed = Trainer.Run(config, new ArrayData(16, 64), interrupted, resume: true, new TrainerHooks { Log = logs.Add });
        Assert.False(resumed.Interrupted);
        Assert.Contains(logs, l => l.StartsWith("resumed from") && l.Contains("step 8"));
        Assert.Equal(Fixtures.FinalWeights(straight), Fixtures.FinalWeights(interrupted));
        AssertEachStepLoggedOnce(interrupted, 12);
    }

    [Fact]
    public void Cancellation_checkpoints_the_current_step_and_resume_stays_exact()
    {
        var config = Fixtures.Config();
        var straight = Fixtures.RunDir();
        Trainer.Run(config, new ArrayData(16, 64), straight, resume: false);

        var dir = Fixtures.RunDir();
        using var cts = new CancellationTokenSource();
        var logs = new List<string>();
        Assert.Throws<OperationCanceledException>(() => Trainer.Run(config, new ArrayData(16, 64), dir, resume: false,
            new TrainerHooks { Progress = new SyncProgress<TrainProgress>(p => { if (p.Step == 6) cts.Cancel(); }), Log = logs.Add }, cts.Token));
        Assert.Equal(6, TrainingCheckpoint.List(Path.Combine(dir, Trainer.CheckpointsDir))[^1].Step); // not a multiple of every_steps (4)
        Assert.Contains(logs, l => l.StartsWith("interrupted at step 6"));
        Trainer.Run(config, new ArrayData(16, 64), dir, resume: true);
        Assert.Equal(Fixtures.FinalWeights(straight), Fixtures.FinalWeights(dir));
    }

    [Fact]
    public void Bf16_training_learns_and_tracks_fp32()
    {
        var config = Fixtures.Config(budget: 64 * 30) with { EvalEverySteps = 30 };
        var r32 = Trainer.Run(config, new ArrayData(16, 64), Fixtures.RunDir(), resume: false);
        var r16 = Trainer.Run(config with { ComputeDtype = "bfloat16" }, new ArrayData(16, 64), Fixtures.RunDir(), resume: false);
        double l32 = r32.Validation["synthetic"].Loss, l16 = r16.Validation["synthetic"].Loss;
        Assert.True(l32 < 3.0, $"fp32 validation loss {l32:F3} (start ≈ ln 64 = 4.16)");
        Assert.True(Math.Abs(l16 - l32) < 0.15, $"bf16 {l16:F3} vs fp32 {l32:F3}");
    }

    [Fact]
    public void Planted_nan_is_skipped_then_rolled_back_with_a_lower_lr()
    {
        var config = Fixtures.Config() with { MaxConsecutiveSkips = 3, RollbackLrFactor = 0.5 };
        var logs = new List<string>();
        var lrs = new List<(long Step, double Lr)>();
        int poisoned = 0;
        var result = Trainer.Run(config, new ArrayData(16, 64), Fixtures.RunDir(), resume: false, new TrainerHooks
        {
            // steps 5, 6, 7 (0-based 4..6) have NaN losses the first time through
            PoisonLoss = s => s is >= 4 and <= 6 && poisoned++ < 3,
            Log = logs.Add,
            Progress = new SyncProgress<TrainProgress>(p => lrs.Add((p.Step, p.Lr))),
        });
        Assert.Equal(3, logs.Count(l => l.Contains("non-finite loss")));
        Assert.Contains(logs, l => l.StartsWith("rolled back to step 4"));
        Assert.False(result.Interrupted);
        Assert.True(double.IsFinite(result.Validation["synthetic"].Loss));
        // After the rollback, step 5 runs again at half the scheduled rate.
        var schedule = config.BuildSchedule();
        var rerun = lrs.Last(x => x.Step == 5);
        Assert.Equal(schedule.At(4) * 0.5, rerun.Lr, 12);
    }

    [Fact]
    public void Non_finite_weights_are_never_checkpointed()
    {
        var config = Fixtures.Config() with { MaxConsecutiveSkips = 2 };
        var dir = Fixtures.RunDir();
        var logs = new List<string>();
        bool corrupted = false;
        Trainer.Run(config, new ArrayData(16, 64), dir, resume: false, new TrainerHooks
        {
            AfterUpdate = (step, model) =>
            {
                if (step != 6 || corrupted) return;
                corrupted = true;
                using var _ = no_grad();
                model.named_parameters().First().parameter.fill_(double.NaN);
            },
            Log = logs.Add,
        });
        Assert.Contains(logs, l => l == "step 8: weights are not finite; checkpoint NOT written");
        Assert.Contains(logs, l => l.StartsWith("rolled back to step 4"));
        foreach (var (_, ckpt) in TrainingCheckpoint.List(Path.Combine(dir, Trainer.CheckpointsDir)))
        {
            using var model = HfCheckpoint.Load(ckpt);
            Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
        }
    }

    [Fact]
    public void Truncated_or_mismatched_checkpoint_is_refused()
    {
        var config = Fixtures.Config();
        var dir = Fixtures.RunDir();
        Trainer.Run(config, new ArrayData(16, 64), dir, resume: false, new TrainerHooks { StopAfter = s => s == 8 });
        var (_, ckpt) = TrainingCheckpoint.List(Path.Combine(dir, Trainer.CheckpointsDir))[^1];

        var mismatch = Assert.ThrowsAny<CptLabException>(() => Trainer.Run(config with { Lr = 1e-2 }, new ArrayData(16, 64), dir, resume: true));
        Assert.Contains("'optimizer.lr' is 0.003 there and 0.01 now", mismatch.Message);

        var optimizer = Path.Combine(ckpt, TrainingCheckpoint.OptimizerFile);
        File.WriteAllBytes(optimizer, File.ReadAllBytes(optimizer)[..^64]);
        var e = Assert.ThrowsAny<CptLabException>(() => Trainer.Run(config, new ArrayData(16, 64), dir, resume: true));
        Assert.Contains("optimizer.safetensors", e.Message);
        Assert.Contains("truncated", e.Message);

        var fresh = Assert.ThrowsAny<CptLabException>(() => Trainer.Run(config, new ArrayData(16, 64), dir, resume: false));
        Assert.Contains("already holds checkpoints", fresh.Message);
    }

    [Fact]
    public void Live_tensor_count_stays_flat_over_300_steps()
    {
        var config = Fixtures.Config(micro: 2, globalTokens: 32, budget: 32 * 300) with { EvalEverySteps = 50, CheckpointEverySteps = 100, KeepLast = 1 };
        var counts = new List<long>();
        var stats = DisposeScopeManager.Statistics;
        Trainer.Run(config, new ArrayData(16, 64), Fixtures.RunDir(), resume: false,
            new TrainerHooks { Progress = new SyncProgress<TrainProgress>(_ => counts.Add(stats.ThreadTotalLiveCount)) });
        Assert.Equal(300, counts.Count);
        Assert.All(counts.Skip(1), c => Assert.Equal(counts[1], c));
    }

    [Fact]
    public void Checkpoints_keep_the_last_n_and_the_best()
    {
        // 20 steps of 4 sequences, a checkpoint every 4; the data switches rule after step 8, so validation (on the
        // first rule) is best early (step 12: it still improves for a few steps): a checkpoint that keeping the last
        // two alone would delete. Without keep_best the kept steps are [16, 20].
        var config = Fixtures.Config(budget: 64 * 20) with { KeepLast = 2, EvalEverySteps = 4, CheckpointEverySteps = 4 };
        var dir = Fixtures.RunDir();
        Trainer.Run(config, new SwitchingData(new ArrayData(16, 64), new ArrayData(16, 64, seed: 2, a: 7, c: 1), switchAfter: 8 * 4), dir, resume: false);

        // The best step by mean validation loss, read from metrics.jsonl (not from the trainer's state).
        var best = File.ReadLines(Path.Combine(dir, Trainer.MetricsFileName)).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => o["val"] is JsonObject)
            .MinBy(o => o["val"]!.AsObject().Average(kv => kv.Value!["loss"]!.GetValue<double>()))!["step"]!.GetValue<long>();
        Assert.True(best < 16, $"the best validation is at step {best}, among the last two checkpoints: the data switch did not make an early step best");
        var kept = TrainingCheckpoint.List(Path.Combine(dir, Trainer.CheckpointsDir)).Select(c => c.Step).ToList();
        Assert.Equal([best, 16L, 20L], kept);
        foreach (var (_, d) in TrainingCheckpoint.List(Path.Combine(dir, Trainer.CheckpointsDir))) TrainingCheckpoint.Verify(d);
        using var final = HfCheckpoint.Load(Path.Combine(dir, Trainer.FinalDir));
        Assert.Equal(Fixtures.Tiny.VocabSize, final.Config.VocabSize);
    }

    [Fact]
    public void On_resume_a_cut_last_metrics_line_is_dropped_and_a_bad_line_elsewhere_is_an_error()
    {
        var config = Fixtures.Config();
        var (straight, dir) = StraightAndStoppedAfter10(config);
        var metrics = Path.Combine(dir, Trainer.MetricsFileName);
        var whole = File.ReadAllText(metrics);

        // A line in the middle that is not a record: the file was edited, and dropping the line would lose it silently.
        var lines = whole.Split('\n');
        lines[2] = lines[2][..(lines[2].Length / 2)];
        var damaged = string.Join('\n', lines);
        File.WriteAllText(metrics, damaged);
        var e = Assert.Throws<CorruptFileException>(() => Trainer.Run(config, new ArrayData(16, 64), dir, resume: true));
        Assert.Equal(metrics, e.Path);
        Assert.Contains("line 3 is not a metrics record", e.Message);
        Assert.Equal(damaged, File.ReadAllText(metrics)); // left as it was, for the user to repair

        // The last line cut short, as a kill in the middle of a write leaves it: dropped, said, and the resume is exact.
        File.WriteAllText(metrics, whole + "{\"step\":11,\"tokens\":7");
        var logs = new List<string>();
        Trainer.Run(config, new ArrayData(16, 64), dir, resume: true, new TrainerHooks { Log = logs.Add });
        Assert.Contains(logs, l => l.StartsWith($"{Trainer.MetricsFileName}: dropped its last line, cut short by the interruption (line {lines.Length}: not JSON"));
        Assert.Equal(Fixtures.FinalWeights(straight), Fixtures.FinalWeights(dir));
        AssertEachStepLoggedOnce(dir, 12);
    }

    [Fact]
    public void Bits_per_byte_follow_from_the_loss()
    {
        var config = Fixtures.Config(budget: 64 * 4);
        var data = new ArrayData(16, 64);
        var result = Trainer.Run(config, data, Fixtures.RunDir(), resume: false);
        var v = result.Validation["synthetic"];
        // 4 sequences × 16 targets = 64 tokens standing for 128 bytes.
        Assert.Equal(64, v.Tokens);
        Assert.Equal(v.Loss * 64 / Math.Log(2) / 128, v.BitsPerByte, 6);
    }
}
