using System.Diagnostics;
using CptLab.Model;
using static TorchSharp.torch;

// Decode attention over the paged KV cache (issue 14): the gather path (index_select every sequence's cache into padded
// copies, two batched matmuls) against the in-place kernel (PagedDecodeAttention.InPlace: walks the block tables, reads the
// pool where it lies), side by side in one run, float32, cpu-20m's shape (8 heads over 4 kv heads of dim 64), block size 16.
//  1. One layer's decode attention at batch 32 with 128, 1024 and 4096 positions per sequence (blocks of different
//     sequences interleaved in the pool, random keys and values); the kernel at 1 thread and at LibTorch's thread count.
//  2. A whole DecodePaged step of cpu-20m (random weights) at B = 32 after prefilling S - 1 positions, S = 128 and 1024, the
//     two paths alternating step by step on the same sequences (each step adds one position: S, S+1, ...).
// Each time is the median of --repeats runs after warm-up; ratio = gather ÷ in place (above 1: the kernel is faster).
//
//   dotnet build bench/CptLab.PagedAttention.Bench -c Release
//   dotnet bench/CptLab.PagedAttention.Bench/bin/Release/net10.0/CptLab.PagedAttention.Bench.dll [--threads 2] [--repeats 15]

int threads = 2, repeats = 15;
for (int i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--threads": threads = int.Parse(args[++i]); break;
        case "--repeats": repeats = int.Parse(args[++i]); break;
        default: throw new ArgumentException($"unknown argument {args[i]}; use --threads N --repeats N");
    }
TorchRuntime.Initialise(threads);
var config = Flavors.Get("cpu-20m");
const int batch = 32, blockSize = 16;
Console.WriteLine($"paged decode attention bench: {get_num_threads()} LibTorch thread(s), float32, B {batch}, block size {blockSize}, " +
    $"{config.NumAttentionHeads} heads / {config.NumKeyValueHeads} kv heads × {config.HeadDim}; median of {repeats}");
Console.WriteLine($"cpu: {CptLab.Model.Hardware.CpuInfo.Current.ModelName}; load average {File.ReadAllText("/proc/loadavg").Trim()}");

using (no_grad())
{
    Console.WriteLine("one layer's decode attention (ms): gather | in place, 1 thread | in place, LibTorch threads | gather ÷ in place");
    foreach (int s in new[] { 128, 1024, 4096 }) LayerAttention(config, batch, s, blockSize, threads, repeats);
    Console.WriteLine("whole DecodePaged step of cpu-20m (ms): gather | in place | gather ÷ in place");
    foreach (int s in new[] { 128, 1024 }) DecodeStep(config, batch, s, blockSize, repeats);
}
Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");

