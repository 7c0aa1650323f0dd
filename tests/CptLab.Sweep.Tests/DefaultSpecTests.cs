using System.Text.Json.Nodes;
using CptLab.Laws;
using CptLab.Model;
using CptLab.Sweep;
using CptLab.Training;
using Xunit.Abstractions;

namespace CptLab.Sweep.Tests;

/// <summary>A spec that leaves every optional key at its default goes through every sweep verb.</summary>
[Collection(SweepCollection.Name)]
public class DefaultSpecTests(SweepFixture fx, ITestOutputHelper output)
{
    [Fact]
    public void A_spec_with_only_the_required_keys_runs_and_goes_through_status_fit_report_and_plan()
    {
        // Required: base_checkpoint and data (written by WriteSpec), grid.almr, grid.lr, tokens_per_run. Nothing else:
        // the objective (target_loss), train, workers, fit, adaptive, languages are all defaults.
        var specPath = fx.WriteSpec("""
            grid:
              almr: [0, 0.225, 0.45, 0.675, 0.9]
              lr: [1e-5, 3.162e-5, 1e-4, 3.162e-4, 1e-3]
            tokens_per_run: 16384
            """);
        var spec = SweepSpec.Load(specPath);
        Assert.IsType<TargetLossObjective>(spec.Objective);
        var dir = Path.Combine(fx.NewDir("sweepdir-"), "sweep");
        var summary = SweepRunner.Run(spec, dir, new RunnerOptions { Executor = new FakeExecutor() });
        Assert.Equal(25, summary.Done);

        // What `sweep run` stored reads back as the spec it was given.
        var stored = SweepSpec.FromJson((JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, SweepRunner.SpecFileName)))!, "spec.json", dir, checkFiles: false);
        Assert.Equal(spec.Objective, stored.Objective);
        Assert.Equal(spec.Fingerprint(), stored.Fingerprint());

        var (code, stdout, stderr) = CliHost.Run("sweep", "status", "--dir", dir);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        Assert.Contains("25 done, 0 failed, 0 running, 0 pending of 25 runs", stdout);

        (code, stdout, stderr) = CliHost.Run("sweep", "fit", "--dir", dir);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        var fit = FitJson.Read(Path.Combine(dir, SweepFit.FitFileName));
        Assert.Equal(Objective.TargetLoss().Describe(), fit.ObjectiveDescription);
        Assert.Equal(25, fit.Runs);

        (code, stdout, stderr) = CliHost.Run("sweep", "report", "--dir", dir);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        Assert.Contains("## Optimal ALMR and learning rate", File.ReadAllText(Path.Combine(dir, "report.md")));

        // Llama-3-70B's shape with the fixture's 600 ids: a plan refuses shards in another vocabulary than the target's.
        var target = Path.Combine(fx.NewDir("target-"), "config.json");
        (Flavors.Get("Llama-3-70B") with { VocabSize = 600, BosTokenId = null, EosTokenIds = [] }).Save(target);
        (code, stdout, stderr) = CliHost.Run("sweep", "plan", "--dir", dir, "--target", target, "--tokens", "1B");
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        var train = TrainConfig.Load(Path.Combine(dir, SweepPlan.DefaultDir, "train.json"));
        Assert.Equal(fit.Optimum.Almr, SweepPlan.ReadPlan(Path.Combine(dir, SweepPlan.DefaultDir, SweepPlan.PlanFileName)).Almr);
        Assert.Equal(target, train.ModelConfigPath);
    }
}
