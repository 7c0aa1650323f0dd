using CptLab.Sweep;
using CptLab.Training;

namespace CptLab.Sweep.Tests;

/// <summary>The base model's validation loss (what forgetting is measured against) is the trainer's own number.</summary>
[Collection(SweepCollection.Name)]
public class BaseEvaluationTests(SweepFixture fx)
{
    [Fact]
    public void Evaluating_a_saved_model_gives_the_loss_its_run_logged()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(2, 2)));
        var dir = fx.NewDir("eval-");
        var blend = SweepRunner.EnsureBlend(spec, dir, 0.45, 0);
        var config = spec.RunConfig(0.45, 1e-3, 0, blend, threads: 1) with { KeepBest = false };
        var runDir = Path.Combine(dir, "run");
        TrainResult result;
        using (var data = BlendTrainingData.Open(blend, config.SeqLen, config.EvalMaxSequences))
            result = Trainer.Run(config, data, runDir, resume: false);

        using var again = BlendTrainingData.Open(blend, config.SeqLen, config.EvalMaxSequences);
        // The dtype the run computed in, as it recorded it ("auto" chooses by timing, so it may differ between training and inference).
        var ran = TrainConfig.Load(Path.Combine(runDir, Trainer.ConfigFileName)).Resolved!.Dtype;
        var eval = ModelEvaluation.Evaluate(result.FinalModelDir, again.Validation, config.MicroBatchSize, ran, threads: 1);
        var logged = RunMetrics.Read(runDir, config.TotalSteps, spec.Languages);
        Assert.Equal(["en-web", "zh-web"], eval.Keys.Order());
        foreach (var f in logged.Final)
        {
            Assert.Equal(f.Loss, eval[f.Source].Loss, 1e-6);
            Assert.Equal(f.ValidationTokens, eval[f.Source].Tokens);
        }
        // The base checkpoint scores worse than the trained model on both languages (it never saw this data).
        var baseEval = ModelEvaluation.Evaluate(fx.BaseCheckpoint, again.Validation, config.MicroBatchSize, threads: 1);
        Assert.All(logged.Final, f => Assert.True(baseEval[f.Source].Loss > f.Loss + 0.1, $"{f.Source}: base {baseEval[f.Source].Loss:F4}, trained {f.Loss:F4}"));
        // Each language's loss is the token-weighted mean of its sources (one source each here).
        Assert.Equal(logged.Final.Single(f => f.Source == "zh-web").Loss, logged.FinalByLanguage["zh"]);
    }

    [Fact]
    public void Metrics_after_a_rollback_keep_the_line_the_run_continued_from()
    {
        var dir = fx.NewDir("metrics-");
        string Val(long step, double zh, double en) =>
            $"{{\"step\":{step},\"tokens\":{step * 100},\"val\":{{\"zh-web\":{{\"loss\":{zh},\"bpb\":1,\"tokens\":64}},\"en-web\":{{\"loss\":{en},\"bpb\":1,\"tokens\":64}}}}}}";
        File.WriteAllLines(Path.Combine(dir, Trainer.MetricsFileName),
        [
            "{\"step\":1,\"tokens\":100,\"lr\":0.001,\"loss\":5.0}",
            Val(4, 4.0, 3.0),
            Val(8, 3.5, 2.9),
            "{\"step\":9,\"tokens\":900,\"lr\":0.001,\"loss\":\"NaN\",\"skipped\":true}",
            "{\"step\":9,\"event\":\"rolled back to step 4\"}",
            Val(8, 3.6, 2.95), // step 8 again, after the rollback
            Val(12, 3.2, 2.8),
        ]);
        var langs = new Dictionary<string, IReadOnlyList<string>> { ["zh"] = ["zh-web"], ["en"] = ["en-web"] };
        var m = RunMetrics.Read(dir, totalSteps: 12, langs);
        Assert.Equal([4L, 4, 8, 8, 12, 12], m.Curve.Select(c => c.Step));
        Assert.Equal(3.6, m.Curve.Single(c => c.Step == 8 && c.Source == "zh-web").Loss);
        Assert.Equal(3.2, m.FinalByLanguage["zh"]);
        Assert.Equal(12, m.Steps);
        // A run that stopped before its last step has no final validation: that is an error, not a result.
        Assert.Contains("did not finish", Assert.Throws<CptLab.Core.CptLabException>(() => RunMetrics.Read(dir, totalSteps: 16, langs)).Message);
    }

    [Fact]
    public void Language_loss_is_the_token_weighted_mean_of_its_sources()
    {
        var losses = new[] { new SourceLoss(1, 1, "a", 2.0, 0, 300), new SourceLoss(1, 1, "b", 3.0, 0, 100), new SourceLoss(1, 1, "c", double.NaN, 0, 10) };
        var langs = new Dictionary<string, IReadOnlyList<string>> { ["x"] = ["a", "b"], ["y"] = ["b"], ["z"] = ["a", "c"], ["w"] = ["missing"] };
        var by = RunMetrics.ByLanguage(losses, langs);
        Assert.Equal((2.0 * 300 + 3.0 * 100) / 400, by["x"], 15);
        Assert.Equal(3.0, by["y"]);
        Assert.True(double.IsNaN(by["z"]));
        Assert.True(double.IsNaN(by["w"]));
    }
}