static void LayerAttention(LlamaConfig config, int batch, int length, int blockSize, int threads, int repeats)
{
    using var scope = NewDisposeScope();
    var one = config with { NumHiddenLayers = 1 };
    using var pool = new KvBlockPool(one, batch * ((length + blockSize - 1) / blockSize) + 1, blockSize, ScalarType.Float32);
    var gen = new Generator(5);
    pool.Keys(0).copy_(randn(pool.Keys(0).shape, generator: gen));
    pool.Values(0).copy_(randn(pool.Values(0).shape, generator: gen));
    // Ragged: sequence i attends to length - i positions; blocks taken one per sequence in turn, so the tables interleave.
    var lengths = Enumerable.Range(0, batch).Select(i => length - i).ToArray();
    var seqs = lengths.Select(_ => new PagedSequence(pool)).ToArray();
    for (int round = 0; round < pool.BlocksFor(length); round++)
        for (int i = 0; i < batch; i++)
            if (seqs[i].Blocks.Count < pool.BlocksFor(lengths[i]) && !seqs[i].Reserve((round + 1) * blockSize))
                throw new InvalidOperationException("pool too small");
    int stride = seqs.Max(q => q.Blocks.Count);
    var table = new int[batch * stride];
    var read = new long[batch * length];
    var valid = new bool[batch * length];
    for (int i = 0; i < batch; i++)
    {
        for (int j = 0; j < seqs[i].Blocks.Count; j++) table[i * stride + j] = seqs[i].Blocks[j];
        for (int p = 0; p < lengths[i]; p++) (read[i * length + p], valid[i * length + p]) = (seqs[i].Slot(p), true);
    }
    var tables = new PagedBlockTables(table, lengths, stride);
    var slots = tensor(read).view(batch, length);
    var mask = tensor(valid).view(batch, 1, 1, length);
    var q = randn([batch, config.NumAttentionHeads, 1, config.HeadDim], generator: gen);              // (B, nh, 1, hd)
    int nkv = config.NumKeyValueHeads;
    double gather = Median(repeats, () => PagedDecodeAttention.Gather(q, pool.Keys(0), pool.Values(0), slots, mask, nkv));
    double single = Median(repeats, () => PagedDecodeAttention.InPlace(q, pool.Keys(0), pool.Values(0), tables, blockSize, nkv, threads: 1));
    double parallel = Median(repeats, () => PagedDecodeAttention.InPlace(q, pool.Keys(0), pool.Values(0), tables, blockSize, nkv));
    var diff = (PagedDecodeAttention.Gather(q, pool.Keys(0), pool.Values(0), slots, mask, nkv)
        - PagedDecodeAttention.InPlace(q, pool.Keys(0), pool.Values(0), tables, blockSize, nkv)).abs().max().item<float>();
    Console.WriteLine($"  S {length,5}: {gather,8:F3} | {single,8:F3} | {parallel,8:F3} ({get_num_threads()}) | {gather / Math.Min(single, parallel):F2}×" +
        $"   (max |diff| {diff:E1}; K+V read {2.0 * lengths.Sum() * nkv * config.HeadDim * 4 / 1e6:F0} MB)");
}

static void DecodeStep(LlamaConfig config, int batch, int length, int blockSize, int repeats)
{
    using var model = new LlamaForCausalLM(config, ScalarType.Float32);
    model.InitWeights(1);
    int steps = 2 * (repeats + 3);
    using var pool = new KvBlockPool(config, batch * ((length + steps + blockSize - 1) / blockSize) + 1, blockSize, ScalarType.Float32);
    var seqs = Enumerable.Range(0, batch).Select(_ => new PagedSequence(pool)).ToList();
    var rng = new Random(3);
    var sw = Stopwatch.StartNew();
    foreach (var s in seqs)
    {
        var prompt = Enumerable.Range(0, length - 1).Select(_ => rng.Next(config.VocabSize)).ToArray();
        if (!s.Reserve(prompt.Length)) throw new InvalidOperationException("pool too small");
        model.PrefillPaged(s, prompt, allPositions: false).Dispose();
    }
    var prefill = sw.Elapsed.TotalSeconds;
    var times = new Dictionary<PagedDecodePath, List<double>> { [PagedDecodePath.Gather] = [], [PagedDecodePath.InPlace] = [] };
    var ids = Enumerable.Range(0, batch).Select(_ => rng.Next(config.VocabSize)).ToArray();
    for (int step = 0; step < steps; step++)
    {
        var path = step % 2 == 0 ? PagedDecodePath.Gather : PagedDecodePath.InPlace;
        model.DecodePath = path;
        foreach (var s in seqs) if (!s.Reserve(1)) throw new InvalidOperationException("pool too small");
        using var scope = NewDisposeScope();
        var t0 = Stopwatch.GetTimestamp();
        model.DecodePaged(seqs, ids);
        var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (step >= 6) times[path].Add(ms);                                                          // 3 warm-up steps each
    }
    double gather = MedianOf(times[PagedDecodePath.Gather]), inPlace = MedianOf(times[PagedDecodePath.InPlace]);
    Console.WriteLine($"  S {length,5}: {gather,8:F2} | {inPlace,8:F2} | {gather / inPlace:F2}×   (prefill {prefill:F1} s; {times[PagedDecodePath.Gather].Count} steps each, alternating)");
}

static double Median(int repeats, Func<Tensor> run)
{
    var times = new List<double>();
    for (int i = 0; i < repeats + 3; i++)
    {
        using var scope = NewDisposeScope();
        var t0 = Stopwatch.GetTimestamp();
        run();
        var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (i >= 3) times.Add(ms);
    }
    return MedianOf(times);
}

static double MedianOf(List<double> times)
{
    var sorted = times.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}
