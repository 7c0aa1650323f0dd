using System.Diagnostics;
using System.Text;

namespace CptLab.Cli.Tests;

/// <summary>`cptlab` run as a child process, as a user runs it (for kills, signals and servers).</summary>
static class CliProcess
{
    /// <summary>Starts `cptlab ARGS`; its stdout and stderr are read as they come (a full pipe would stall it), into <paramref name="output"/> when given.</summary>
    public static Process Start(StringBuilder? output, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cptlab.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        void Line(object _, DataReceivedEventArgs e)
        {
            if (output is not null && e.Data is not null) lock (output) output.AppendLine(e.Data);
        }
        p.OutputDataReceived += Line;
        p.ErrorDataReceived += Line;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    public static Process Start(params string[] args) => Start(null, args);

    public static int WaitForExitOrKill(this Process p, TimeSpan timeout)
    {
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("cptlab did not finish in time");
        }
        return p.ExitCode;
    }
}
