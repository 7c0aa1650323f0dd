using CptLab.Core;
using CptLab.Laws;
using CptLab.Sweep;

namespace CptLab.Sweep.Tests;

/// <summary>The sweep spec: grids, defaults read from the data, per-run configs, and errors that name the key.</summary>
[Collection(SweepCollection.Name)]
public class SpecTests(SweepFixture fx)
{
    const string Train = """
        train:
          batch: {micro_batch_size: 4, global_batch_tokens: 128}
          schedule: {kind: cosine, warmup_tokens: 256}
          eval: {every_steps: 8, max_sequences: 4}
          checkpoint: {every_steps: 8, keep_last: 2}
        """;

    [Fact]
    public void Log_grid_tokens_and_languages_are_resolved()
    {
        var spec = SweepSpec.Load(fx.WriteSpec($"""
            grid:
              almr: {"{"}min: 0.1, max: 0.5, count: 3{"}"}
              lr: {"{"}min: 1e-4, max: 1e-2, count: 4{"}"}
              seeds: [0, 1]
            tokens_per_run: 2K
            {Train}
            objective: {"{"}kind: constrained, max_forgetting: 0.05{"}"}
            workers: 2
            """));
        Assert.Equal([0.1, 0.3, 0.5], spec.Almrs);
        // 10^-4, 10^-4+2/3, 10^-4+4/3, 10^-2 to 4 significant digits, computed by hand.
        Assert.Equal([1e-4, 4.642e-4, 2.154e-3, 1e-2], spec.Lrs);
        Assert.Equal(2000, spec.TokensPerRun);
        Assert.Equal(3 * 4 * 2, spec.GridSize);
        // Languages default to the sources' tags in the prepared data; target = the additional sources' tag.
        Assert.Equal("zh", spec.TargetLanguage);
        Assert.Equal("en", spec.OriginalLanguage);
        Assert.Equal(["zh-web"], spec.Languages["zh"]);
        Assert.Equal(0.05, Assert.IsType<ConstrainedObjective>(spec.Objective).MaxForgetting);

        var cfg = spec.RunConfig(0.3, 4.642e-4, seed: 1, blendPath: "/tmp/b.json", threads: 3);
        Assert.Equal(fx.BaseCheckpoint, cfg.InitFrom);
        Assert.Equal(4.642e-4, cfg.Lr);
        Assert.Equal(2000, cfg.BudgetTokens);
        Assert.Equal(15, cfg.TotalSteps); // 2000 / 128
        Assert.Equal(3, cfg.Threads);
        Assert.Equal(1, cfg.Seed);
        Assert.Equal(32, cfg.SeqLen);
        Assert.Equal("/tmp/b.json", cfg.Data);
        Assert.False(cfg.MeasurePeakFlops);
        Assert.Equal(1235UL, spec.Mix(0.3, 1).Seed); // data seed 1234 + run seed

        // The stored form reads back to the same spec (and the same fingerprint).
        var back = SweepSpec.FromJson(spec.ToJson(), "stored", "/", checkFiles: false);
        Assert.Equal(spec.ToJson().ToJsonString(), back.ToJson().ToJsonString());
        Assert.Equal(spec.Fingerprint(), back.Fingerprint());
    }

    [Fact]
    public void Fingerprint_follows_what_decides_a_result_and_not_the_grid()
    {
        string Spec(string lr, int workers, int micro) => fx.WriteSpec($"""
            grid: {"{"}almr: [0.1, 0.5], lr: {lr}{"}"}
            tokens_per_run: 2048
            train: {"{"}batch: {"{"}micro_batch_size: {micro}, global_batch_tokens: 128{"}"}{"}"}
            workers: {workers}
            """);
        var a = SweepSpec.Load(Spec("[1e-4, 1e-3]", 1, 4)).Fingerprint();
        Assert.Equal(a, SweepSpec.Load(Spec("[1e-4, 1e-3, 1e-2]", 3, 4)).Fingerprint());
        Assert.NotEqual(a, SweepSpec.Load(Spec("[1e-4, 1e-3]", 1, 2)).Fingerprint());
    }

