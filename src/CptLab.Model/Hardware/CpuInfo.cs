using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace CptLab.Model.Hardware;

/// <summary>
/// What the CPU this process runs on can do, as far as precision choice cares: its model name, its
/// architecture and the instruction-set flags the kernel reports (<c>/proc/cpuinfo</c> on Linux: "flags" on
/// x86, "Features" on Arm). Native bf16 matrix products exist on x86 with AMX-BF16 or AVX512-BF16 and on Arm
/// with the BF16 extension (BFMMLA); everywhere else LibTorch emulates bf16 through fp32 conversions, which
/// was measured 17× slower than fp32 on an AVX2-only AMD EPYC.
/// </summary>
public sealed record CpuInfo(string ModelName, string Architecture, IReadOnlySet<string> Flags)
{
    static readonly Lazy<CpuInfo> Lazy = new(Read);

    /// <summary>The CPU of this machine (read once).</summary>
    public static CpuInfo Current => Lazy.Value;

    /// <summary>Flags that mean native bf16 matrix-multiply instructions.</summary>
    static readonly string[] Bf16Flags = ["amx_bf16", "avx512_bf16", "bf16"];

    public bool HasNativeBf16Matmul => Bf16Flags.Any(Flags.Contains);

    /// <summary>The CPU's bf16 capability in a few words: "AMX-BF16", "AVX512-BF16", "Arm BF16", "AVX2 only", ….</summary>
    public string Bf16Support =>
        Flags.Contains("amx_bf16") ? "AMX-BF16" :
        Flags.Contains("avx512_bf16") ? "AVX512-BF16" :
        Flags.Contains("bf16") ? "Arm BF16" :
        Flags.Contains("avx512f") ? "AVX-512 without BF16" :
        Flags.Contains("avx2") ? "AVX2 only, no AVX-512 or AMX" :
        Flags.Contains("asimd") ? "Arm NEON without BF16" :
        Flags.Count == 0 ? "instruction set unknown" : "no bf16 or AVX2 instructions";

    /// <summary>
    /// A short stable id of this CPU kind (model name, architecture and the flags that matter for speed): the key
    /// under which measurements are cached, so a machine of another kind measures again.
    /// </summary>
    public string Fingerprint
    {
        get
        {
            var relevant = Flags.Where(f => f.StartsWith("avx", StringComparison.Ordinal) || f.StartsWith("amx", StringComparison.Ordinal) ||
                                            f is "fma" or "bf16" or "i8mm" or "sve" or "sve2" or "asimd" or "f16c").Order(StringComparer.Ordinal);
            var text = $"{Architecture}|{ModelName}|{string.Join(',', relevant)}";
            return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
        }
    }

    /// <summary>One line for logs and benchmark records: model name and bf16 capability.</summary>
    public override string ToString() => $"{ModelName} ({Architecture}; {Bf16Support})";

    /// <summary>Parses the text of /proc/cpuinfo (x86 or Arm); the first processor's entry is taken as the machine's.</summary>
    public static CpuInfo Parse(string cpuinfo, string architecture)
    {
        string? model = null, flags = null, implementer = null, part = null;
        foreach (var raw in cpuinfo.Split('\n'))
        {
            var colon = raw.IndexOf(':');
            if (colon < 0) continue;
            var key = raw[..colon].Trim();
            var value = raw[(colon + 1)..].Trim();
            switch (key)
            {
                case "model name" or "Model" or "Hardware": model ??= value; break;
                case "flags" or "Features": flags ??= value; break;
                case "CPU implementer": implementer ??= value; break;
                case "CPU part": part ??= value; break;
            }
        }
        model ??= implementer is not null ? $"Arm CPU implementer {implementer} part {part}" : "unknown CPU";
        var set = (flags ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        return new CpuInfo(model, architecture, set);
    }

    static CpuInfo Read()
    {
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        const string path = "/proc/cpuinfo";
        if (OperatingSystem.IsLinux() && File.Exists(path))
        {
            try { return Parse(File.ReadAllText(path), arch); }
            catch (IOException) { }
        }
        // Elsewhere: what .NET's intrinsics report. They name no bf16 extension, so bf16 is then chosen by measurement alone
        // only where such a flag is found; without one the CPU is treated as having none.
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) found.Add("avx2");
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported) found.Add("fma");
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) found.Add("avx512f");
        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported) found.Add("asimd");
        return new CpuInfo(RuntimeInformation.OSDescription, arch, found);
    }
}
