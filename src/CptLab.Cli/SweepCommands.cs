using System.CommandLine;
using System.Runtime.InteropServices;
using System.Globalization;
using CptLab.Core;
using CptLab.Sweep;
using Spectre.Console;

namespace CptLab.Cli;

/// <summary>`cptlab sweep run|status|fit|plan|report`: thin verbs over CptLab.Sweep.</summary>
public static class SweepCommands
{
    public static Command Create()
    {
        var sweep = new Command("sweep", "Proxy sweeps over ALMR × learning rate: run them, follow them, fit the law, plan the full-size run.");
        sweep.Subcommands.Add(Run());
        sweep.Subcommands.Add(Status());
        sweep.Subcommands.Add(Fit());
        sweep.Subcommands.Add(Plan());
        sweep.Subcommands.Add(Report());
        return sweep;
    }

    static Option<DirectoryInfo> DirOption(bool required = true) => new("--dir")
    {
        Description = "The sweep folder (sweep.db, runs/, blends/, fit.json, plots/, report).",
        Required = required,
    };

    static Command Run()
    {
        var spec = new Option<FileInfo>("--spec") { Description = "The sweep spec (YAML or JSON).", Required = true };
        var dir = DirOption(required: false);
        dir.Description = "The sweep folder (default: next to the spec, named after it).";
        var workers = new Option<int?>("--workers") { Description = "Runs at a time (default: the spec's workers)." };
        var cores = new Option<int?>("--cores") { Description = "Cores to split between the workers (default: the spec's, else the cores free when the sweep starts)." };
        var retry = new Option<bool>("--retry-failed") { Description = "Run failed runs again (by default a resumed sweep skips them like finished ones)." };
        var cmd = new Command("run", "Run the sweep's training runs (child processes), or resume it: finished runs are skipped, interrupted ones resume from their checkpoints.")
            { spec, dir, workers, cores, retry };
        cmd.SetAction((r, cancellation) => Task.FromResult(CliAction.Run(() =>
        {
            var specFile = r.GetValue(spec)!.FullName;
            var s = SweepSpec.Load(specFile);
            var sweepDir = r.GetValue(dir)?.FullName ?? Path.Combine(Path.GetDirectoryName(specFile)!, Path.GetFileNameWithoutExtension(specFile));
            // Ctrl-C or SIGTERM: stop the children, record their runs as interrupted (they resume next time) and exit;
            // a second signal quits at once (the database stays consistent either way).
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            var signals = 0;
            void OnSignal(PosixSignalContext c)
            {
                if (Interlocked.Increment(ref signals) > 1) return;
                c.Cancel = true;
                Console.Error.WriteLine("stopping: interrupting the running runs (signal again to quit at once)");
                stop.Cancel();
            }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            var summary = SweepRunner.Run(s, sweepDir, new RunnerOptions
            {
                Executor = new ProcessRunExecutor(CptLabCommand.Current()),
                Workers = r.GetValue(workers), Cores = r.GetValue(cores), RetryFailed = r.GetValue(retry),
                Log = line => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}"),
            }, stop.Token);
            Console.WriteLine($"{summary.Done} done, {summary.Failed} failed, {summary.Pending} not finished; {summary.RunsUsed} runs of a {summary.GridSize}-run grid" +
                              (summary.StopReason is { } why ? $" (adaptive design stopped: {why})" : ""));
            Console.WriteLine($"sweep folder: {sweepDir}");
            if (summary.Cancelled) { Console.Error.WriteLine("cancelled; run the same command again to resume"); return 130; }
            return summary.Done > 0 || summary.RunsUsed == 0 ? 0 : CliAction.UserError;
        })));
        return cmd;
    }

    static Command Status()
    {
        var dir = DirOption();
        var cmd = new Command("status", "Progress of a sweep: each run's status, step, attempts, wall time and final losses.") { dir };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var p = SweepStatus.Read(r.GetValue(dir)!.FullName);
            if (Console.IsOutputRedirected) { Console.Write(SweepStatus.Format(p)); return 0; }
            var table = new Table().AddColumns("run", "status", "step", "attempts", "wall s", p.TargetLanguage, p.OriginalLanguage);
            foreach (var row in p.Rows)
            {
                var colour = row.Status switch { "done" => "green", "failed" => "red", "running" => "yellow", "interrupted" => "orange1", _ => "grey" };
                table.AddRow(Markup.Escape(row.Id), $"[{colour}]{row.Status}[/]", $"{row.Step}/{row.TotalSteps}", row.Attempts.ToString(CultureInfo.InvariantCulture),
                    row.WallSeconds.ToString("0.0", CultureInfo.InvariantCulture), Loss(row.TargetLoss), Loss(row.OriginalLoss));
            }
            AnsiConsole.Write(table);
            AnsiConsole.WriteLine(SweepStatus.Summary(p));
            foreach (var row in p.Rows.Where(x => x.Error is not null))
                AnsiConsole.MarkupLine($"[red]{Markup.Escape(row.Id)}[/]: {Markup.Escape(row.Error!)}");
            return 0;
        }));
        return cmd;
    }

    static string Loss(double v) => double.IsFinite(v) ? v.ToString("F4", CultureInfo.InvariantCulture) : "-";

    static Command Fit()
    {
        var dir = DirOption();
        var bootstrap = new Option<int?>("--bootstrap") { Description = "Bootstrap replicates for the intervals (default: the spec's fit.bootstrap)." };
        var cmd = new Command("fit", "Fit the laws over the sweep: fit.json (law, parameters, optimum, intervals, CV error), plots (PNG, SVG) and the report.") { dir, bootstrap };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var result = SweepFit.Run(r.GetValue(dir)!.FullName, r.GetValue(bootstrap));
            var o = result.Summary.Optimum;
            var ci = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(ci, $"law: {result.Summary.Law} ({result.Summary.Runs} runs, {result.Summary.FailedRuns} failed left out; leave-one-out error {result.Summary.CvError:0.####})"));
            Console.WriteLine(string.Create(ci, $"optimum: ALMR {o.Almr:0.###}{Iv(o.AlmrInterval, "0.###")}, lr {o.Lr:0.###e0}{Iv(o.LrInterval, "0.###e0")}; objective {o.Objective:0.####}"));
            if (result.Summary.CriticalAlmr is { } c) Console.WriteLine(string.Create(ci, $"critical ALMR (forgetting ≤ {c.MaxForgetting}): {c.Almr?.ToString("0.###", ci) ?? "below the swept range"} ({c.Status})"));
            foreach (var w in result.Warnings) Console.WriteLine($"warning: {w}");
            Console.WriteLine($"wrote {result.FitPath}, {result.Plots.Count} figures, {result.ReportPath}, {result.HtmlReportPath}");
            return 0;
        }));
        return cmd;
    }

    static string Iv(Laws.Interval? iv, string format) =>
        iv is null ? "" : string.Create(CultureInfo.InvariantCulture, $" [{iv.Lo.ToString(format, CultureInfo.InvariantCulture)}, {iv.Hi.ToString(format, CultureInfo.InvariantCulture)}]");

    static Command Plan()
    {
        var dir = DirOption();
        var target = new Option<string>("--target") { Description = "The full-size model: a flavor (Llama-3-70B), a checkpoint folder or a config.json.", Required = true };
        var tokens = new Option<string>("--tokens") { Description = "Token budget of the full-size run (e.g. 100B).", Required = true };
        var seqLen = new Option<int?>("--seq-len") { Description = "Sequence length (default: the sweep's)." };
        var batch = new Option<int?>("--global-batch") { Description = "Sequences per step (default: the sweep's global batch)." };
        var decay = new Option<string>("--decay-style") { Description = "cosine, WSD or constant (the schedules both `cptlab train` and Megatron-LM run).", DefaultValueFactory = _ => "cosine" };
        var warmup = new Option<double>("--warmup-fraction") { Description = "Share of the iterations spent warming up.", DefaultValueFactory = _ => 0.01 };
        var minLr = new Option<double?>("--min-lr-ratio") { Description = "min-lr / lr (default: the sweep's schedule)." };
        var other = new Option<DirectoryInfo[]>("--proxy-sweep") { Description = "A fitted sweep of another proxy size (repeatable): fits the LR size rule instead of assuming it." };
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "Folder for the plan files (default: SWEEP_DIR/plan)." };
        var gpus = new Option<int?>("--gpus") { Description = "GPUs of the cluster: lays the run out (tensor, pipeline, data parallel sizes, recomputation) from a memory model, with the estimated time." };
        var gpuMemory = new Option<double>("--gpu-memory") { Description = "Memory of one GPU in GiB (with --gpus).", DefaultValueFactory = _ => 80 };
        var perNode = new Option<int>("--gpus-per-node") { Description = "GPUs per node (with --gpus; tensor parallelism stays within a node).", DefaultValueFactory = _ => 8 };
        var tflops = new Option<double>("--gpu-tflops") { Description = "Dense bf16 peak of one GPU in TFLOP/s, for the time estimate (H100 SXM: 989).", DefaultValueFactory = _ => 989 };
        var mfu = new Option<double>("--mfu") { Description = "Model FLOPs utilisation assumed for the time estimate.", DefaultValueFactory = _ => 0.40 };
        var cmd = new Command("plan", "Plan the full-size run from the fitted sweep: same ALMR, LR scaled for size; writes a `cptlab train` config and, generated from it, the Megatron-LM hand-off (convert in, train, convert out).")
            { dir, target, tokens, seqLen, batch, decay, warmup, minLr, other, outDir, gpus, gpuMemory, perNode, tflops, mfu };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var budget = TokenAmount.ParsePositive(r.GetValue(tokens)!, "--tokens");
            var result = SweepPlan.Run(r.GetValue(dir)!.FullName, new PlanOptions
            {
                Target = r.GetValue(target)!, Tokens = budget, SeqLen = r.GetValue(seqLen), GlobalBatchSize = r.GetValue(batch),
                DecayStyle = r.GetValue(decay)!, WarmupFraction = r.GetValue(warmup), MinLrRatio = r.GetValue(minLr),
                OtherSweeps = (r.GetValue(other) ?? []).Select(d => d.FullName).ToArray(), OutDir = r.GetValue(outDir)?.FullName,
                Cluster = r.GetValue(gpus) is { } n
                    ? new Model.Parallelism.ClusterSpec(n, r.GetValue(gpuMemory), r.GetValue(perNode), r.GetValue(tflops), r.GetValue(mfu))
                    : null,
            });
            Console.Write(result.Description);
            var folder = Path.GetDirectoryName(result.PlanPath)!;
            Console.WriteLine($"wrote {folder}: {string.Join(", ", new[] { result.PlanPath, result.BlendPath, result.TrainConfigPath }.Concat(result.LauncherPaths).Select(Path.GetFileName))}");
            Console.WriteLine($"next: read {Path.Combine(folder, CptLab.Sweep.ScaleOut.MegatronLauncher.ReadmeFile)}; on the cluster run convert_in.sh, train.sh (or sbatch train.sbatch), convert_out.sh");
            return 0;
        }));
        return cmd;
    }

    static Command Report()
    {
        var dir = DirOption();
        var cmd = new Command("report", "Write the sweep's report (Markdown and HTML): runs, losses, and the fit and plan when present.") { dir };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var (md, html) = SweepReport.Run(r.GetValue(dir)!.FullName);
            Console.WriteLine($"wrote {md} and {html}");
            return 0;
        }));
        return cmd;
    }
}
