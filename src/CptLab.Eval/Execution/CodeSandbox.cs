using System.Diagnostics;
using CptLab.Core;

namespace CptLab.Eval.Execution;

/// <summary>
/// Runs one untrusted Python program in its own process under real isolation, Debian's bubblewrap:
/// <list type="bullet">
/// <item>all namespaces unshared: no network (an empty net namespace, loopback only), its own pid namespace (killing
///   bwrap kills every process inside), its own user namespace with no further ones allowed, ipc, uts, cgroup;</item>
/// <item>a filesystem of /usr read-only, the /bin /lib /lib64 links, a minimal /proc and /dev and a private
///   size-limited tmpfs /tmp as the working directory; nothing of the home folder or the repository;</item>
/// <item>no environment but PATH, HOME=/tmp and LANG; stdin an already-closed pipe (reads see EOF at once);</item>
/// <item>kernel limits (<see cref="SandboxLimits"/>) on CPU time, address space, processes and file size, set by
///   <c>prlimit</c>, under an unprivileged uid of its own when we are root (see <see cref="SandboxUids"/>);</item>
/// <item>a wall clock kept by this process, which kills the whole sandbox.</item>
/// </list>
/// Setup: <c>scripts/ensure-bwrap.sh</c> installs bubblewrap. Not a defence against kernel exploits; it is what keeps a
/// model's buggy or hostile code from touching the network, the machine's files or its process table.
/// </summary>
public sealed class CodeSandbox
{
    public const string BwrapPath = "/usr/bin/bwrap";
    const string PrlimitPath = "/usr/bin/prlimit";
    const string SetprivPath = "/usr/bin/setpriv";
    const string ProgramPath = "/sandbox/program.py";
    const int SigXcpu = 24;

    public SandboxLimits Limits { get; }
    public string PythonPath { get; }

    /// <param name="limits">Defaults to <see cref="SandboxLimits.HumanEval"/>.</param>
    /// <param name="pythonPath">Must live under /usr: only /usr is visible inside the sandbox.</param>
    public CodeSandbox(SandboxLimits? limits = null, string pythonPath = "/usr/bin/python3")
    {
        Limits = limits ?? SandboxLimits.HumanEval;
        Limits.Validate();
        if (!pythonPath.StartsWith("/usr/", StringComparison.Ordinal))
            throw new CptLabException($"sandbox python '{pythonPath}' is outside /usr, the only system folder the sandbox mounts; use Debian's /usr/bin/python3");
        PythonPath = pythonPath;
    }

    /// <summary>
    /// Throws a <see cref="CptLabException"/> that says how to fix it when bwrap, prlimit or the interpreter is missing
    /// or the sandbox cannot start here; call once before a batch so that set-up problems are not scored as failures.
    /// </summary>
    public async Task EnsureWorksAsync(CancellationToken cancellationToken = default)
    {
        foreach (var tool in new[] { BwrapPath, PrlimitPath, PythonPath })
            if (!File.Exists(tool))
                throw new CptLabException($"{tool} is missing: code execution needs bubblewrap, util-linux and python3 (run scripts/ensure-bwrap.sh, or apt-get install bubblewrap python3)");
        var probe = await RunPythonAsync("print('ok')", cancellationToken).ConfigureAwait(false);
        if (!probe.Passed || probe.Stdout.Trim() != "ok")
            throw new CptLabException($"the code sandbox does not work on this machine ({probe.Status}: {probe.Reason}); " +
                "bwrap needs user namespaces (sysctl user.max_user_namespaces > 0) — scripts/ensure-bwrap.sh checks and says what to change");
    }

