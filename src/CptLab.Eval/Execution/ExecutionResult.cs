namespace CptLab.Eval.Execution;

/// <summary>How one sandboxed program ended.</summary>
public enum ExecutionStatus
{
    /// <summary>Exit code 0: every assertion of the test held.</summary>
    Passed,
    /// <summary>A non-zero exit (an uncaught exception: AssertionError, NameError, OSError from a blocked write…).</summary>
    Failed,
    /// <summary>Killed by the parent's wall clock, or by the kernel at the CPU-time limit (SIGXCPU).</summary>
    TimedOut,
    /// <summary>An allocation hit the address-space limit (Python raised MemoryError).</summary>
    MemoryExceeded,
    /// <summary>Ended by a signal of its own making (SIGSEGV, SIGABRT, SIGKILL sent to itself…).</summary>
    Crashed,
    /// <summary>bwrap itself could not set the sandbox up: an installation problem, never the program's fault.</summary>
    SandboxError,
}

/// <summary>
/// The outcome of one program run by <see cref="CodeSandbox"/>. <see cref="Stdout"/> and <see cref="Stderr"/> are
/// excerpts (the first <see cref="SandboxLimits.OutputExcerptBytes"/> bytes each); <see cref="Reason"/> is one line
/// for reports, e.g. "failed: AssertionError" or "timed out: wall-clock limit of 4 s".
/// </summary>
public sealed record ExecutionResult(
    ExecutionStatus Status, int? ExitCode, string Stdout, string Stderr, string Reason, TimeSpan WallTime)
{
    public bool Passed => Status == ExecutionStatus.Passed;
}
