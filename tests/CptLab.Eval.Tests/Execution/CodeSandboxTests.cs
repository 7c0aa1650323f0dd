using System.Net;
using System.Net.Sockets;
using CptLab.Eval.Execution;
using CptLab.TestKit;

namespace CptLab.Eval.Tests.Execution;

/// <summary>
/// Each test runs a real program in the real sandbox (bwrap must be installed: scripts/ensure-bwrap.sh) and checks
/// both the verdict and, for the hostile ones, that the machine outside is as it was.
/// </summary>
[Collection(SandboxCollection.Name)]
public class CodeSandboxTests
{
    static readonly CodeSandbox Sandbox = new();

    static Task<ExecutionResult> Run(string program, SandboxLimits? limits = null) =>
        (limits is null ? Sandbox : new CodeSandbox(limits)).RunPythonAsync(program);

    [Fact]
    public async Task A_clean_program_passes_and_its_output_comes_back()
    {
        var result = await Run("print('hello', 6 * 7)");
        Assert.Equal(ExecutionStatus.Passed, result.Status);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("hello 42\n", result.Stdout);
    }

    [Fact]
    public async Task A_failing_assert_is_failed_with_the_exception_as_reason()
    {
        var result = await Run("def f(x):\n    return x + 1\nassert f(1) == 3, 'f(1) should be 3'\n");
        Assert.Equal(ExecutionStatus.Failed, result.Status);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal("failed: AssertionError: f(1) should be 3", result.Reason);
    }

    [Fact]
    public async Task An_infinite_loop_is_stopped_by_the_wall_clock()
    {
        var limits = SandboxLimits.HumanEval with { WallTimeout = TimeSpan.FromSeconds(1.5), CpuSeconds = 30 };
        var result = await Run("while True:\n    pass\n", limits);
        Assert.Equal(ExecutionStatus.TimedOut, result.Status);
        Assert.Contains("wall-clock limit of 1.5 s", result.Reason);
        Assert.InRange(result.WallTime.TotalSeconds, 1.4, 4.0);
    }

    [Fact]
    public async Task A_sleeping_program_is_stopped_by_the_wall_clock_too()
    {
        var limits = SandboxLimits.HumanEval with { WallTimeout = TimeSpan.FromSeconds(1) };
        var result = await Run("import time\ntime.sleep(600)\n", limits);
        Assert.Equal(ExecutionStatus.TimedOut, result.Status);
        Assert.InRange(result.WallTime.TotalSeconds, 0.9, 3.0);
    }

    [Fact]
    public async Task A_busy_loop_is_stopped_by_the_CPU_limit_when_that_comes_first()
    {
        var limits = SandboxLimits.HumanEval with { WallTimeout = TimeSpan.FromSeconds(30), CpuSeconds = 1 };
        var result = await Run("while True:\n    pass\n", limits);
        Assert.Equal(ExecutionStatus.TimedOut, result.Status);
        Assert.Equal("timed out: CPU time limit of 1 s", result.Reason);
        Assert.Equal(128 + 24, result.ExitCode);   // SIGXCPU
    }

