using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Model.Hardware;

/// <summary>What the model is doing: training (forward and backward with float32 master weights) or inference (forward only).</summary>
public enum Workload { Training, Inference }

/// <summary>A compute dtype and the reason for it, to print and to record in the run.</summary>
public sealed record PrecisionChoice(ScalarType Dtype, string Reason)
{
    public string Name => DtypeNames.HfName(Dtype);
}

/// <summary>
/// <c>dtype: auto</c>, the default everywhere: bf16 compute only where the CPU has native bf16 matrix instructions
/// (AMX-BF16, AVX512-BF16, Arm BF16) <em>and</em> measurement on this machine shows it faster than fp32 —
/// first a matmul of each dtype, then, when bf16 wins that, one step of the model's own shapes (forward and
/// backward with the master-weight copies, for training; forward, for inference). Otherwise float32. Both
/// measurements are cached per CPU kind, LibTorch version and thread count (<see cref="MachineCache"/>), so the
/// choice costs a fraction of a second once per machine. Where bf16 is emulated (AVX2 only) it was measured 17×
/// slower than fp32 in training, so the margin for bf16 is the step measurement itself, not a guess.
/// </summary>
public static class ComputePrecision
{
    public const string Auto = "auto";

    /// <summary>bf16 must beat fp32 matmul by this factor before the model step is measured at all.</summary>
    const double MatmulMargin = 1.1;

    public static bool IsAuto(string? dtype) => dtype is null || string.Equals(dtype, Auto, StringComparison.OrdinalIgnoreCase);

    /// <summary>The faster compute dtype for <paramref name="model"/> on this machine at LibTorch's current thread count.</summary>
    /// <param name="tokens">Tokens per forward pass in the real work (micro-batch × sequence length); the step measurement uses up to this many.</param>
    public static PrecisionChoice Choose(LlamaConfig model, Workload workload, int tokens = 2048, int seqLen = 256) =>
        Decide(CpuInfo.Current, MatmulRate.Get(ScalarType.Float32), MatmulRate.Get(ScalarType.BFloat16), workload,
            () => StepTimes(model, workload, tokens, seqLen));

    /// <summary>The rule, given the CPU, both matmul rates and (only called when needed) the model's step times in fp32 and bf16.</summary>
    public static PrecisionChoice Decide(CpuInfo cpu, MatmulMeasurement f32, MatmulMeasurement b16, Workload workload, Func<(double F32, double Bf16)> stepSeconds)
    {
        string rates = string.Create(CultureInfo.InvariantCulture, $"bf16 matmul {b16.Gflops:0.#} GFLOP/s vs fp32 {f32.Gflops:0.#}");
        if (!cpu.HasNativeBf16Matmul)
            return new PrecisionChoice(ScalarType.Float32, $"{cpu.Bf16Support}: {rates} → float32");
        if (b16.Flops < MatmulMargin * f32.Flops)
            return new PrecisionChoice(ScalarType.Float32, $"{cpu.Bf16Support}, but {rates} → float32");
        var (t32, t16) = stepSeconds();
        var step = string.Create(CultureInfo.InvariantCulture,
            $"one {(workload == Workload.Training ? "training" : "forward")} step of this model {t16 * 1e3:0.#} ms in bf16 vs {t32 * 1e3:0.#} ms in fp32");
        return t16 < t32
            ? new PrecisionChoice(ScalarType.BFloat16, $"{cpu.Bf16Support}: {rates}; {step} → bfloat16")
            : new PrecisionChoice(ScalarType.Float32, $"{cpu.Bf16Support}: {rates}, but {step} → float32");
    }

    /// <summary>
    /// A dtype as a config or option gives it: "auto" is the faster on this machine for <paramref name="model"/>'s
    /// shapes (the config is only read then); an explicit dtype is honoured, with a warning through
    /// <paramref name="warn"/> when it measured much slower here.
    /// </summary>
    public static PrecisionChoice Resolve(string? dtype, Func<LlamaConfig> model, Workload workload, int tokens, int seqLen, Action<string>? warn)
    {
        if (IsAuto(dtype))
        {
            var choice = Choose(model(), workload, tokens, seqLen);
            return choice with { Reason = "auto: " + choice.Reason };
        }
        var asked = DtypeNames.Parse(dtype!) ?? throw new Core.CptLabException($"dtype '{dtype}' is not one of auto, float32, bfloat16, float16");
        if (SlowDtypeWarning(asked) is { } w) warn?.Invoke(w);
        return new PrecisionChoice(asked, "as asked");
    }

    /// <summary>
    /// The dtype to run the model in <paramref name="modelDir"/> for inference (serve, chat, generate, eval):
    /// <paramref name="requested"/> when given, otherwise the faster on this machine, whatever dtype the checkpoint
    /// is stored in (<see cref="Resolve"/>).
    /// </summary>
    public static PrecisionChoice ForInference(string modelDir, ScalarType? requested, Action<string>? warn = null)
    {
        if (!Directory.Exists(modelDir)) throw new Core.CptLabException($"{modelDir}: model directory not found");
        return Resolve(requested is { } r ? DtypeNames.HfName(r) : Auto, () => LlamaConfig.Load(Path.Combine(modelDir, HfCheckpoint.ConfigFile)),
            Workload.Inference, tokens: 64, seqLen: 64, warn);
    }

