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
