namespace CptLab.Eval.Execution;

/// <summary>
/// Hands each concurrently running sandbox a uid of its own, <see cref="First"/> + slot. Why: RLIMIT_NPROC counts the
/// processes of a real uid and the kernel never applies it to root (nor to a user namespace whose ids map back to
/// root), so a root parent must drop every sandbox to an unprivileged uid; one uid per sandbox keeps one program's
/// processes from eating another's allowance. These uids need no /etc/passwd entry and own no files outside.
/// Two harness processes on one machine share the range; a shared uid only makes the limit stricter.
/// </summary>
internal static class SandboxUids
{
    /// <summary>Far above the ranges Debian hands out (system &lt; 1000, users &lt; 60000, nobody 65534).</summary>
    public const int First = 200_000;
    public const int Count = 4096;

    static readonly object _gate = new();
    static readonly bool[] _inUse = new bool[Count];

    public static Lease Acquire()
    {
        lock (_gate)
        {
            for (var slot = 0; slot < Count; slot++)
                if (!_inUse[slot]) { _inUse[slot] = true; return new Lease(First + slot); }
        }
        throw new InvalidOperationException($"all {Count} sandbox uids are in use; run fewer programs at once");
    }

    public sealed class Lease(int uid) : IDisposable
    {
        public int Uid { get; } = uid;
        int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            lock (_gate) _inUse[Uid - First] = false;
        }
    }
}
