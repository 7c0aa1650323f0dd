using CptLab.Build;
using CptLab.Model;

namespace CptLab.Model.Tests;

/// <summary>The build-time patch (build/GlibcxxWeakenTask.cs) on the real library from the NuGet cache.</summary>
public class ElfPatchTests
{
    static string? PristineLibrary()
    {
        var home = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(home, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        return File.Exists(path) ? path : null;
    }

    [Fact]
    public void Patch_weakens_the_version_clears_the_symbol_and_is_idempotent()
    {
        if (!OperatingSystem.IsLinux()) return;
        var path = PristineLibrary();
        Assert.NotNull(path); // restored by the build on Linux
        var original = File.ReadAllBytes(path!);
        var patched = (byte[])original.Clone();

        Assert.StartsWith("patched", GlibcxxWeakener.Patch(patched));
        // Exactly two 16-bit fields change: vna_flags of GLIBCXX_3.4.32 and the symbol's .gnu.version entry.
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.InRange(changed.Count, 2, 4);
        Assert.True(changed[^1] - changed[0] > 2, "the two changes are in different sections");

        var again = (byte[])patched.Clone();
        Assert.Equal("already patched", GlibcxxWeakener.Patch(again));
        Assert.Equal(patched, again);
    }

    [Fact]
    public void Library_in_the_build_output_is_patched_and_loads()
    {
        if (!OperatingSystem.IsLinux()) return;
        TorchRuntime.Initialise(); // would throw if the patch were missing on this system
        var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(output));
        var bytes = File.ReadAllBytes(output);
        bool systemHasVersion = GlibcxxWeakener.DefinesVersion("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", GlibcxxWeakener.Version);
        var outcome = GlibcxxWeakener.Patch(bytes);
        Assert.Equal(systemHasVersion ? "patched: GLIBCXX_3.4.32 weak, _ZSt21ios_base_library_initv unversioned" : "already patched", outcome);
    }

    [Fact]
    public void Non_elf_input_is_refused()
    {
        var e = Assert.Throws<InvalidDataException>(() => GlibcxxWeakener.Patch(new byte[100]));
        Assert.Contains("not an ELF file", e.Message);
    }
}
