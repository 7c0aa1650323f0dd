using System.CommandLine;
using CptLab.Core;
using CptLab.Training;
using Spectre.Console;

namespace CptLab.Cli;

/// <summary>`cptlab train --config FILE --out RUN_DIR` and `cptlab train --resume RUN_DIR`.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config") { Description = "Training config (YAML or JSON): model or base checkpoint, data blend, optimizer, schedule, batch, budget." };
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "Run folder for config copy, metrics.jsonl, checkpoints and the final model." };
        var resume = new Option<DirectoryInfo?>("--resume") { Description = "Continue the run in this folder from its last checkpoint, with its own config.json." };
        var cmd = new Command("train", "Pre-train or continually pre-train a model (exact resume after a crash or kill).") { config, outDir, resume };
        cmd.SetAction((r, cancellation) => Task.Run(() => CliAction.Run(() =>
        {
            var (configFile, runDir, resumeDir) = (r.GetValue(config), r.GetValue(outDir), r.GetValue(resume));
            string dir;
            TrainConfig cfg;
            if (resumeDir is not null)
            {
                if (configFile is not null || runDir is not null) throw new CptLabException("--resume takes the run's own config.json; give neither --config nor --out");
                dir = resumeDir.FullName;
                var saved = Path.Combine(dir, Trainer.ConfigFileName);
                if (!File.Exists(saved)) throw new CptLabException($"{dir} is not a run folder: it has no {Trainer.ConfigFileName}");
                cfg = TrainConfig.Load(saved);
            }
            else
            {
                if (configFile is null || runDir is null) throw new CptLabException("give --config FILE and --out RUN_DIR (or --resume RUN_DIR)");
                dir = runDir.FullName;
                cfg = TrainConfig.Load(configFile.FullName);
            }
            if (cfg.Data is null) throw new ConfigException(configFile?.FullName ?? dir, "data.mixture", "missing: the blend manifest written by `cptlab data mix`");
            using var data = BlendTrainingData.Open(cfg.Data, cfg.SeqLen, cfg.EvalMaxSequences);
            var result = RunWithProgress(cfg, data, dir, resumeDir is not null, cancellation);
            foreach (var (name, v) in result.Validation)
                Console.WriteLine($"validation {name}: loss {v.Loss:F4}, {v.BitsPerByte:F4} bits/byte");
            Console.WriteLine($"final model: {result.FinalModelDir}");
            return 0;
        }), CancellationToken.None));
        return cmd;
    }

    /// <summary>Runs the trainer under a console progress bar (loss, tokens/s, ETA), or plain lines when output is redirected.</summary>
    static TrainResult RunWithProgress(TrainConfig cfg, ITrainingData data, string dir, bool resume, CancellationToken cancellation)
    {
        if (Console.IsOutputRedirected)
        {
            long every = Math.Max(1, cfg.TotalSteps / 20);
            var plain = new TrainerHooks
            {
                Log = Console.WriteLine,
                Progress = new SyncProgress<TrainProgress>(p =>
                {
                    if (p.Step % every == 0 || p.Step == p.TotalSteps)
                        Console.WriteLine($"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4} lr {p.Lr:G3} {p.TokensPerSecond:N0} tok/s");
                }),
            };
            return Trainer.Run(cfg, data, dir, resume, plain, cancellation);
        }
        TrainResult? result = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: cfg.TotalSteps);
                var hooks = new TrainerHooks
                {
                    Log = line => AnsiConsole.MarkupLine(Markup.Escape(line)),
                    Progress = new SyncProgress<TrainProgress>(p =>
                    {
                        task.Value = p.Step;
                        var mfu = double.IsFinite(p.Mfu) ? $" MFU {p.Mfu:P0}" : "";
                        task.Description = Markup.Escape($"step {p.Step}/{p.TotalSteps} loss {p.Loss:F3} {p.TokensPerSecond:N0} tok/s{mfu}");
                    }),
                };
                result = Trainer.Run(cfg, data, dir, resume, hooks, cancellation);
            });
        return result!;
    }
}