    /// <summary>
    /// An explicit dtype is honoured; this returns a warning when it measured much slower here (matmul at least 2×
    /// slower than the other dtype), null otherwise.
    /// </summary>
    public static string? SlowDtypeWarning(ScalarType requested)
    {
        if (requested is not (ScalarType.BFloat16 or ScalarType.Float32)) return null;
        var other = requested == ScalarType.BFloat16 ? ScalarType.Float32 : ScalarType.BFloat16;
        var mine = MatmulRate.Get(requested);
        var theirs = MatmulRate.Get(other);
        if (!(theirs.Flops > 2 * mine.Flops)) return null;
        return string.Create(CultureInfo.InvariantCulture,
            $"warning: {DtypeNames.HfName(requested)} was asked for, but on this CPU ({CpuInfo.Current.Bf16Support}) its matmul runs {mine.Gflops:0.#} GFLOP/s " +
            $"against {theirs.Gflops:0.#} for {DtypeNames.HfName(other)}: expect it about {theirs.Flops / mine.Flops:0}× slower; dtype auto would choose {DtypeNames.HfName(other)}");
    }

    /// <summary>Seconds of one step in fp32 and in bf16 for the model's shapes (cached).</summary>
    static (double F32, double Bf16) StepTimes(LlamaConfig model, Workload workload, int tokens, int seqLen)
    {
        var proxy = Proxy(model);
        int t = Math.Clamp(seqLen, 8, 512);
        int b = Math.Max(1, Math.Min(tokens, 4096) / t);
        // Keep one measured step below ~20 GFLOP: a few tenths of a second on a CPU with native bf16.
        double perToken = (workload == Workload.Training ? 6.0 : 2.0) * ModelMath.ParameterCount(proxy);
        while (b > 1 && b * t * perToken > 2e10) b /= 2;
        while (t > 8 && b * t * perToken > 2e10) t /= 2;
        var key = string.Create(CultureInfo.InvariantCulture,
            $"step|{CpuInfo.Current.Fingerprint}|torch {__version__}|threads {get_num_threads()}|{workload}|" +
            $"h{proxy.HiddenSize} i{proxy.IntermediateSize} q{proxy.NumAttentionHeads} kv{proxy.NumKeyValueHeads} d{proxy.HeadDim} L{proxy.NumHiddenLayers} V{proxy.VocabSize} B{b} T{t}");
        if (MachineCache.Get(key) is { } o && o["f32_ms"]?.GetValue<double>() is { } c32 && o["bf16_ms"]?.GetValue<double>() is { } c16)
            return (c32 / 1e3, c16 / 1e3);
        double m32 = Measure(proxy, ScalarType.Float32, workload, b, t);
        double m16 = Measure(proxy, ScalarType.BFloat16, workload, b, t);
        MachineCache.Set(key, new JsonObject
        {
            ["f32_ms"] = Math.Round(m32 * 1e3, 3), ["bf16_ms"] = Math.Round(m16 * 1e3, 3),
            ["when"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture), ["cpu"] = CpuInfo.Current.ModelName,
        });
        return (m32, m16);
    }

    /// <summary>The model cut to at most two layers and a 32k vocabulary: the same per-layer shapes at a bounded cost.</summary>
    static LlamaConfig Proxy(LlamaConfig c) => c with { NumHiddenLayers = Math.Min(c.NumHiddenLayers, 2), VocabSize = Math.Min(c.VocabSize, 32_768) };

    /// <summary>Best of three timed steps after one warm-up, done as the trainer (or the server) does them.</summary>
    static double Measure(LlamaConfig proxy, ScalarType dtype, Workload workload, int b, int t)
    {
        using var scope = NewDisposeScope();
        using var master = new LlamaForCausalLM(proxy, ScalarType.Float32);
        master.InitWeights(1);
        var compute = dtype == ScalarType.Float32 ? master : new LlamaForCausalLM(proxy, dtype);
        try
        {
            var pairs = master.parameters().Zip(compute.parameters()).ToList();
            var buffers = pairs.Select(p => zeros_like(p.First)).ToList();
            var ids = randint(proxy.VocabSize, [b, t + 1]);
            var input = ids.narrow(1, 0, t);
            var target = ids.narrow(1, 1, t).reshape(-1);
            double best = double.MaxValue;
            for (int rep = 0; rep < 4; rep++)
            {
                var sw = Stopwatch.StartNew();
                using (NewDisposeScope())
                {
                    if (workload == Workload.Inference)
                    {
                        using var _ = no_grad();
                        compute.forward(input);
                    }
                    else
                    {
                        if (!ReferenceEquals(compute, master))
                            using (no_grad()) foreach (var (m, c) in pairs) c.copy_(m);
                        var logits = compute.forward(input);
                        F.cross_entropy(logits.view(-1, proxy.VocabSize), target).backward();
                        using (no_grad())
                            for (int i = 0; i < pairs.Count; i++)
                                if (pairs[i].Second.grad is { } g) buffers[i].add_(g.to(ScalarType.Float32));
                        compute.zero_grad();
                    }
                }
                if (rep > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return best;
        }
        finally
        {
            if (!ReferenceEquals(compute, master)) compute.Dispose();
        }
    }
}
