using System.Diagnostics;
using static TorchSharp.torch;

namespace CptLab.Training;

/// <summary>
/// The machine's peak matrix-product rate, measured in this process with the current thread count: MFU is
/// model FLOPs per second over this number, so both sides of the ratio see the same machine state.
/// </summary>
public static class PeakFlops
{
    static readonly Dictionary<(ScalarType, int), double> Cache = new();

    /// <summary>FLOP/s of an n×n×n matmul in <paramref name="dtype"/>, best of several timed repeats.</summary>
    public static double Measure(ScalarType dtype, int n = 1024, int repeats = 8)
    {
        var key = (dtype, get_num_threads());
        lock (Cache)
            if (Cache.TryGetValue(key, out var cached)) return cached;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var a = randn(n, n).to(dtype);
        var b = randn(n, n).to(dtype);
        for (int i = 0; i < 2; i++) a.matmul(b).Dispose(); // warm up
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            a.matmul(b).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        double flops = 2.0 * n * n * n / best;
        lock (Cache) Cache[key] = flops;
        return flops;
    }
}
