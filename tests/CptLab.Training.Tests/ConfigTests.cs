using CptLab.Core;
using CptLab.Training;

namespace CptLab.Training.Tests;

public class ConfigTests
{
    static string Write(string name, string text)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("cptlab-cfg-").FullName, name);
        File.WriteAllText(path, text);
        return path;
    }

    const string Yaml = """
        model:
          flavor: cpu-2m
          dtype: bfloat16
        data:
          mixture: blend/mix.json
          seq_len: 256
        optimizer:
          lr: 3e-4
          weight_decay: 0.1
        schedule:
          kind: wsd
          anneal: one_minus_sqrt
          warmup_tokens: 40960
        batch:
          micro_batch_size: 4
          global_batch_tokens: 8192
        budget_tokens: 819200
        seed: 3
        """;

    [Fact]
    public void Yaml_config_reads_with_derived_sizes()
    {
        var path = Write("train.yaml", Yaml);
        var c = TrainConfig.Load(path);
        Assert.Equal("cpu-2m", c.Flavor);
        Assert.Equal(3e-4, c.Lr);
        Assert.Equal(ScheduleKind.Wsd, c.Schedule);
        Assert.Equal(AnnealShape.OneMinusSqrt, c.Anneal);
        Assert.Equal(8, c.AccumulationSteps);
        Assert.Equal(100, c.TotalSteps);
        Assert.Equal(5, c.WarmupSteps);
        Assert.Equal(Path.Combine(Path.GetDirectoryName(path)!, "blend", "mix.json"), c.Data);
        // The JSON copy a run folder keeps reads back to the same config.
        var back = TrainConfig.FromJson(c.ToJson(), "copy", "/");
        Assert.Equal(c, back);
    }

    /// <summary>
    /// How each property of <see cref="TrainConfig"/> is changed from <see cref="Base"/> for the round trip. Every settable
    /// property must be here: a new option gets a case, and then the round trip fails until its key is in TrainConfigKeys.
    /// </summary>
    static readonly Dictionary<string, Func<TrainConfig, TrainConfig>> Changes = new()
    {
        [nameof(TrainConfig.Flavor)] = c => c with { Flavor = "debug" },
        [nameof(TrainConfig.ModelConfigPath)] = c => c with { Flavor = null, ModelConfigPath = "/models/tiny.json" },
        [nameof(TrainConfig.InitFrom)] = c => c with { Flavor = null, InitFrom = "/runs/base/final" },
        [nameof(TrainConfig.ComputeDtype)] = c => c with { ComputeDtype = "bfloat16" },
        [nameof(TrainConfig.SaveDtype)] = c => c with { SaveDtype = "bfloat16" },
        [nameof(TrainConfig.Tokenizer)] = c => c with { Tokenizer = "/data/tok/tokenizer.json" },
        [nameof(TrainConfig.Data)] = c => c with { Data = "/data/blend.json" },
        // Every post-training key changed from its default, SFT's and DPO's, in one case each stage cannot hold both.
        [nameof(TrainConfig.Post)] = c => c with
        {
            Post = new Training.PostTraining.PostTrainOptions
            {
                Stage = Training.PostTraining.PostTrainStage.Dpo, Train = ["/data/pairs.jsonl", "/data/more.jsonl.zst"], Validation = ["/data/val.jsonl"],
                Format = "sharegpt", ValidationFraction = 0.05, MaxValidation = 64, CutoffLen = 100, Truncation = Training.PostTraining.TruncationMode.Drop,
                Epochs = 2.5, Loss = Training.PostTraining.DpoLossType.Ipo, Beta = 0.3, LabelSmoothing = 0.1, SimpoGamma = 1.0, RpoAlpha = 0.2,
            },
        },
        [nameof(TrainConfig.SeqLen)] = c => c with { SeqLen = 128 },
        [nameof(TrainConfig.Lr)] = c => c with { Lr = 3e-4 },
        [nameof(TrainConfig.Beta1)] = c => c with { Beta1 = 0.8 },
        [nameof(TrainConfig.Beta2)] = c => c with { Beta2 = 0.99 },
        [nameof(TrainConfig.Eps)] = c => c with { Eps = 1e-6 },
        [nameof(TrainConfig.WeightDecay)] = c => c with { WeightDecay = 0.05 },
        [nameof(TrainConfig.DecayEmbeddings)] = c => c with { DecayEmbeddings = !c.DecayEmbeddings },
        [nameof(TrainConfig.GradClip)] = c => c with { GradClip = 0.5 },
        [nameof(TrainConfig.Schedule)] = c => c with { Schedule = ScheduleKind.Wsd },
        [nameof(TrainConfig.WarmupTokens)] = c => c with { WarmupTokens = 4096 },
        [nameof(TrainConfig.MinLrRatio)] = c => c with { MinLrRatio = 0.2 },
        [nameof(TrainConfig.DecayFraction)] = c => c with { DecayFraction = 0.3 },
        [nameof(TrainConfig.Anneal)] = c => c with { Anneal = AnnealShape.Cosine },
        [nameof(TrainConfig.WarmupInitLr)] = c => c with { WarmupInitLr = 1e-5 },
        [nameof(TrainConfig.MicroBatchSize)] = c => c with { MicroBatchSize = 4 },
        [nameof(TrainConfig.GlobalBatchTokens)] = c => c with { GlobalBatchTokens = 4096 },
        [nameof(TrainConfig.BudgetTokens)] = c => c with { BudgetTokens = 2_000_000 },
        [nameof(TrainConfig.EvalEverySteps)] = c => c with { EvalEverySteps = 7 },
        [nameof(TrainConfig.EvalMaxSequences)] = c => c with { EvalMaxSequences = 9 },
        [nameof(TrainConfig.CheckpointEverySteps)] = c => c with { CheckpointEverySteps = 11 },
        [nameof(TrainConfig.KeepLast)] = c => c with { KeepLast = 3 },
        [nameof(TrainConfig.KeepBest)] = c => c with { KeepBest = !c.KeepBest },
        [nameof(TrainConfig.MaxConsecutiveSkips)] = c => c with { MaxConsecutiveSkips = 5 },
        [nameof(TrainConfig.RollbackLrFactor)] = c => c with { RollbackLrFactor = 0.25 },
        [nameof(TrainConfig.Seed)] = c => c with { Seed = 42 },
        [nameof(TrainConfig.Threads)] = c => c with { Threads = 3 },
        [nameof(TrainConfig.MeasurePeakFlops)] = c => c with { MeasurePeakFlops = !c.MeasurePeakFlops },
        [nameof(TrainConfig.Resolved)] = c => c with { Resolved = new RunNumerics("bfloat16", 4, "set in the config", "4 free cores") },
    };

    static readonly TrainConfig Base = new TrainConfig { Flavor = "cpu-2m" }.Validate();

    [Fact]
    public void Every_property_round_trips_through_the_key_table()
    {
        var settable = typeof(TrainConfig).GetProperties().Where(p => p.SetMethod is not null).Select(p => p.Name).Order().ToList();
        var missing = settable.Except(Changes.Keys).ToList();
        Assert.True(missing.Count == 0, $"TrainConfig.{string.Join(", ", missing)} has no round-trip case: add one to {nameof(Changes)} and its key to TrainConfigKeys.All");
        foreach (var name in settable)
        {
            var property = typeof(TrainConfig).GetProperty(name)!;
            var changed = Changes[name](Base).Validate();
            Assert.False(Equals(property.GetValue(Base), property.GetValue(changed)), $"the case for {name} does not change it");
            var back = TrainConfig.FromJson(changed.ToJson(), "copy", "/");
            Assert.True(Equals(property.GetValue(changed), property.GetValue(back)),
                $"{name} is {property.GetValue(changed)} but reads back as {property.GetValue(back)}: its key is missing from TrainConfigKeys.All, or reads or writes it wrongly");
            Assert.Equal(changed, back);
        }
        var paths = TrainConfigKeys.All.Select(k => k.Path).ToList();
        Assert.Equal(paths.Count, paths.Distinct().Count());
    }

    /// <summary>A run folder's config.json as CptLab wrote it before the key table (and before decay_embeddings defaulted to true).</summary>
    const string EarlierRunConfig = """
        {
          "model": {
            "dtype": "auto",
            "init_from": "/runs/base/final"
          },
          "data": {
            "seq_len": 64,
            "mixture": "/data/blend.json"
          },
          "optimizer": {
            "lr": 0.001,
            "beta1": 0.9,
            "beta2": 0.95,
            "eps": 1E-08,
            "weight_decay": 0.1,
            "decay_embeddings": false,
            "grad_clip": 1
          },
          "schedule": {
            "kind": "cosine",
            "warmup_tokens": 0,
            "min_lr_ratio": 0.1,
            "decay_fraction": 0.2,
            "anneal": "linear",
            "warmup_init_lr": 0
          },
          "batch": {
            "micro_batch_size": 4,
            "global_batch_tokens": 512
          },
          "budget_tokens": 51200,
          "eval": {
            "every_steps": 50,
            "max_sequences": 32
          },
          "checkpoint": {
            "every_steps": 100,
            "keep_last": 2,
            "keep_best": true
          },
          "guards": {
            "max_consecutive_skips": 3,
            "rollback_lr_factor": 0.5
          },
          "seed": 0,
          "threads": 0,
          "measure_peak_flops": true,
          "resolved": {
            "dtype": "float32",
            "threads": 2,
            "dtype_reason": "auto: AVX2 only",
            "threads_reason": "2 free cores"
          }
        }
        """;

    [Fact]
    public void A_run_folder_config_of_an_earlier_version_reads_and_writes_back_byte_for_byte()
    {
        var c = TrainConfig.FromJson((System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(EarlierRunConfig)!, "config.json", "/");
        Assert.False(c.DecayEmbeddings); // as the run was made, whatever the default is now
        Assert.Equal(2, c.Resolved!.Threads);
        Assert.Equal("auto", c.ComputeDtype);
        Assert.Equal(EarlierRunConfig, c.ToJson().ToJsonString(Json.Indented));
    }

    [Fact]
    public void Token_amounts_may_carry_a_suffix()
    {
        var c = TrainConfig.Load(Write("t.yaml", Yaml.Replace("budget_tokens: 819200", "budget_tokens: 819.2K").Replace("warmup_tokens: 40960", "warmup_tokens: 40.96K")));
        Assert.Equal(819_200, c.BudgetTokens);
        Assert.Equal(40_960, c.WarmupTokens);
        Assert.Equal("budget_tokens", Assert.Throws<ConfigException>(() => TrainConfig.Load(Write("t.yaml", Yaml.Replace("budget_tokens: 819200", "budget_tokens: 1.5")))).Key);
    }

    [Theory]
    [InlineData("  lr: 3e-4", "  learning_rate: 3e-4", "optimizer.learning_rate", "unknown key")]
    [InlineData("  global_batch_tokens: 8192", "  global_batch_tokens: 8000", "batch.global_batch_tokens", "multiple of")]
    [InlineData("  kind: wsd", "  kind: triangle", "schedule.kind", "not one of")]
    [InlineData("  seq_len: 256", "  seq_len: long", "data.seq_len", "expected a number")]
    [InlineData("  dtype: bfloat16", "  dtype: int8", "model.dtype", "float32 or bfloat16")]
    public void Errors_name_the_key(string find, string replace, string key, string problem)
    {
        Assert.Contains(find, Yaml);
        var e = Assert.Throws<ConfigException>(() => TrainConfig.Load(Write("t.yaml", Yaml.Replace(find, replace))));
        Assert.Equal(key, e.Key);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void Malformed_yaml_names_the_line()
    {
        var e = Assert.Throws<CorruptFileException>(() => TrainConfig.Load(Write("t.yaml", "model:\n  flavor: [unclosed\n")));
        Assert.Contains("malformed YAML at line", e.Message);
    }
}
