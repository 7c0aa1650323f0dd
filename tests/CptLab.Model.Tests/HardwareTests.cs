using System.Diagnostics;
using CptLab.Model.Hardware;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

/// <summary>
/// CPU detection on real /proc/cpuinfo texts, the load reading, the precision rule and the machine cache.
/// </summary>
public class HardwareTests
{
    // The first processor's entry of three real machines (flag lists as their kernels print them).
    const string AmdEpycAvx2 = """
        processor	: 0
        vendor_id	: AuthenticAMD
        model name	: AMD EPYC
        flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr wbnoinvd arat umip pku ospke vaes vpclmulqdq rdpid fsrm

        processor	: 1
        model name	: AMD EPYC
        """;

    const string IntelSapphireRapids = """
        processor	: 0
        vendor_id	: GenuineIntel
        model name	: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
        flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 arat avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq la57 rdpid cldemote movdiri movdir64b fsrm md_clear serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities
        """;

    const string Graviton3 = """
        processor	: 0
        BogoMIPS	: 2100.00
        Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng
        CPU implementer	: 0x41
        CPU architecture: 8
        CPU variant	: 0x1
        CPU part	: 0xd40
        """;

    const string Graviton2 = """
        processor	: 0
        Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
        CPU implementer	: 0x41
        CPU part	: 0xd0c
        """;

    [Fact]
    public void Cpuinfo_of_real_machines_tells_native_bf16()
    {
        var amd = CpuInfo.Parse(AmdEpycAvx2, "x64");
        Assert.Equal("AMD EPYC", amd.ModelName);
        Assert.False(amd.HasNativeBf16Matmul);
        Assert.Equal("AVX2 only, no AVX-512 or AMX", amd.Bf16Support);

        var intel = CpuInfo.Parse(IntelSapphireRapids, "x64");
        Assert.True(intel.HasNativeBf16Matmul);
        Assert.Equal("AMX-BF16", intel.Bf16Support);

        var arm = CpuInfo.Parse(Graviton3, "arm64");
        Assert.True(arm.HasNativeBf16Matmul);
        Assert.Equal("Arm BF16", arm.Bf16Support);
        Assert.Contains("0xd40", arm.ModelName);

        var arm2 = CpuInfo.Parse(Graviton2, "arm64");
        Assert.False(arm2.HasNativeBf16Matmul);
        Assert.Equal("Arm NEON without BF16", arm2.Bf16Support);

        // Different CPU kinds never share cached measurements.
        Assert.Equal(4, new[] { amd, intel, arm, arm2 }.Select(c => c.Fingerprint).Distinct().Count());
    }

    [Fact]
    public void This_machine_is_read_from_proc_cpuinfo()
    {
        if (!File.Exists("/proc/cpuinfo")) return;
        var text = File.ReadAllText("/proc/cpuinfo");
        var flagsLine = text.Split('\n').First(l => l.StartsWith("flags", StringComparison.Ordinal) || l.StartsWith("Features", StringComparison.Ordinal));
        bool native = flagsLine.Split(' ', '\t').Any(f => f is "amx_bf16" or "avx512_bf16" or "bf16");
        Assert.Equal(native, CpuInfo.Current.HasNativeBf16Matmul);
    }

    [Fact]
    public void Proc_stat_busy_time_leaves_out_idle_nice_and_steal()
    {
        //        user nice system idle iowait irq softirq steal guest guest_nice
        var a = CpuLoad.ParseStat("cpu  1000 500 200 5000 100 10 20 30 0 0\ncpu0 500 250 100 2500 50 5 10 15 0 0\n");
        Assert.Equal(1000 + 200 + 10 + 20, a.Busy);
        Assert.Equal(1000 + 500 + 200 + 5000 + 100 + 10 + 20 + 30, a.Total);
        // Two cores, one second: another process kept one core busy, this process used a quarter of one.
        var r0 = new CpuLoad.Reading(Busy: 0, Total: 0, Self: 0);
        var r1 = new CpuLoad.Reading(Busy: 125, Total: 200, Self: 25);
        Assert.Equal(1.0, CpuLoad.OthersBusy(r0, r1, cores: 2), 6);
        // A 2-core container on a 64-core host that is half busy: half of its 2 cores' worth.
        Assert.Equal(1.0, CpuLoad.OthersBusy(r0, new CpuLoad.Reading(3200, 6400, 0), cores: 2), 6);
        Assert.Equal(2, CpuLoad.FreeCores(2, 0.3));
        Assert.Equal(1, CpuLoad.FreeCores(2, 0.6));
        Assert.Equal(1, CpuLoad.FreeCores(2, 2.0)); // never zero
        Assert.Equal(3, CpuLoad.FreeCores(4, 1.0));
    }

