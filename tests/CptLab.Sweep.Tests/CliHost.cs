using CptLab.Cli;

namespace CptLab.Sweep.Tests;

/// <summary>Runs a `cptlab` command line in this process and returns its exit code and output (tests of one collection run one at a time).</summary>
static class CliHost
{
    public static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (Program.BuildRoot().Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(stdout); Console.SetError(stderr); }
    }
}
