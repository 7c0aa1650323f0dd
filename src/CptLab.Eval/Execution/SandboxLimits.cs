namespace CptLab.Eval.Execution;

/// <summary>
/// Resource limits of one sandboxed program. The kernel enforces all but <see cref="WallTimeout"/> (setrlimit, set by
/// util-linux <c>prlimit</c> before bwrap starts, inherited by everything inside); the parent enforces the wall clock
/// by killing the whole sandbox, whose pid namespace takes every process in it down with its init.
/// </summary>
/// <param name="WallTimeout">Wall clock from process start to exit, sandbox start-up (~50 ms) included.</param>
/// <param name="CpuSeconds">RLIMIT_CPU soft limit per process (SIGXCPU); the hard limit is one second more (SIGKILL).</param>
/// <param name="AddressSpaceBytes">RLIMIT_AS: virtual memory of each process; a 10 GB allocation fails at once with MemoryError.</param>
/// <param name="MaxProcesses">RLIMIT_NPROC: processes (and threads) of the sandbox's user, bwrap's own two included.
/// It only binds an unprivileged uid, so a root parent runs each sandbox as its own uid (see <see cref="CodeSandbox"/>).</param>
/// <param name="MaxFileBytes">RLIMIT_FSIZE: the largest file the program may write.</param>
/// <param name="TmpfsBytes">Size of the private, writable /tmp (the working directory).</param>
/// <param name="OutputExcerptBytes">How much of stdout and of stderr is kept; the rest is read and dropped.</param>
public sealed record SandboxLimits(
    TimeSpan WallTimeout,
    int CpuSeconds,
    long AddressSpaceBytes,
    int MaxProcesses,
    long MaxFileBytes,
    long TmpfsBytes,
    int OutputExcerptBytes)
{
    /// <summary>
    /// HumanEval's: human-eval gives each program 3 s, timed by SIGALRM inside an already running interpreter, plus a
    /// 1 s grace before the parent kills it. Our clock starts before bwrap and Python start, so we allow 3 s + 1 s of
    /// wall clock and as much CPU. 1 GiB of address space is far more than any HumanEval test needs
    /// (human-eval itself sets no memory limit by default); 64 processes stop a fork bomb.
    /// </summary>
    public static SandboxLimits HumanEval { get; } = new(
        WallTimeout: TimeSpan.FromSeconds(4),
        CpuSeconds: 4,
        AddressSpaceBytes: 1L << 30,
        MaxProcesses: 64,
        MaxFileBytes: 16L << 20,
        TmpfsBytes: 64L << 20,
        OutputExcerptBytes: 4096);

    internal void Validate()
    {
        if (WallTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(WallTimeout), WallTimeout, "must be positive");
        if (CpuSeconds < 1) throw new ArgumentOutOfRangeException(nameof(CpuSeconds), CpuSeconds, "must be at least 1 s (RLIMIT_CPU counts whole seconds)");
        if (AddressSpaceBytes < 64L << 20) throw new ArgumentOutOfRangeException(nameof(AddressSpaceBytes), AddressSpaceBytes, "Python needs at least 64 MiB of address space to start");
        if (MaxProcesses < 4) throw new ArgumentOutOfRangeException(nameof(MaxProcesses), MaxProcesses, "bwrap needs 2 processes of its own; allow at least 4");
        if (MaxFileBytes < 0 || TmpfsBytes < 1 << 20 || OutputExcerptBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(MaxFileBytes), "file, tmpfs and excerpt sizes must be non-negative (tmpfs at least 1 MiB)");
    }
}
