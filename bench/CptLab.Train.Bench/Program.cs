// Training throughput of CptLab's trainer: tokens/s and MFU for one model size and precision, printed as one
// JSON line. bench/train-bench.sh runs it side by side with PyTorch (bench/train_torch.py) on the same
// configuration, batch and thread count, and prints the ratios.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CptLab.Core;
using CptLab.Model;
using CptLab.Training;

var opts = args.Select((a, i) => (a, i)).Where(x => x.a.StartsWith("--")).ToDictionary(x => x.a[2..], x => args[x.i + 1]);
string flavor = opts.GetValueOrDefault("flavor", "cpu-7m");
string dtype = opts.GetValueOrDefault("dtype", "float32");
int steps = int.Parse(opts.GetValueOrDefault("steps", "12"), CultureInfo.InvariantCulture);
int warmup = int.Parse(opts.GetValueOrDefault("warmup", "3"), CultureInfo.InvariantCulture);
int batch = int.Parse(opts.GetValueOrDefault("batch", "8"), CultureInfo.InvariantCulture);
int seq = int.Parse(opts.GetValueOrDefault("seq", "256"), CultureInfo.InvariantCulture);
int threads = int.Parse(opts.GetValueOrDefault("threads", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

var model = Flavors.Get(flavor);
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
var hooks = new TrainerHooks { Progress = new SyncProgress<TrainProgress>(_ => { times.Add(sw.Elapsed.TotalSeconds); sw.Restart(); }) };
Trainer.Run(config, new RandomTokens(seq, model.VocabSize), Path.Combine(dir, "run"), resume: false, hooks);
Directory.Delete(dir, recursive: true);

// Median step time over the measured steps (the first `warmup` are excluded: allocation, kernel selection).
var measured = times.Skip(warmup).Order().ToList();
double stepSeconds = measured[measured.Count / 2];
double tps = batch * seq / stepSeconds;
double peak = PeakFlops.Measure(DtypeNames.Parse(dtype)!.Value);
double flops = ModelMath.TrainingFlopsPerToken(model, seq);
Console.WriteLine(JsonSerializer.Serialize(new
{
    impl = "cptlab", flavor, dtype, parameters = ModelMath.ParameterCount(model), batch, seq, threads,
    tokens_per_s = Math.Round(tps, 1), mfu = Math.Round(tps * flops / peak, 4), peak_gflops = Math.Round(peak / 1e9, 1),
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
