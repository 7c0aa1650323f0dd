using System.Runtime.InteropServices;
using CptLab.Core;
using TorchSharp;

namespace CptLab.Model;

/// <summary>Process-wide LibTorch set-up: loading the native library with a clear error, threads, the OpenMP wait policy.</summary>
public static partial class TorchRuntime
{
    static readonly object Gate = new();
    static bool _initialised;

    /// <summary>
    /// Loads LibTorch (once) and sets the intra-op thread count (0 = leave it as it is: LibTorch's default, all
    /// cores, until a caller sets one). A native library that fails to load becomes a <see cref="CptLabException"/>
    /// pointing at the docs.
    /// </summary>
    public static void Initialise(int threads = 0)
    {
        lock (Gate)
        {
            if (!_initialised)
            {
                PrepareNativeEnvironment();
                try
                {
                    torch.InitializeDeviceType(DeviceType.CPU);
                }
                catch (Exception e) when (e is NotSupportedException or TypeInitializationException or DllNotFoundException)
                {
                    throw new CptLabException(
                        "LibTorch's native library failed to load. On Linux with a libstdc++ older than GCC 13, the build patches " +
                        "libLibTorchSharp.so in the output folder; rebuild with `dotnet build` (see docs/torchsharp-on-linux.md). Detail: " +
                        e.GetBaseException().Message.Split('\n')[0], e);
                }
                _initialised = true;
            }
            if (threads > 0 && torch.get_num_threads() != threads) torch.set_num_threads(threads);
        }
    }

    /// <summary>The OpenMP wait policy this process runs LibTorch with (set before LibTorch loads).</summary>
    public static string OmpWaitPolicy => Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "libgomp default";

    /// <summary>
    /// LibTorch's OpenMP runtime (libgomp) reads its settings with getenv when it is loaded. By default its idle
    /// threads spin for a while after each parallel region; on a shared machine that spinning takes cores from
    /// other work (another sweep run) and, measured in bench/threads-bench.sh, slows both. Unless the user set
    /// OMP_WAIT_POLICY or GOMP_SPINCOUNT, CptLab sets OMP_WAIT_POLICY=PASSIVE. .NET's
    /// Environment.SetEnvironmentVariable does not reach native getenv on Unix, so this calls libc's setenv,
    /// and must run before the first LibTorch call: the CLI calls it first thing in Main.
    /// </summary>
    public static void PrepareNativeEnvironment()
    {
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null || Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is not null) return;
        SetNative("OMP_WAIT_POLICY", "PASSIVE");
    }

    static void SetNative(string name, string value)
    {
        Environment.SetEnvironmentVariable(name, value); // .NET's own view, and children started from here
        if (OperatingSystem.IsWindows()) return;         // there the runtime's setting is the process's
        _ = setenv(name, value, 1);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