    [Fact]
    public void A_busy_process_is_seen_and_takes_a_core_away()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var busy = Process.Start(new ProcessStartInfo("sh", ["-c", "while :; do :; done"]))!;
        try
        {
            Thread.Sleep(200);
            var load = CpuLoad.OthersBusyCores(TimeSpan.FromMilliseconds(600));
            Assert.NotNull(load);
            // A lower bound only: other work on a shared machine can add to it, never take from it.
            Assert.True(load >= 0.7, $"a busy loop should show as about one core, read {load:0.00}");
            var choice = CpuLoad.ChooseThreads(0, load);
            Assert.True(choice.Threads <= Math.Max(1, CpuLoad.AvailableCores - 1), choice.Reason);
        }
        finally
        {
            busy.Kill();
        }
    }

    static MatmulMeasurement Rate(ScalarType dtype, double gflops) => new(dtype, 2, gflops * 1e9, 1024, 0.0, DateTimeOffset.UtcNow, "measured");

    [Fact]
    public void Bf16_only_with_native_instructions_and_a_faster_measured_step()
    {
        var amd = CpuInfo.Parse(AmdEpycAvx2, "x64");
        var intel = CpuInfo.Parse(IntelSapphireRapids, "x64");
        int stepCalls = 0;
        (double, double) Steps(double f32, double b16) { stepCalls++; return (f32, b16); }

        // Emulated bf16: float32, and the model step is not even measured.
        var c = ComputePrecision.Decide(amd, Rate(ScalarType.Float32, 95), Rate(ScalarType.BFloat16, 14), Workload.Training, () => Steps(1, 0.1));
        Assert.Equal(ScalarType.Float32, c.Dtype);
        Assert.Equal("AVX2 only, no AVX-512 or AMX: bf16 matmul 14 GFLOP/s vs fp32 95 → float32", c.Reason);
        Assert.Equal(0, stepCalls);

        // Native bf16 whose matmul does not beat fp32 (e.g. a thread count where it is memory-bound): float32.
        c = ComputePrecision.Decide(intel, Rate(ScalarType.Float32, 100), Rate(ScalarType.BFloat16, 105), Workload.Training, () => Steps(1, 0.1));
        Assert.Equal(ScalarType.Float32, c.Dtype);
        Assert.Equal(0, stepCalls);

        // Native and faster matmul: the model's own step decides, both ways. First the AMX machine of
        // bench/CptLab.Train.Bench/RESULTS.md (2026-11-28): matmul 921 vs 216 GFLOP/s, cpu-20m at 8 × 256 tokens
        // trained at 3,389 tokens/s in bf16 and 1,238 in fp32, i.e. steps of 604 and 1,654 ms: bf16 is chosen there.
        c = ComputePrecision.Decide(intel, Rate(ScalarType.Float32, 216), Rate(ScalarType.BFloat16, 921), Workload.Training, () => Steps(2048 / 1238.0, 2048 / 3389.0));
        Assert.Equal(ScalarType.BFloat16, c.Dtype);
        Assert.Equal("AMX-BF16: bf16 matmul 921 GFLOP/s vs fp32 216; one training step of this model 604.3 ms in bf16 vs 1654.3 ms in fp32 → bfloat16", c.Reason);
        c = ComputePrecision.Decide(intel, Rate(ScalarType.Float32, 100), Rate(ScalarType.BFloat16, 300), Workload.Inference, () => Steps(0.010, 0.011));
        Assert.Equal(ScalarType.Float32, c.Dtype);
        Assert.Equal(2, stepCalls);
    }

    [Fact]
    public void Auto_on_this_machine_picks_the_faster_dtype_it_measures()
    {
        using var cache = MachineCache.UseDirectory(Directory.CreateTempSubdirectory("cptlab-cache-").FullName);
        TorchRuntime.Initialise();
        var choice = ComputePrecision.Choose(TestModels.Tiny(), Workload.Training, tokens: 256, seqLen: 32);
        var f32 = MatmulRate.Get(ScalarType.Float32);
        var b16 = MatmulRate.Get(ScalarType.BFloat16);
        if (!CpuInfo.Current.HasNativeBf16Matmul) Assert.Equal(ScalarType.Float32, choice.Dtype);
        if (choice.Dtype == ScalarType.BFloat16) Assert.True(b16.Flops > f32.Flops, choice.Reason);
        Assert.Contains($"→ {choice.Name}", choice.Reason);
        Assert.True(File.Exists(MachineCache.FilePath));
    }

    [Fact]
    public void Matmul_rates_are_cached_and_a_low_peak_is_raised_by_what_training_reached()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-cache-").FullName;
        using var cache = MachineCache.UseDirectory(dir);
        TorchRuntime.Initialise();
        var first = MatmulRate.Get(ScalarType.Float32);
        Assert.True(first.Flops > 1e8, $"{first.Gflops} GFLOP/s");
        var again = MatmulRate.Get(ScalarType.Float32);
        if (first.Quiet) Assert.Equal(first.Flops, again.Flops, first.Flops * 1e-3); // read back, not measured again
        Assert.True(again.Flops >= first.Flops * 0.999);                              // the cache keeps the best seen

        // A peak measured under load, below what a training step then reaches: raised, and remembered.
        var low = again with { Flops = 1e6, OthersBusy = 1.5 };
        var raised = MatmulRate.Observe(low, 5e6);
        Assert.Equal(5e6, raised.Flops);
        Assert.Equal("observed", raised.Source);
        Assert.Contains("\"source\": \"observed\"", File.ReadAllText(MachineCache.FilePath));
        Assert.Same(raised, MatmulRate.Observe(raised, 4e6)); // below the peak: unchanged
    }
}
