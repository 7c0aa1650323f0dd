using System.CommandLine;
using CptLab.Core;
using CptLab.Training;
using CptLab.Training.PostTraining;
using Spectre.Console;

namespace CptLab.Cli;

/// <summary>`cptlab train --config FILE --out RUN_DIR` and `cptlab train --resume RUN_DIR`.</summary>
public static class TrainCommand
{
    public static Command Create() => Build("train", "Pre-train or continually pre-train a model (exact resume after a crash or kill).",
        "Training config (YAML or JSON): model or base checkpoint, data blend, optimizer, schedule, batch, budget.", null);

    /// <summary>`cptlab sft`: supervised fine-tuning on chat data.</summary>
    public static Command CreateSft() => Build("sft", "Supervised fine-tuning of a model folder on chat conversations (messages, ShareGPT or Alpaca), assistant turns trained, packed (exact resume).",
        "SFT config (YAML or JSON): model.init_from, an sft: section (train files, format, cutoff_len, packing, train_on_prompt, mask_history, epochs), optimizer, batch.", PostTrainStage.Sft);

    /// <summary>`cptlab dpo`: preference optimisation from an SFT model.</summary>
    public static Command CreateDpo() => Build("dpo", "Preference optimisation (DPO, IPO, hinge, robust, SimPO, ORPO) of a model folder on chosen/rejected pairs; the reference's log-probs computed once (exact resume).",
        "DPO config (YAML or JSON): model.init_from, a dpo: section (train files, format, loss, beta, label_smoothing, rpo_alpha, epochs), optimizer, batch.", PostTrainStage.Dpo);

    static Command Build(string verb, string description, string configHelp, PostTrainStage? stage)
    {
        var config = new Option<FileInfo?>("--config") { Description = configHelp };
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "Run folder for config copy, metrics.jsonl, checkpoints and the final model." };
        var resume = new Option<DirectoryInfo?>("--resume") { Description = "Continue the run in this folder from its last checkpoint, with its own config.json." };
        var cmd = new Command(verb, description) { config, outDir, resume };
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
                if (configFile is null || runDir is null) throw new CptLabException($"give --config FILE and --out RUN_DIR (or --resume RUN_DIR)");
                dir = runDir.FullName;
                cfg = TrainConfig.Load(configFile.FullName);
            }
            var source = configFile?.FullName ?? Path.Combine(dir, Trainer.ConfigFileName);
            TrainResult result;
            if (stage is { } s)
            {
                var section = s == PostTrainStage.Sft ? "sft" : "dpo";
                if (cfg.Post is not { } post || post.Stage != s)
                    throw new ConfigException(source, section, $"missing: `cptlab {verb}` needs an {section}: section{(cfg.Post is { } other ? $" (this config has {other.Section}:; run `cptlab {other.Section}`)" : "")}");
                result = RunWithProgress(cfg, hooks => PostTrainer.Run(cfg, dir, resumeDir is not null, hooks, cancellation));
            }
            else
            {
                if (cfg.Post is { } post) throw new ConfigException(source, post.Section, $"a post-training section; run `cptlab {post.Section}` for it");
                if (cfg.Data is null) throw new ConfigException(source, "data.mixture", "missing: the blend manifest written by `cptlab data mix`");
                using var data = BlendTrainingData.Open(cfg.Data, cfg.SeqLen, cfg.EvalMaxSequences);
                result = RunWithProgress(cfg, hooks => Trainer.Run(cfg, data, dir, resumeDir is not null, hooks, cancellation));
            }
            foreach (var (name, v) in result.Validation)
            {
                var extra = v.Metrics is { } m && m.TryGetValue("rewards/accuracies", out var acc) ? $", reward accuracy {acc:P1}, margin {m["rewards/margins"]:F3}" : "";
                var bpb = double.IsFinite(v.BitsPerByte) ? $", {v.BitsPerByte:F4} bits/byte" : "";
                Console.WriteLine($"validation {name}: loss {v.Loss:F4}{bpb}{extra}");
            }
            Console.WriteLine($"final model: {result.FinalModelDir}");
            return 0;
        }), CancellationToken.None));
        return cmd;
    }

    /// <summary>Runs the trainer under a console progress bar (loss, tokens/s, ETA), or plain lines when output is redirected.</summary>
    static TrainResult RunWithProgress(TrainConfig cfg, Func<TrainerHooks, TrainResult> train)
    {
        if (Console.IsOutputRedirected)
        {
            var plain = new TrainerHooks
            {
                Log = Console.WriteLine,
                Progress = new SyncProgress<TrainProgress>(p =>
                {
                    if (p.Step % Math.Max(1, p.TotalSteps / 20) == 0 || p.Step == p.TotalSteps)
                        Console.WriteLine($"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{Accuracy(p)} lr {p.Lr:G3} {p.TokensPerSecond:N0} tok/s");
                }),
            };
            return train(plain);
        }
        TrainResult? result = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                // A post-training run learns its step count once the data is read: the bar follows the progress reports.
                var task = ctx.AddTask("training", maxValue: Math.Max(1, cfg.TotalSteps));
                var hooks = new TrainerHooks
                {
                    Log = line => AnsiConsole.MarkupLine(Markup.Escape(line)),
                    Progress = new SyncProgress<TrainProgress>(p =>
                    {
                        task.MaxValue = p.TotalSteps;
                        task.Value = p.Step;
                        var mfu = double.IsFinite(p.Mfu) ? $" MFU {p.Mfu:P0}" : "";
                        task.Description = Markup.Escape($"step {p.Step}/{p.TotalSteps} loss {p.Loss:F3}{Accuracy(p)} {p.TokensPerSecond:N0} tok/s{mfu}");
                    }),
                };
                result = train(hooks);
            });
        return result!;
    }

    /// <summary>DPO's reward accuracy, where the objective reports it.</summary>
    static string Accuracy(TrainProgress p) => p.Metrics is { } m && m.TryGetValue("rewards/accuracies", out var a) ? $" reward acc {a:P0}" : "";
}
