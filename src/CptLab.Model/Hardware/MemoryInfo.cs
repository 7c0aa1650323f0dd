namespace CptLab.Model.Hardware;

/// <summary>The machine's memory as the kernel reports it.</summary>
public static class MemoryInfo
{
    /// <summary>
    /// Memory available for new allocations without swapping: /proc/meminfo's MemAvailable (which counts reclaimable page
    /// cache), else what the runtime reports as available to this process.
    /// </summary>
    public static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], out var kib))
                    return kib * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
