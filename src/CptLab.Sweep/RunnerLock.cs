using CptLab.Core;

namespace CptLab.Sweep;

/// <summary>
/// One runner per sweep folder: an exclusive lock on <c>runner.lock</c> (an OS file lock, so a runner killed
/// with -9 releases it with its last breath). The file holds the runner's process id, for messages.
/// </summary>
public sealed class RunnerLock : IDisposable
{
    public const string FileName = "runner.lock";
    readonly FileStream _file;

    RunnerLock(FileStream file) => _file = file;

    public static RunnerLock Acquire(string sweepDir)
    {
        Directory.CreateDirectory(sweepDir);
        var path = Path.Combine(sweepDir, FileName);
        try
        {
            var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            fs.SetLength(0);
            using (var w = new StreamWriter(fs, leaveOpen: true)) w.Write(Environment.ProcessId);
            fs.Flush(flushToDisk: true);
            return new RunnerLock(fs);
        }
        catch (IOException)
        {
            var who = "";
            try { who = $" (process {File.ReadAllText(path).Trim()})"; } catch (IOException) { }
            throw new CptLabException($"another runner is working on {sweepDir}{who}; wait for it, or stop it (its runs resume where they were)");
        }
    }

    /// <summary>Whether a runner holds the sweep folder now.</summary>
    public static bool IsHeld(string sweepDir)
    {
        var path = Path.Combine(sweepDir, FileName);
        if (!File.Exists(path)) return false;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return false;
        }
        catch (IOException) { return true; }
    }

    public void Dispose() => _file.Dispose();
}
