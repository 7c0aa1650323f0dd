using System.Globalization;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Laws;
using CptLab.Model;
using CptLab.Sweep;
using CptLab.Training;
using Xunit.Abstractions;

namespace CptLab.Sweep.Tests;

/// <summary>`sweep fit`, `plan`, `report` and `status` on sweeps with a known surface; and the errors of unfittable sweeps.</summary>
[Collection(SweepCollection.Name)]
public class FitPlanReportTests(SweepFixture fx, ITestOutputHelper output)
{
    string NewDir() => Path.Combine(fx.NewDir("sweepdir-"), "sweep");

    string FullSweep(double lrShift = 0, double? proxyParameters = null)
    {
        var extra = proxyParameters is { } p ? $"proxy_parameters: {p.ToString("R", CultureInfo.InvariantCulture)}" : "";
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(5, 5, extra)));
        var dir = NewDir();
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = new FakeExecutor(lrShift: lrShift) });
        return dir;
    }

    [Fact]
    public void Fit_writes_fit_json_plots_and_reports_with_the_known_optimum()
    {
        var dir = FullSweep();
        var result = SweepFit.Run(dir, bootstrap: 40);
        var truth = Surface.TrueOptimum(Objective.Weighted(1, 2), 0, 0.9, -5, -3);
        var o = result.Summary.Optimum;
        output.WriteLine($"fit r*={o.Almr:0.000} x*={o.Log10Lr:0.000}, truth r*={truth.R:0.000} x*={truth.X:0.000}; law {result.Summary.Law}");
        Assert.InRange(o.Almr - truth.R, -0.05, 0.05);
        Assert.InRange(o.Log10Lr - truth.X, -0.1, 0.1);
        Assert.Equal(25, result.Summary.Runs);
        // The base loss the objective measures forgetting against is the stored base evaluation.
        Assert.Equal(Surface.EnBase, result.Summary.BaseLoss["en"], 12);

        var back = FitJson.Read(Path.Combine(dir, SweepFit.FitFileName));
        Assert.Equal(o.Almr, back.Optimum.Almr);
        foreach (var name in new[] { "objective_heatmap", "loss_vs_almr_zh", "loss_vs_almr_en", "training_curves_zh", "training_curves_en" })
        {
            Assert.Contains(Path.Combine(dir, SweepFit.PlotsDir, name + ".png"), result.Plots);
            Assert.True(new FileInfo(Path.Combine(dir, SweepFit.PlotsDir, name + ".svg")).Length > 1000);
        }
        var md = File.ReadAllText(result.ReportPath);
        Assert.Contains("## Optimal ALMR and learning rate", md);
        Assert.Contains("![objective heatmap](plots/objective_heatmap.png)", md);
        Assert.Contains("**25** (25 done, 0 failed, 0 not finished)", md);
        var html = File.ReadAllText(result.HtmlReportPath);
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.Contains("<img src=\"plots/objective_heatmap.png\"", html);
        Assert.Contains("<th>ALMR</th>", html);
        Assert.Equal(Count(md, "\n|") - Count(md, "\n|---"), Count(html, "<tr>")); // every table row of the Markdown is a row of the page
    }

    /// <summary>
    /// A flavor's architecture with the fixture's 600-id vocabulary in a config.json: a plan refuses shards in another
    /// vocabulary than the target's (ScaleOutPlanTests), so the full-size shape is planned with the proxies' ids.
    /// </summary>
    string TargetConfig(string flavor)
    {
        var path = Path.Combine(fx.NewDir("target-"), "config.json");
        (Flavors.Get(flavor) with { VocabSize = 600, BosTokenId = null, EosTokenIds = [] }).Save(path);
        return path;
    }

    static int Count(string s, string what) => (s.Length - s.Replace(what, "").Length) / what.Length;

    [Fact]
    public void Plan_keeps_the_almr_scales_the_lr_and_writes_train_and_megatron_files()
    {
        var dir = FullSweep();
        var fit = SweepFit.Run(dir, bootstrap: 20).Summary;
        var target = TargetConfig("Llama-3-70B");
        var result = SweepPlan.Run(dir, new PlanOptions { Target = target, Tokens = 1_000_000_000, GlobalBatchSize = 64 });
        output.WriteLine(result.Description);
        var proxyN = (double)ModelMath.ParameterCount(LlamaConfig.Load(Path.Combine(fx.BaseCheckpoint, "config.json")));
        var targetN = (double)ModelMath.ParameterCount(LlamaConfig.Load(target));
        var expectedLr = fit.Optimum.Lr * Math.Pow(targetN / proxyN, -0.3); // one proxy size: the stated default α
        Assert.False(result.Rule.Fitted);
        Assert.Equal(fit.Optimum.Almr, result.Plan.Almr);
        Assert.Equal(expectedLr, result.Plan.Lr, expectedLr * 1e-12);
        Assert.Equal((1_000_000_000L + 64 * 32 - 1) / (64 * 32), result.Plan.TrainIters);
        Assert.Contains(result.Plan.Assumptions, a => a.Contains("one proxy size"));
        Assert.Contains("assumptions:", result.Description);

        // The cptlab train config loads as the trainer reads it, with the plan's numbers and a blend at the optimum ALMR.
        var cfg = TrainConfig.Load(result.TrainConfigPath);
        Assert.Equal(result.Plan.Lr, cfg.Lr, 1e-15);
        Assert.Equal(target, cfg.ModelConfigPath);
        Assert.Equal(result.Plan.TokensPerIter, cfg.GlobalBatchTokens);
        Assert.Equal(result.Plan.TrainIters, cfg.TotalSteps);
        Assert.Equal(0.1, cfg.MinLrRatio, 1e-12);
        // The proxies evaluated once per run (every 8 of 8 steps); a full-size run gets at least 20 validation points and checkpoints.
        Assert.Equal((result.Plan.TrainIters + 19) / 20, cfg.EvalEverySteps);
        Assert.Equal((result.Plan.TrainIters + 19) / 20, cfg.CheckpointEverySteps);
        // The proxies' optimizer is written out, not left to defaults, and the Megatron launch names the flags for it.
        var optimizer = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(result.TrainConfigPath))!["optimizer"]!;
        Assert.True(optimizer["decay_embeddings"]!.GetValue<bool>());
        Assert.Equal(0.1, optimizer["weight_decay"]!.GetValue<double>());
        Assert.Equal(0.95, optimizer["beta2"]!.GetValue<double>());
        var megatronArgs = File.ReadAllText(Path.Combine(Path.GetDirectoryName(result.PlanPath)!, "megatron_args.sh"));
        foreach (var flag in new[] { "--weight-decay 0.1\n", "--adam-beta1 0.9\n", "--adam-beta2 0.95\n", "--adam-eps 1E-08\n", "--clip-grad 1\n" })
            Assert.Contains(flag, megatronArgs);
        Assert.Contains(result.Plan.Assumptions, a => a.Contains("embeddings and LM head included"));
        var blend = BlendManifest.Load(cfg.Data!);
        Assert.Equal(fit.Optimum.Almr, blend.Almr, 12);
        Assert.Equal(result.Plan.Almr, blend.Sources.Where(s => s.Group == SourceGroup.Additional).Sum(s => s.Share), 12);

        string After(string flag) => result.Megatron.Args.Single(a => a.Flag == flag).Values.Single().Text;
        Assert.Equal(result.Plan.Lr, double.Parse(After("--lr"), CultureInfo.InvariantCulture), result.Plan.Lr * 1e-12);
        Assert.Equal(result.Plan.TrainIters.ToString(CultureInfo.InvariantCulture), After("--train-iters"));
        Assert.Contains("pretrain_gpt.py", File.ReadAllText(Path.Combine(Path.GetDirectoryName(result.PlanPath)!, "train.sh")));
        Assert.Equal(result.Plan.Lr, SweepPlan.ReadPlan(result.PlanPath).Lr);

        // The report now carries the plan.
        var (md, _) = SweepReport.Run(dir);
        Assert.Contains("## Full-size run plan", File.ReadAllText(md));

        // The verb prints the plan and its assumptions.
        var outDir = Path.Combine(Path.GetDirectoryName(dir)!, "plan-cli");
        var (code, stdout, _) = CliHost.Run(["sweep", "plan", "--dir", dir, "--target", target, "--tokens", "1B", "--global-batch", "64", "--out", outDir]);
        Assert.Equal(0, code);
        Assert.Contains("assumptions:", stdout);
        Assert.Equal(result.Plan.Lr, TrainConfig.Load(Path.Combine(outDir, "train.json")).Lr, 1e-15);
    }

    [Fact]
    public void Fit_laws_names_the_registrys_families_that_compete()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(4, 4).Replace("fit: {", "fit: {laws: [response_surface_linear, mixing_law], ")));
        Assert.Equal([LawKind.ResponseSurfaceLinear, LawKind.MixingLaw], spec.FitLaws);
        var dir = NewDir();
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = new FakeExecutor() });
        var fit = SweepFit.Run(dir, bootstrap: 0).Summary;
        Assert.Equal(["response_surface_linear", "mixing_law"], fit.Candidates.Select(c => c.Law));
        // The names are the registry's: `cptlab laws list` describes each.
        Assert.All(fit.Candidates, c => Assert.NotNull(Laws.Registry.LawRegistry.Find(c.Law)));
    }

    [Fact]
    public void An_optimum_on_the_edge_of_the_swept_lrs_is_flagged()
    {
        // The surface's optimal LR is near 10^-3.7; this grid stops at 10^-4.
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(3, 3).Replace("lr: [", "lr: [1e-5, 3e-5, 1e-4] #")));
        var dir = NewDir();
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = new FakeExecutor() });
        var result = SweepFit.Run(dir, bootstrap: 0);
        Assert.Contains(result.Warnings, w => w.Contains("largest swept LR") && w.Contains("extend grid.lr upward"));
        Assert.Contains("extend grid.lr upward", File.ReadAllText(result.ReportPath));
        // A grid that brackets the optimum raises no LR warning.
        Assert.DoesNotContain(SweepFit.Run(FullSweep(), bootstrap: 0).Warnings, w => w.Contains("swept LR"));
    }

    [Fact]
    public void Two_proxy_sizes_fit_the_lr_size_rule()
    {
        // The second proxy is 8× larger and its surface prefers an LR 10^-0.3 times smaller.
        var proxyN = (double)ModelMath.ParameterCount(LlamaConfig.Load(Path.Combine(fx.BaseCheckpoint, "config.json")));
        var small = FullSweep();
        var large = FullSweep(lrShift: -0.3, proxyParameters: proxyN * 8);
        var fSmall = SweepFit.Run(small, bootstrap: 0).Summary.Optimum.Lr;
        var fLarge = SweepFit.Run(large, bootstrap: 0).Summary.Optimum.Lr;
        var result = SweepPlan.Run(small, new PlanOptions { Target = TargetConfig("Llama-3-8B"), Tokens = 10_000_000, OtherSweeps = [large] });
        var alpha = -Math.Log(fLarge / fSmall) / Math.Log(8); // least squares through two points
        Assert.True(result.Rule.Fitted);
        Assert.Equal(alpha, result.Rule.Alpha, 1e-9);
        Assert.InRange(alpha, 0.2, 0.45); // 0.3 / log10(8) ≈ 0.33 by construction, up to the fits' noise
    }

    [Fact]
    public void Status_shows_each_run_and_an_interrupted_one()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(2, 2)));
        var dir = NewDir();
        using var cts = new CancellationTokenSource();
        var exec = new FakeExecutor();
        var n = 0;
        exec.BeforeRun = _ => { if (Interlocked.Increment(ref n) == 3) cts.Cancel(); };
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec, Workers = 1 }, cts.Token);
        using (var store = SweepStore.Open(dir, create: false))
            store.StartAttempt(store.Runs(RunStatus.Pending)[0].Id, 0, "{}"); // as a runner killed mid-run leaves it

        var p = SweepStatus.Read(dir);
        Assert.Equal(2, p.Done);
        Assert.Equal(1, p.Running);
        Assert.Equal(1, p.Pending);
        Assert.False(p.RunnerActive);
        var text = SweepStatus.Format(p);
        output.WriteLine(text);
        Assert.Contains("interrupted", text);
        Assert.Contains("2 done, 0 failed, 1 running, 1 pending of 4 runs", text);
        Assert.Contains("8/8", text); // 1024 tokens / 128 per step

        // The CLI verb prints the same (output is redirected under the test runner).
        var (code, stdout, _) = CliHost.Run(["sweep", "status", "--dir", dir]);
        Assert.Equal(0, code);
        Assert.Contains("interrupted", stdout);
    }

    [Fact]
    public void Unfittable_sweeps_say_what_is_missing()
    {
        // Every run failed.
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(3, 3)));
        var dir = NewDir();
        var exec = new FakeExecutor();
        foreach (var a in spec.Almrs) foreach (var lr in spec.Lrs) exec.Script[SweepRunner.RunId(a, lr, 0)] = new Queue<ExecKind>([ExecKind.Failed]);
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec });
        var e = Assert.Throws<CptLabException>(() => SweepFit.Run(dir));
        Assert.Contains("all 9 runs failed", e.Message);
        Assert.Contains("0 done, 9 failed", e.Message);

        // A single learning rate with 3 ALMR values: one LR answers the ALMR question, but needs 4 of them.
        var one = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(3, 3).Replace("lr: [", "lr: [1e-4] #")));
        var dir1 = NewDir();
        SweepRunner.Run(one, dir1, new RunnerOptions { Executor = new FakeExecutor() });
        Assert.Contains("one learning rate (1e-4) and 3 ALMR values", Assert.Throws<CptLabException>(() => SweepFit.Run(dir1)).Message);
        // With 5 ALMR values it answers the ALMR question at that LR, with plots and a report that says the LR was taken as given.
        var five = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(5, 3).Replace("lr: [", "lr: [1e-4] #")));
        var dir5 = NewDir();
        SweepRunner.Run(five, dir5, new RunnerOptions { Executor = new FakeExecutor() });
        var single = SweepFit.Run(dir5, bootstrap: 20);
        Assert.Equal("single_lr", single.Summary.Design);
        Assert.Equal(1e-4, single.Summary.Optimum.Lr, 1e-12);
        Assert.Contains("taken as given", File.ReadAllText(single.ReportPath));
        Assert.DoesNotContain(single.Warnings, w => w.Contains("swept LR"));

        // Too few ALMR values for any law (2 ALMR × 3 LR, and one of them diverged to NaN).
        var few = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(2, 3)));
        var dir2 = NewDir();
        var nan = new FakeExecutor();
        nan.Diverge.Add(SweepRunner.RunId(few.Almrs[0], few.Lrs[0], 0));
        SweepRunner.Run(few, dir2, new RunnerOptions { Executor = nan });
        var e2 = Assert.Throws<CptLabException>(() => SweepFit.Run(dir2));
        output.WriteLine(e2.Message);
        Assert.Contains("5 done, 1 failed", e2.Message);
        Assert.Contains("only 2 distinct ALMR values", e2.Message);

        // The CLI turns it into one line on stderr and exit code 1.
        var (code, _, stderr) = CliHost.Run(["sweep", "fit", "--dir", dir]);
        Assert.Equal(1, code);
        Assert.StartsWith("error: cannot fit the sweep", stderr);
    }

    [Fact]
    public void Fit_before_any_run_and_in_a_folder_that_is_not_a_sweep_fail_clearly()
    {
        var e = Assert.Throws<CptLabException>(() => SweepFit.Run(NewDir()));
        Assert.Contains("is not a sweep folder", e.Message);
        var dir = FullSweep();
        var plan = Assert.Throws<CptLabException>(() => SweepPlan.Run(dir, new PlanOptions { Target = "Llama-3-70B", Tokens = 1000 }));
        Assert.Contains("run `cptlab sweep fit", plan.Message);
    }
}
