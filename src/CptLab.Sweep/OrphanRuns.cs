using System.Diagnostics;

namespace CptLab.Sweep;

/// <summary>
/// Children left running by a runner that was killed (kill -9 gives it no chance to stop them): a restarted
/// runner must stop them before it resumes their runs, or two trainers would write one run folder. They are
/// found by their command line, which names a folder under the sweep's runs/ folder. Linux only (/proc);
/// elsewhere nothing is found, and the runner lock is the only guard.
/// </summary>
public static class OrphanRuns
{
    /// <summary>Processes (other than this one) whose arguments point into <paramref name="runsDir"/>.</summary>
    public static IReadOnlyList<int> Find(string runsDir)
    {
        if (!Directory.Exists("/proc")) return [];
        var prefix = Path.GetFullPath(runsDir).TrimEnd('/') + "/";
        var self = Environment.ProcessId;
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == self) continue;
            string cmdline;
            try { cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; } // gone, or not ours
            var args = cmdline.Split('\0', StringSplitOptions.RemoveEmptyEntries);
            if (args.Skip(1).Any(a => a.StartsWith(prefix, StringComparison.Ordinal)) && IsAlive(pid)) found.Add(pid);
        }
        return found;
    }

    /// <summary>Kills every orphan of the sweep and waits until each is gone; returns their ids.</summary>
    public static IReadOnlyList<int> KillAll(string runsDir, TimeSpan? timeout = null)
    {
        var pids = Find(runsDir);
        foreach (var pid in pids)
        {
            try
            {
                using var p = Process.GetProcessById(pid);
                p.Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        foreach (var pid in pids)
            while (IsAlive(pid))
            {
                if (DateTime.UtcNow > deadline) throw new Core.CptLabException($"process {pid}, left running by an earlier runner of this sweep, did not stop; stop it by hand and run again");
                Thread.Sleep(20);
            }
        return pids;
    }

    /// <summary>Running or sleeping; a zombie (killed, not yet reaped by its new parent) counts as gone.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state is not ("Z" or "X");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
