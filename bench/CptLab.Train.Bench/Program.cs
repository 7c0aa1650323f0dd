// Training throughput of CptLab's trainer: tokens/s and MFU for one model size and precision, printed as one
// JSON line. bench/train-bench.sh runs it side by side with PyTorch (bench/train_torch.py) on the same
// configuration; bench/precision-bench.sh runs it for float32, bfloat16 and auto on the demo's and cpu-20m's
// shapes, and under thread and load conditions.
// Options: --flavor NAME | --demo quick-small|quick-large|default-small|default-large, --dtype float32|bfloat16|auto,
// --batch B --seq T (default: the demo's own for --demo, else 8 × 256), --steps N, --warmup N, --threads N
// (0: the trainer's choice, the free cores), --max-seconds S (stop measuring after S seconds, once --min-steps N,
// default 3, are measured).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CptLab.Core;
using CptLab.Demo;
using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Training;

CptLab.Model.TorchRuntime.PrepareNativeEnvironment();
var opts = args.Select((a, i) => (a, i)).Where(x => x.a.StartsWith("--")).ToDictionary(x => x.a[2..], x => args[x.i + 1]);
int Int(string key, int fallback) => opts.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
string dtype = opts.GetValueOrDefault("dtype", "float32");
int warmup = Int("warmup", 2);
int minSteps = Int("min-steps", 3);
int steps = Int("steps", 10);
int threads = Int("threads", Environment.ProcessorCount);
double maxSeconds = opts.TryGetValue("max-seconds", out var ms) ? double.Parse(ms, CultureInfo.InvariantCulture) : double.PositiveInfinity;

LlamaConfig model;
string name;
int batch, seq;
if (opts.TryGetValue("demo", out var demo))
{
    var (scaleName, size) = demo.Split('-') switch { [var a, var b] => (a, b), _ => throw new ArgumentException($"--demo {demo}: expected quick-small, default-large, …") };
    var scale = scaleName == "quick" ? DemoScale.Quick : DemoScale.Default;
    model = scale.ModelConfig(size == "small" ? scale.Small : scale.Large, scale.VocabSize);
    (batch, seq) = (Int("batch", scale.MicroBatch), Int("seq", scale.SeqLen));
    name = $"demo {demo}";
}
else
{
    name = opts.GetValueOrDefault("flavor", "cpu-7m");
    model = Flavors.Get(name);
    (batch, seq) = (Int("batch", 8), Int("seq", 256));
}

var dir = Directory.CreateTempSubdirectory("cptlab-bench-").FullName;
var modelConfig = Path.Combine(dir, "model.json");
model.Save(modelConfig);
var config = new TrainConfig
{
    ModelConfigPath = modelConfig, ComputeDtype = dtype, SeqLen = seq, MicroBatchSize = batch,
    GlobalBatchTokens = (long)batch * seq, BudgetTokens = (long)batch * seq * (steps + warmup),
    Lr = 1e-3, WarmupTokens = 0, EvalEverySteps = 1_000_000, CheckpointEverySteps = 1_000_000,
    Threads = threads, MeasurePeakFlops = true, Seed = 1,
}.Validate();

var times = new List<double>();
var sw = Stopwatch.StartNew();
var wall = Stopwatch.StartNew();
string? numerics = null;
using var stop = new CancellationTokenSource();
var hooks = new TrainerHooks
{
    Log = line => { if (line.StartsWith("compute ", StringComparison.Ordinal)) numerics = line; },
    Progress = new SyncProgress<TrainProgress>(_ => { times.Add(sw.Elapsed.TotalSeconds); sw.Restart(); }),
    // Past the time cap, stop once --min-steps steps are measured (bf16 emulated on AVX2 takes seconds to minutes a step).
    StopAfter = _ => wall.Elapsed.TotalSeconds > maxSeconds && times.Count >= warmup + minSteps,
};
Trainer.Run(config, new RandomTokens(seq, model.VocabSize), Path.Combine(dir, "run"), resume: false, hooks);
var chosen = TrainConfig.Load(Path.Combine(dir, "run", Trainer.ConfigFileName)).Resolved!;
Directory.Delete(dir, recursive: true);

// Median step time over the measured steps (the first `warmup` are excluded: allocation, kernel selection).
var measured = times.Skip(warmup).Order().ToList();
double stepSeconds = measured[measured.Count / 2];
double tps = batch * seq / stepSeconds;
double peak = MatmulRate.Get(chosen.ScalarType).Flops;
double flops = ModelMath.TrainingFlopsPerToken(model, seq);
Console.WriteLine(JsonSerializer.Serialize(new
{
    impl = "cptlab", model = name, dtype, computed = chosen.Dtype, why = chosen.DtypeReason, parameters = ModelMath.ParameterCount(model), batch, seq,
    threads = chosen.Threads, steps = measured.Count, tokens_per_s = Math.Round(tps, 1), mfu = Math.Round(tps * flops / peak, 4),
    peak_gflops = Math.Round(peak / 1e9, 1), cpu = CpuInfo.Current.ToString(), omp_wait_policy = TorchRuntime.OmpWaitPolicy, log = numerics,
}));

/// <summary>Uniform random tokens: the work per step does not depend on the data.</summary>
sealed class RandomTokens(int seqLen, int vocab) : ITrainingData
{
    readonly Random _rng = new(1);
    public int SequenceLength => seqLen;
    public IReadOnlyList<ValidationSet> Validation => [];
    public int[] Next() => Enumerable.Range(0, seqLen + 1).Select(_ => _rng.Next(vocab)).ToArray();
    public string SaveState() => "{}";
    public void RestoreState(string state) { }
}
