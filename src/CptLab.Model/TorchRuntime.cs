using CptLab.Core;
using TorchSharp;

namespace CptLab.Model;

/// <summary>Process-wide LibTorch set-up: loading the native library with a clear error, threads, determinism.</summary>
public static class TorchRuntime
{
    static readonly object Gate = new();
    static bool _initialised;

    /// <summary>
    /// Loads LibTorch (once) and sets the intra-op thread count (0 = leave LibTorch's default, all cores).
    /// A native library that fails to load becomes a <see cref="CptLabException"/> pointing at the docs.
    /// </summary>
    public static void Initialise(int threads = 0)
    {
        lock (Gate)
        {
            if (!_initialised)
            {
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
            if (threads > 0) torch.set_num_threads(threads);
        }
    }
}