    /// <summary>Runs <paramref name="program"/> (Python source) and reports how it ended. Never throws for what the program does.</summary>
    public async Task<ExecutionResult> RunPythonAsync(string program, CancellationToken cancellationToken = default)
    {
        if (!OperatingSystem.IsLinux()) throw new CptLabException("the code sandbox needs Linux (bubblewrap namespaces)");
        var hostDir = Directory.CreateTempSubdirectory("cptlab-sandbox-");
        try
        {
            // The program is bound read-only into the sandbox; the sandbox's uid must be able to read it.
            var programFile = Path.Combine(hostDir.FullName, "program.py");
            await File.WriteAllTextAsync(programFile, program, cancellationToken).ConfigureAwait(false);
            File.SetUnixFileMode(programFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.SetUnixFileMode(hostDir.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);

            using var lease = Environment.IsPrivilegedProcess ? SandboxUids.Acquire() : null;
            var startInfo = StartInfo(programFile, lease?.Uid);
            return await RunAsync(startInfo, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            try { hostDir.Delete(recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    async Task<ExecutionResult> RunAsync(ProcessStartInfo startInfo, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(startInfo) ?? throw new CptLabException($"could not start {startInfo.FileName}");
        process.StandardInput.Close();
        var stdoutTask = BoundedOutput.ReadToEndAsync(process.StandardOutput.BaseStream, Limits.OutputExcerptBytes);
        var stderrTask = BoundedOutput.ReadToEndAsync(process.StandardError.BaseStream, Limits.OutputExcerptBytes);

        var killedByClock = false;
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            deadline.CancelAfter(Limits.WallTimeout);
            try { await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false); }
            catch (OperationCanceledException)
            {
                // bwrap is the outermost process (prlimit and setpriv exec into it); with it dies its pid namespace's
                // init, and the kernel kills everything left inside, however many a fork bomb made.
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                killedByClock = true;
            }
        }
        clock.Stop();
        var stdout = await stdoutTask.ConfigureAwait(false);
        var stderr = await stderrTask.ConfigureAwait(false);
        var (status, reason) = Classify(killedByClock, process.ExitCode, stderr);
        return new ExecutionResult(status, killedByClock ? null : process.ExitCode, stdout.Excerpt(), stderr.Excerpt(), reason, clock.Elapsed);
    }

    (ExecutionStatus, string) Classify(bool killedByClock, int exitCode, BoundedOutput stderr)
    {
        if (killedByClock) return (ExecutionStatus.TimedOut, $"timed out: wall-clock limit of {Limits.WallTimeout.TotalSeconds:0.###} s");
        if (exitCode == 0) return (ExecutionStatus.Passed, "passed");
        var first = stderr.FirstLine();
        if (first.StartsWith("bwrap:", StringComparison.Ordinal) || first.StartsWith("prlimit:", StringComparison.Ordinal) ||
            first.StartsWith("setpriv:", StringComparison.Ordinal))
            return (ExecutionStatus.SandboxError, $"sandbox could not start: {first}");
        if (exitCode == 128 + SigXcpu) return (ExecutionStatus.TimedOut, $"timed out: CPU time limit of {Limits.CpuSeconds} s");
        var last = stderr.LastLine();
        if (last.StartsWith("MemoryError", StringComparison.Ordinal))
            return (ExecutionStatus.MemoryExceeded, $"memory limit: address space capped at {Limits.AddressSpaceBytes >> 20} MiB ({Clip(last)})");
        if (exitCode > 128) return (ExecutionStatus.Crashed, $"crashed: killed by signal {exitCode - 128}");
        return (ExecutionStatus.Failed, last.Length > 0 ? $"failed: {Clip(last)}" : $"failed: exit code {exitCode}");
    }

    static string Clip(string line) => line.Length <= 300 ? line : line[..300] + "…";

    ProcessStartInfo StartInfo(string programFile, int? uid)
    {
        var info = new ProcessStartInfo(PrlimitPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        };
        info.Environment.Clear();   // nothing of ours (tokens, paths) reaches the sandbox, not even through prlimit
        info.Environment["PATH"] = "/usr/bin:/bin";
        var args = info.ArgumentList;

        // RLIMIT_NPROC counts every task of the uid. Our own uid (when not root) already runs some, this process's
        // threads among them, so its allowance sits on top of what it has; a sandbox uid of its own starts from zero.
        var nproc = uid is null ? TasksOfUid(CurrentUid()) + Limits.MaxProcesses : Limits.MaxProcesses;
        args.Add($"--cpu={Limits.CpuSeconds}:{Limits.CpuSeconds + 1}");
        args.Add($"--as={Limits.AddressSpaceBytes}");
        args.Add($"--nproc={nproc}");
        args.Add($"--fsize={Limits.MaxFileBytes}");
        args.Add("--core=0");
        args.Add("--");
        if (uid is { } id)
        {
            args.Add(SetprivPath);
            foreach (var a in new[] { $"--reuid={id}", $"--regid={id}", "--clear-groups", "--" }) args.Add(a);
        }
        args.Add(BwrapPath);
        foreach (var a in BwrapArguments(programFile)) args.Add(a);
        args.Add(PythonPath);
        args.Add("-I");   // isolated: no PYTHON* variables, no user site-packages, no script folder on sys.path
        args.Add("-B");   // no .pyc files (the program is read-only anyway)
        args.Add(ProgramPath);
        return info;
    }

    IEnumerable<string> BwrapArguments(string programFile)
    {
        string[] fixedArgs =
        [
            "--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "OMP_NUM_THREADS", "1",
            "--ro-bind", "/usr", "/usr",
        ];
        foreach (var a in fixedArgs) yield return a;
        // Merged-/usr Debian has /bin, /lib… as links into /usr; elsewhere they are folders to bind read-only.
        foreach (var top in new[] { "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32" })
        {
            var info = new DirectoryInfo(top);
            if (!info.Exists) continue;
            if (info.LinkTarget is { } target) { yield return "--symlink"; yield return target; yield return top; }
            else { yield return "--ro-bind"; yield return top; yield return top; }
        }
        foreach (var a in new[] { "--proc", "/proc", "--dev", "/dev", "--size", Limits.TmpfsBytes.ToString(), "--tmpfs", "/tmp",
                     "--ro-bind", programFile, ProgramPath, "--chdir", "/tmp" })
            yield return a;
    }

    static int CurrentUid()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("Uid:", StringComparison.Ordinal)) return int.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new CptLabException("/proc/self/status has no Uid line");
    }

    /// <summary>Tasks (threads, as RLIMIT_NPROC counts them) whose real uid is <paramref name="uid"/>.</summary>
    internal static int TasksOfUid(int uid)
    {
        var total = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _)) continue;
            try
            {
                int? realUid = null, threads = null;
                foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
                {
                    if (line.StartsWith("Uid:", StringComparison.Ordinal)) realUid = int.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
                    else if (line.StartsWith("Threads:", StringComparison.Ordinal)) threads = int.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
                }
                if (realUid == uid) total += threads ?? 1;
            }
            catch (IOException) { }   // the process ended while we looked
            catch (UnauthorizedAccessException) { }
        }
        return total;
    }
}
