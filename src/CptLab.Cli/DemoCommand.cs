using System.CommandLine;
using CptLab.Core;
using CptLab.Demo;
using CptLab.Training;
using Spectre.Console;

namespace CptLab.Cli;

/// <summary>`cptlab demo [--out DIR] [--quick]`: the whole method end to end, with progress at every stage.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder of the demo run (re-running resumes it).", DefaultValueFactory = _ => new DirectoryInfo("out/demo") };
        var quick = new Option<bool>("--quick") { Description = "Smaller models and a 3×3 sweep: under a minute and a half on 2 cores instead of the default's 21 min (AMD EPYC with AVX-512; AVX2-only CPUs about twice as long)." };
        var corpora = new Option<DirectoryInfo?>("--corpora") { Description = "Demo corpora folder (default: .cache/corpora of the CptLab checkout)." };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0 = the cores free when the demo starts).", DefaultValueFactory = _ => 0 };
        var debian = new Option<DirectoryInfo?>("--debian") { Description = "The Debian documentation packages as scripts/fetch-debian-corpora.sh unpacks them (default: .cache/debian-pkgs of the CptLab checkout)." };
        var sharedData = new Option<DirectoryInfo?>("--shared-data") { Description = "Benchmark and post-training data (gsm8k/, cmmlu/, emobench/, eq-bench/, humaneval/; default: ../shared/data beside the CptLab checkout)." };
        var cmd = new Command("demo", "Run the method end to end on real corpora: pre-train a base, sweep ALMR × LR, fit, transfer, compare, then SFT, DPO, the benchmark harness, GGUF in llama.cpp, a served chat request, report.")
            { outDir, quick, corpora, debian, threads, sharedData };
        cmd.SetAction((r, cancellation) => Task.Run(() => CliAction.Run(() =>
        {
            var script = FindUp("scripts/fetch-corpora.sh");
            var corporaDir = r.GetValue(corpora)?.FullName
                ?? (script is null ? Path.GetFullPath(".cache/corpora") : Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(script)!)!, ".cache", "corpora"));
            var root = script is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(Path.GetDirectoryName(script)!)!;
            var options = new DemoOptions
            {
                OutDir = r.GetValue(outDir)!.FullName, Quick = r.GetValue(quick), CorporaDir = corporaDir, FetchScript = script, Threads = r.GetValue(threads),
                SharedDataDir = r.GetValue(sharedData)?.FullName ?? Path.GetFullPath(Path.Combine(root, "..", "shared", "data")),
                DebianDir = r.GetValue(debian)?.FullName ?? Environment.GetEnvironmentVariable("CPTLAB_DEBIAN") ?? Path.Combine(root, ".cache", "debian-pkgs"),
                FetchDebianScript = FindUp("scripts/fetch-debian-corpora.sh"),
            };
            var results = DemoPipeline.Run(options, new ConsoleUi(), cancellation);
            var chosen = results.Model("chosen");
            AnsiConsole.MarkupLine($"[bold]chosen[/] ALMR {chosen.Almr:0.###}, LR {chosen.Lr!.Value:0.###e0}" + (results.Comparison is { } c
                ? $": objective better than the naive setup's by {c.MeanGain:F4} on average over seeds {string.Join(", ", c.Seeds)} (seed spread {c.Spread:F4}): {c.Verdict}"
                : ""));
            AnsiConsole.MarkupLine($"report: {Markup.Escape(Path.Combine(options.OutDir, DemoPipeline.ReportFile))} and {Markup.Escape(DemoPipeline.HtmlReportFile)}");
            return 0;
        }), CancellationToken.None));
        return cmd;
    }

    static string? FindUp(string relative)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, relative))) return Path.Combine(dir.FullName, relative);
        return null;
    }

    sealed class ConsoleUi : IDemoUi
    {
        readonly bool _interactive = !Console.IsOutputRedirected;

        public void Stage(string name, string description) => AnsiConsole.MarkupLine($"[bold blue]▶ {Markup.Escape(name)}[/]: {Markup.Escape(description)}");

        public void StageDone(string name, double seconds, bool reused) =>
            AnsiConsole.MarkupLine(reused ? $"[grey]✓ {Markup.Escape(name)} (done before, {seconds:F0} s)[/]" : $"[green]✓ {Markup.Escape(name)}[/] {seconds:F0} s");

        public void Line(string text) => AnsiConsole.MarkupLine($"  {Markup.Escape(text)}");

        public T Train<T>(string label, long totalSteps, Func<IProgress<TrainProgress>, T> work)
        {
            if (!_interactive)
            {
                long every = Math.Max(1, totalSteps / 10);
                return work(new SyncProgress<TrainProgress>(p =>
                {
                    if (p.Step % every == 0 || p.Step == p.TotalSteps)
                        Console.WriteLine($"  {label}: step {p.Step}/{p.TotalSteps} loss {p.Loss:F3} {p.TokensPerSecond:N0} tok/s");
                }));
            }
            T result = default!;
            AnsiConsole.Progress().AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(label), maxValue: totalSteps);
                    result = work(new SyncProgress<TrainProgress>(p =>
                    {
                        task.Value = p.Step;
                        task.Description = Markup.Escape($"{label} loss {p.Loss:F3} {p.TokensPerSecond:N0} tok/s");
                    }));
                });
            return result;
        }
    }
}