    /// <summary>
    /// A stored sweep is resumed only when its fingerprint matches the spec's, so the fingerprint of a given spec must
    /// never change between CptLab versions: this one was computed by the code that wrote the first sweeps.
    /// </summary>
    [Fact]
    public void The_fingerprint_of_a_fixed_spec_is_pinned()
    {
        var root = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse("""
            {"base_checkpoint": "/sweeps/base", "proxy_parameters": 1e6,
             "data": {"dir": "/sweeps/data", "seq_len": 64, "seed": 7, "original": ["en-web"], "additional": ["zh-web:2", "zh-books"]},
             "languages": {"zh": ["zh-web", "zh-books"], "en": ["en-web"]}, "target_language": "zh", "original_language": "en",
             "grid": {"almr": [0.1, 0.5], "lr": [1e-4, 1e-3]}, "tokens_per_run": "20M",
             "train": {"batch": {"micro_batch_size": 4, "global_batch_tokens": "64K"}, "schedule": {"warmup_tokens": "1M"}, "model": {"dtype": "float32"}},
             "objective": "target_loss"}
            """)!;
        var spec = SweepSpec.FromJson(root, "pinned", "/", checkFiles: false);
        Assert.Equal("8f00b7b57f2722dd", spec.Fingerprint());
        Assert.Equal("8f00b7b57f2722dd", SweepSpec.FromJson(spec.ToJson(), "stored", "/", checkFiles: false).Fingerprint());
    }

    [Theory]
    [InlineData("train: {optimizer: {lr: 0.1}}", "train.optimizer.lr", "grid.lr")]
    [InlineData("train: {budget_tokens: 100}", "train.budget_tokens", "tokens_per_run")]
    [InlineData("train: {batch: {micro_batch_size: 3, global_batch_tokens: 128}}", "train.batch.global_batch_tokens", "multiple")]
    [InlineData("train: {optimizr: {beta1: 0.9}}", "train.optimizr", "unknown")]
    [InlineData("worker: 2", "worker", "unknown")]
    [InlineData("languages: {zh: [zh-news]}", "languages.zh", "not in the mixture")]
    [InlineData("objective: best", "objective", "target_loss")]
    [InlineData("adaptive: {enabled: true}", "adaptive.enabled", "3 ALMR values × 3 LRs")]
    [InlineData("fit: {laws: [chinchilla]}", "fit.laws", "'chinchilla' is not a sweep law family; the registry's sweep families are response_surface_linear")]
    [InlineData("adaptive: {stop_probability: 1.5}", "adaptive.stop_probability", "must be in [0, 1)")]
    [InlineData("fit: {gp_kernel: matern72}", "fit.gp_kernel", "'matern72' is not a kernel: matern52 (the default), matern32 or squared_exponential")]
    [InlineData("adaptive: {gp_kernel: rational}", "adaptive.gp_kernel", "'rational' is not a kernel")]
    public void Errors_name_the_key(string line, string key, string says)
    {
        var path = fx.WriteSpec($"""
            grid: {"{"}almr: [0.1, 0.5], lr: [1e-4, 1e-3]{"}"}
            tokens_per_run: 2048
            {line}
            """);
        var e = Assert.ThrowsAny<ConfigException>(() => SweepSpec.Load(path));
        Assert.Equal(key, e.Key);
        Assert.Contains(says, e.Message);
    }

    [Fact]
    public void The_kernels_are_read_and_default_to_matern52_for_the_fit_and_squared_exponential_for_the_design()
    {
        var plain = SweepSpec.Load(fx.WriteSpec("grid: {almr: [0.1, 0.5], lr: [1e-4, 1e-3]}\ntokens_per_run: 2048\n"));
        Assert.Equal(GpKernel.Matern52, plain.FitOptions().GaussianProcessKernel);
        Assert.Equal(GpKernel.SquaredExponential, plain.AdaptiveOptions().SurrogateKernel);
        var set = SweepSpec.Load(fx.WriteSpec("grid: {almr: [0.1, 0.5], lr: [1e-4, 1e-3]}\ntokens_per_run: 2048\nfit: {gp_kernel: squared_exponential}\nadaptive: {gp_kernel: matern32}\n"));
        Assert.Equal(GpKernel.SquaredExponential, set.FitOptions().GaussianProcessKernel);
        Assert.Equal(GpKernel.Matern32, set.AdaptiveOptions().SurrogateKernel);
    }