    [Fact]
    public async Task A_fork_bomb_is_contained_and_leaves_no_process_behind()
    {
        // As root each sandbox gets a uid of its own in 200000..204095, which is what this test watches.
        Assert.True(Environment.IsPrivilegedProcess, "this test watches the sandbox uids, which are used only when the tests run as root");
        var before = HostProcesses();
        var peak = 0;
        using var stop = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested) { peak = Math.Max(peak, BusiestSandboxUid()); await Task.Delay(20); }
        });
        var limits = SandboxLimits.HumanEval with { WallTimeout = TimeSpan.FromSeconds(2) };
        var result = await Run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", limits);
        await stop.CancelAsync();
        await watcher;

        Assert.Equal(ExecutionStatus.TimedOut, result.Status);
        Assert.True(peak > 10, $"the bomb never got going ({peak} tasks seen): the test watched the wrong uids");
        Assert.InRange(peak, 1, limits.MaxProcesses);   // RLIMIT_NPROC held: bwrap's two processes + at most 62 of the bomb
        await WaitUntil(() => SandboxUidTasks() == 0, TimeSpan.FromSeconds(5));
        Assert.Equal(0, SandboxUidTasks());
        // Other agents share this machine, so the whole table may move a little; a leaked bomb would add ~64.
        Assert.InRange(HostProcesses(), 0, before + 20);
    }

    [Fact]
    public async Task Reading_stdin_sees_end_of_file_at_once()
    {
        var result = await Run("import sys\nprint(repr(sys.stdin.read()))\nprint(repr(input()))\n");
        Assert.Equal(ExecutionStatus.Failed, result.Status);   // input() raises EOFError after read() returned ''
        Assert.Equal("''\n", result.Stdout);
        Assert.StartsWith("failed: EOFError", result.Reason);
        Assert.True(result.WallTime < TimeSpan.FromSeconds(3), $"took {result.WallTime}");
    }

    [Fact]
    public async Task Loopback_connections_do_not_reach_the_host()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var result = await Run($"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n");
        Assert.Equal(ExecutionStatus.Failed, result.Status);
        Assert.StartsWith("failed: ConnectionRefusedError", result.Reason);
        Assert.False(listener.Pending(), "the sandbox reached a listener on the host's loopback");
    }

    [Fact]
    public async Task There_is_no_route_to_the_outside()
    {
        var result = await Run("import socket\nsocket.create_connection(('8.8.8.8', 53), timeout=2)\n");
        Assert.Equal(ExecutionStatus.Failed, result.Status);
        Assert.Equal("failed: OSError: [Errno 101] Network is unreachable", result.Reason);
    }

    [Fact]
    public async Task Files_outside_the_sandbox_cannot_be_written_or_deleted()
    {
        var outside = Directory.CreateTempSubdirectory("cptlab-sandbox-victim-");
        try
        {
            var victim = Path.Combine(outside.FullName, "victim.txt");
            File.WriteAllText(victim, "original");
            var attempts = new (string Program, string Reason)[]
            {
                ($"open({Py(victim)}, 'w').write('pwned')", $"failed: FileNotFoundError: [Errno 2] No such file or directory: {Py(victim)}"),
                ($"open({Py(Path.Combine(outside.FullName, "new.txt"))}, 'w').write('x')", "failed: FileNotFoundError"),
                ($"import os\nos.remove({Py(victim)})", "failed: FileNotFoundError"),
                ("open('/usr/pwned.txt', 'w').write('x')", "failed: OSError: [Errno 30] Read-only file system: '/usr/pwned.txt'"),
                ("import os\nos.remove('/usr/bin/python3')", "failed: OSError: [Errno 30] Read-only file system"),
                ("import shutil\nshutil.rmtree('/usr/lib/python3.11')", "failed: OSError: [Errno 30] Read-only file system"),
                // The program file is root's outside; inside, its owner is unmapped, so permission is refused before the read-only mount.
                ("open('/sandbox/program.py', 'a').write('x')", "failed: PermissionError: [Errno 13] Permission denied: '/sandbox/program.py'"),
            };
            foreach (var (program, reason) in attempts)
            {
                var result = await Run(program);
                Assert.Equal(ExecutionStatus.Failed, result.Status);
                Assert.StartsWith(reason, result.Reason);
            }
            Assert.Equal("original", File.ReadAllText(victim));
            Assert.Equal(["victim.txt"], Directory.GetFiles(outside.FullName).Select(Path.GetFileName));
            Assert.False(File.Exists("/usr/pwned.txt"));
            Assert.True(File.Exists("/usr/lib/python3.11/os.py"));
        }
        finally { outside.Delete(recursive: true); }
    }

    [Fact]
    public async Task The_home_folder_and_the_repository_are_not_visible_but_a_private_tmp_is_writable()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var program = $"import os\nassert not os.path.exists({Py(home)}), 'home visible'\nassert not os.path.exists({Py(RepoPaths.Root)}), 'repo visible'\n" +
                      "assert os.getcwd() == '/tmp'\nopen('scratch.txt', 'w').write('ok')\nassert open('/tmp/scratch.txt').read() == 'ok'\n" +
                      "print(sorted(os.listdir('/')))\n";
        var result = await Run(program);
        Assert.True(result.Passed, result.Reason);
        Assert.Equal("['bin', 'dev', 'lib', 'lib64', 'proc', 'sandbox', 'sbin', 'tmp', 'usr']\n", result.Stdout);
    }

    [Fact]
    public async Task The_environment_of_the_parent_does_not_leak_in()
    {
        var result = await Run("import os\nprint(sorted(os.environ))\n");
        Assert.True(result.Passed, result.Reason);
        Assert.Equal("['HOME', 'LANG', 'OMP_NUM_THREADS', 'PATH', 'PWD']\n", result.Stdout);   // bwrap --chdir sets PWD
    }

    [Fact]
    public async Task Allocating_10_GB_is_stopped_by_the_memory_limit()
    {
        var result = await Run("x = bytearray(10 * 1024 ** 3)\nprint(len(x))\n");
        Assert.Equal(ExecutionStatus.MemoryExceeded, result.Status);
        Assert.Contains("1024 MiB", result.Reason);
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task Memory_grown_piece_by_piece_is_stopped_too()
    {
        var limits = SandboxLimits.HumanEval with { AddressSpaceBytes = 256L << 20 };
        var result = await Run("chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 ** 2))\n", limits);
        Assert.Equal(ExecutionStatus.MemoryExceeded, result.Status);
    }

    [Fact]
    public async Task A_program_that_kills_itself_with_a_signal_crashed()
    {
        var result = await Run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n");
        Assert.Equal(ExecutionStatus.Crashed, result.Status);
        Assert.Equal("crashed: killed by signal 11", result.Reason);
    }

    [Fact]
    public async Task Huge_output_is_drained_but_only_an_excerpt_kept()
    {
        var result = await Run("import sys\nsys.stdout.write('x' * 10_000_000)\nsys.stderr.write('y' * 5000 + 'LAST')\n");
        Assert.True(result.Passed, result.Reason);
        Assert.StartsWith(new string('x', 4096) + "\n[… ", result.Stdout);
        Assert.InRange(result.Stdout.Length, 4096, 4096 + 1024 + 100);
        Assert.EndsWith("yLAST", result.Stderr);
    }

    [Fact]
    public async Task Writing_a_file_larger_than_the_limit_fails()
    {
        var limits = SandboxLimits.HumanEval with { MaxFileBytes = 1 << 20 };
        var result = await Run("open('big', 'wb').write(b'x' * (2 << 20))\n", limits);
        Assert.Equal(ExecutionStatus.Failed, result.Status);
        Assert.Equal("failed: OSError: [Errno 27] File too large", result.Reason);
    }

    /// <summary>A Python string literal for a path (the test paths hold no quotes or backslashes).</summary>
    static string Py(string s) => "'" + s + "'";

    static int HostProcesses() => Directory.EnumerateDirectories("/proc").Count(d => int.TryParse(Path.GetFileName(d), out _));

    static int SandboxUidTasks() => SandboxUidCounts().Values.Sum();

    static int BusiestSandboxUid() => SandboxUidCounts().Values.DefaultIfEmpty(0).Max();

    /// <summary>Processes per real uid, for the uids of the sandbox range.</summary>
    static Dictionary<int, int> SandboxUidCounts()
    {
        var counts = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _)) continue;
            try
            {
                var uidLine = File.ReadLines(Path.Combine(dir, "status")).FirstOrDefault(l => l.StartsWith("Uid:"));
                if (uidLine is null) continue;
                var uid = int.Parse(uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
                if (uid is >= 200_000 and < 200_000 + 4096) counts[uid] = counts.GetValueOrDefault(uid) + 1;
            }
            catch (IOException) { }
        }
        return counts;
    }

    static async Task WaitUntil(Func<bool> condition, TimeSpan limit)
    {
        var end = DateTime.UtcNow + limit;
        while (!condition() && DateTime.UtcNow < end) await Task.Delay(50);
    }
}
