using System.Globalization;

namespace CptLab.Model.Hardware;

/// <summary>A number of threads and why it was chosen.</summary>
public sealed record ThreadChoice(int Threads, string Reason);

/// <summary>
/// How busy the machine is with other work, and how many threads a new job should take. LibTorch's OpenMP
/// threads run in lock step: when one of them is descheduled because another process holds its core, every
/// parallel region waits for it, so taking more threads than there are free cores was measured up to 4× slower
/// than taking fewer. Other processes' load is read from /proc/stat over a short window, without nice time:
/// work started with <c>nice</c> yields its core to ours, and was measured not to slow a 2-thread run below a
/// 1-thread one.
/// </summary>
public static class CpuLoad
{
    /// <summary>Cores this process may run on (affinity and cgroup limits included).</summary>
    public static int AvailableCores => Environment.ProcessorCount;

    /// <summary>
    /// Cores' worth of CPU time that other processes at normal or higher priority used over
    /// <paramref name="window"/>, scaled to this process's share of the machine; null where /proc/stat is missing.
    /// </summary>
    public static double? OthersBusyCores(TimeSpan? window = null)
    {
        var w = window ?? TimeSpan.FromMilliseconds(250);
        var a = Read();
        if (a is null) return null;
        Thread.Sleep(w);
        var b = Read();
        if (b is null) return null;
        return OthersBusy(a.Value, b.Value, AvailableCores);
    }

    /// <summary>
    /// Threads for a job: <paramref name="requested"/> when it is positive, otherwise the free cores (all available
    /// cores less other processes' load, rounded, at least 1).
    /// </summary>
    public static ThreadChoice ChooseThreads(int requested = 0, double? othersBusy = null)
    {
        int cores = AvailableCores;
        if (requested > 0)
            return new ThreadChoice(requested, requested > cores
                ? $"as asked, more than the {cores} cores available: threads will wait on each other"
                : $"as asked, of {cores} cores");
        var busy = othersBusy ?? OthersBusyCores();
        if (busy is null) return new ThreadChoice(cores, $"all {cores} cores (the load of other processes cannot be read here)");
        int free = FreeCores(cores, busy.Value);
        return new ThreadChoice(free, string.Create(CultureInfo.InvariantCulture,
            $"{free} of {cores} cores free; other processes use {busy.Value:0.0}"));
    }

    /// <summary>Free cores given other processes' load: cores − load, rounded half up, between 1 and cores.</summary>
    public static int FreeCores(int cores, double othersBusy) =>
        Math.Clamp((int)Math.Floor(cores - Math.Max(0, othersBusy) + 0.5), 1, cores);

    /// <summary>A reading of the machine's and this process's CPU time, in clock ticks.</summary>
    public readonly record struct Reading(long Busy, long Total, long Self);

    /// <summary>Other processes' busy cores between two readings, for a process that may use <paramref name="cores"/> of the machine's cores.</summary>
    public static double OthersBusy(Reading a, Reading b, int cores)
    {
        double total = b.Total - a.Total;
        if (total <= 0) return 0;
        double others = Math.Max(0, (b.Busy - a.Busy) - (b.Self - a.Self));
        // The fraction of the whole machine's time other processes used, times the cores this process may use: on a
        // 64-core host of which a container may use 2, the host's load is spread over all 64, and its share falls on our 2.
        return Math.Min(cores, others / total * cores);
    }

    /// <summary>Parses the aggregate "cpu" line of /proc/stat: busy excludes idle, iowait, nice and steal.</summary>
    public static (long Busy, long Total) ParseStat(string stat)
    {
        foreach (var line in stat.Split('\n'))
        {
            if (line.StartsWith("cpu ", StringComparison.Ordinal))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
                // user nice system idle iowait irq softirq steal (guest and guest_nice are already inside user and nice)
                long At(int i) => i < f.Length ? f[i] : 0;
                return (At(0) + At(2) + At(5) + At(6), At(0) + At(1) + At(2) + At(3) + At(4) + At(5) + At(6) + At(7));
            }
        }
        throw new FormatException("/proc/stat has no aggregate 'cpu' line");
    }

    /// <summary>The machine's busy and total time and this process's own, now; null where /proc is not there.</summary>
    public static Reading? Read()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            var (busy, total) = ParseStat(File.ReadAllText("/proc/stat"));
            // /proc/self/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised command name.
            var self = File.ReadAllText("/proc/self/stat");
            var rest = self[(self.LastIndexOf(')') + 2)..].Split(' ');
            long selfTicks = long.Parse(rest[11], CultureInfo.InvariantCulture) + long.Parse(rest[12], CultureInfo.InvariantCulture);
            return new Reading(busy, total, selfTicks);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