    [Fact]
    public void A_grid_value_outside_its_range_is_refused()
    {
        var path = fx.WriteSpec("""
            grid: {almr: [0.1, 1.5], lr: [1e-4, 1e-3]}
            tokens_per_run: 2048
            """);
        var e = Assert.Throws<ConfigException>(() => SweepSpec.Load(path));
        Assert.Equal("grid.almr", e.Key);
    }

    [Fact]
    public void Token_counts_in_the_spec_are_exact_and_zero_where_it_means_off()
    {
        var spec = SweepSpec.Load(fx.WriteSpec("""
            grid: {almr: [0.1, 0.5], lr: [1e-4, 1e-3]}
            tokens_per_run: 1.1K
            train: {batch: {micro_batch_size: 4, global_batch_tokens: 0.128K}, schedule: {warmup_tokens: 0.3K}}
            fit: {extrapolate_to_tokens: "0"}
            """));
        Assert.Equal(1100, spec.TokensPerRun);                       // 1.1 × 1000 in decimal, not 1100.0000000000002
        var cfg = spec.RunConfig(0.1, 1e-4, 0, "/tmp/b.json", 1);
        Assert.Equal(128, cfg.GlobalBatchTokens);
        Assert.Equal(300, cfg.WarmupTokens);
        Assert.Null(spec.ExtrapolateToTokens);                       // 0: no extrapolation

        foreach (var (line, key, says) in new[]
        {
            ("tokens_per_run: 0", "tokens_per_run", "more than 0"),
            ("tokens_per_run: 1.2345K", "tokens_per_run", "1234.5 tokens is not a whole number"),
            ("tokens_per_run: 20X", "tokens_per_run", "unknown suffix 'X'"),
        })
        {
            var e = Assert.Throws<ConfigException>(() => SweepSpec.Load(fx.WriteSpec($"grid: {{almr: [0.1, 0.5], lr: [1e-4, 1e-3]}}\n{line}")));
            Assert.Equal(key, e.Key);
            Assert.Contains(says, e.Message);
        }
    }

    [Fact]
    public void A_stored_target_loss_objective_with_the_old_needs_base_flag_still_reads()
    {
        // Sweeps stored before the objective had its own writer carry {"kind": "target_loss", "needs_base": false}.
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(3, 3).Replace("objective: {kind: weighted, target_weight: 1, forgetting_weight: 2}", "")));
        var stored = spec.ToJson();
        Assert.Equal("""{"kind":"target_loss"}""", stored["objective"]!.ToJsonString());
        stored["objective"] = System.Text.Json.Nodes.JsonNode.Parse("""{"kind": "target_loss", "needs_base": false}""");
        Assert.IsType<TargetLossObjective>(SweepSpec.FromJson(stored, "old spec.json", "/", checkFiles: false).Objective);
        stored["objective"] = System.Text.Json.Nodes.JsonNode.Parse("""{"kind": "target_loss", "needs_base": true}""");
        var e = Assert.Throws<ConfigException>(() => SweepSpec.FromJson(stored, "old spec.json", "/", checkFiles: false));
        Assert.Equal("objective.needs_base", e.Key);
    }

    [Theory]
    [InlineData("{kind: weighted, target_weight: 1.5, forgetting_weight: 2}")]
    [InlineData("{kind: constrained, max_forgetting: 0.05}")]
    [InlineData("forgetting")]
    [InlineData("target_loss")]
    public void Every_objective_round_trips_through_the_stored_spec(string objective)
    {
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(3, 3).Replace("{kind: weighted, target_weight: 1, forgetting_weight: 2}", objective)));
        var back = SweepSpec.FromJson(spec.ToJson(), "stored", "/", checkFiles: false);
        Assert.Equal(spec.Objective, back.Objective);
        Assert.Equal(spec.ToJson().ToJsonString(), back.ToJson().ToJsonString());
    }

    [Fact]
    public void Cores_are_split_between_workers()
    {
        Assert.Equal([2, 2], SweepRunner.WorkerThreads(4, 2));
        Assert.Equal([3, 2, 2], SweepRunner.WorkerThreads(7, 3));
        Assert.Equal([1, 1, 1], SweepRunner.WorkerThreads(2, 3)); // never zero threads
        Assert.Equal("almr0.25_lr3e-04_seed1", SweepRunner.RunId(0.25, 3e-4, 1));
        Assert.Equal("almr0_lr1.234e-05_seed0", SweepRunner.RunId(0, 1.234e-5, 0));
    }
}
