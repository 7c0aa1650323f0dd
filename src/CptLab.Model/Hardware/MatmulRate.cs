using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace CptLab.Model.Hardware;

/// <summary>One dtype's matrix-product rate on this machine at one thread count.</summary>
/// <param name="Flops">FLOP/s: 2n³ over the best time of an n×n×n matmul.</param>
/// <param name="OthersBusy">Cores' worth of other processes' load while it was measured (null: unknown).</param>
/// <param name="Source">"measured" (n×n×n matmul) or "observed" (a training step's model FLOPs beat the matmul).</param>
public sealed record MatmulMeasurement(ScalarType Dtype, int Threads, double Flops, int N, double? OthersBusy, DateTimeOffset When, string Source)
{
    /// <summary>Measured with less than a quarter core of other load: a number fit to be called the peak.</summary>
    public bool Quiet => OthersBusy is < QuietLoad;
    public const double QuietLoad = 0.25;

    public double Gflops => Flops / 1e9;

    /// <summary>"fp32 peak 95.3 GFLOP/s (1024³ matmul, 2 threads, measured 2026-12-01 on a quiet machine)".</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{DtypeNames.HfName(Dtype)} peak {Gflops:0.0} GFLOP/s ({(Source == "observed" ? "raised to a training step's rate" : $"{N}³ matmul")}, {Threads} thread(s), " +
        $"{Source} {When:yyyy-MM-dd} {(OthersBusy is null ? "under unknown load" : Quiet ? "on a quiet machine" : $"with {OthersBusy:0.0} cores busy elsewhere")})");
}

/// <summary>
/// Matrix-product rates of this machine per dtype and thread count: the basis of the precision choice and the
/// peak that MFU divides by. Measured once per CPU kind and LibTorch version and cached (<see cref="MachineCache"/>).
/// A measurement taken under load is used but replaced by the next one made on a quiet machine; the cache keeps the
/// highest rate seen, and a training step that reaches more than it raises it (<see cref="Observe"/>), so MFU
/// computed against it can never exceed 100%.
/// </summary>
public static class MatmulRate
{
    /// <summary>The rate of <paramref name="dtype"/> with LibTorch's current thread count: cached, or measured now.</summary>
    public static MatmulMeasurement Get(ScalarType dtype)
    {
        TorchRuntime.Initialise();
        int threads = get_num_threads();
        var key = Key(dtype, threads);
        var cached = Parse(MachineCache.Get(key), dtype, threads);
        if (cached is { Quiet: true }) return cached;
        var fresh = Measure(dtype);
        // The higher rate is kept; a quiet fresh measurement vouches for it, so it is not measured again each call.
        var best = cached is not null && cached.Flops > fresh.Flops ? (fresh.Quiet ? cached with { OthersBusy = fresh.OthersBusy } : cached) : fresh;
        Save(best);
        return best;
    }

    /// <summary>
    /// A training step reached <paramref name="modelFlops"/> FLOP/s: when that is above the recorded peak, the
    /// peak was measured low (under load) and is raised to it. Returns the peak to divide by.
    /// </summary>
    public static MatmulMeasurement Observe(MatmulMeasurement peak, double modelFlops)
    {
        if (!(modelFlops > peak.Flops)) return peak;
        var raised = peak with { Flops = modelFlops, When = DateTimeOffset.UtcNow, Source = "observed" };
        Save(raised);
        return raised;
    }

    /// <summary>Records a measurement as this machine's rate for its dtype and thread count.</summary>
    public static void Save(MatmulMeasurement m) => MachineCache.Set(Key(m.Dtype, m.Threads), ToJson(m));

    /// <summary>
    /// Measures now: a size is picked so one product takes tens of milliseconds (1024 where the dtype is fast,
    /// smaller where it is emulated), then the best of several timed repeats, with other processes' load read
    /// over the same time.
    /// </summary>
    public static MatmulMeasurement Measure(ScalarType dtype)
    {
        TorchRuntime.Initialise();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var load = new LoadWindow();
        int n = 256;
        double seconds = Best(dtype, n, repeats: 2);
        // Grow while one product stays under ~40 ms.
        while (n < 1024 && seconds * 8 < 0.04) { n *= 2; seconds = Best(dtype, n, repeats: 2); }
        seconds = Math.Min(seconds, Best(dtype, n, repeats: Math.Clamp((int)(0.3 / seconds), 3, 10)));
        double flops = 2.0 * n * n * n / seconds;
        return new MatmulMeasurement(dtype, get_num_threads(), flops, n, load.OthersBusy(), DateTimeOffset.UtcNow, "measured");
    }

    static double Best(ScalarType dtype, int n, int repeats)
    {
        using var scope = NewDisposeScope();
        var a = randn(n, n).to(dtype);
        var b = randn(n, n).to(dtype);
        a.matmul(b).Dispose(); // warm up: allocation, kernel selection
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            a.matmul(b).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    static string Key(ScalarType dtype, int threads) =>
        $"matmul|{CpuInfo.Current.Fingerprint}|torch {__version__}|{DtypeNames.HfName(dtype)}|threads {threads}";

    static JsonObject ToJson(MatmulMeasurement m) => new()
    {
        ["gflops"] = Math.Round(m.Gflops, 3), ["n"] = m.N, ["others_busy"] = m.OthersBusy is { } b ? Math.Round(b, 3) : null,
        ["when"] = m.When.ToString("O", CultureInfo.InvariantCulture), ["source"] = m.Source, ["cpu"] = CpuInfo.Current.ModelName,
    };

    static MatmulMeasurement? Parse(JsonObject? o, ScalarType dtype, int threads)
    {
        try
        {
            if (o is null) return null;
            return new MatmulMeasurement(dtype, threads, o["gflops"]!.GetValue<double>() * 1e9, o["n"]!.GetValue<int>(),
                o["others_busy"]?.GetValue<double>(), DateTimeOffset.Parse(o["when"]!.GetValue<string>(), CultureInfo.InvariantCulture),
                o["source"]?.GetValue<string>() ?? "measured");
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        {
            return null; // an entry of another shape: measure again
        }
    }
}

/// <summary>Other processes' load over the time between construction and <see cref="OthersBusy"/>.</summary>
internal sealed class LoadWindow
{
    readonly CpuLoad.Reading? _start = CpuLoad.Read();

    public double? OthersBusy() => _start is { } a && CpuLoad.Read() is { } b ? CpuLoad.OthersBusy(a, b, CpuLoad.AvailableCores) : null;
}
