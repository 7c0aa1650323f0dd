using System.CommandLine;
using System.Globalization;
using CptLab.Eval;
using CptLab.Eval.Backends;
using CptLab.Eval.Results;
using CptLab.Eval.Tasks;
using CptLab.Model;
using Spectre.Console;

namespace CptLab.Cli;

/// <summary>`cptlab eval`: benchmark tasks (YAML files) scored as lm-evaluation-harness scores them; `cptlab eval tasks` lists them.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model directory: config.json, safetensors weights, tokenizer.json." };
        var tasks = new Option<string>("--tasks") { Description = "Comma-separated tasks: a task (cmmlu), a subject (cmmlu_agronomy) or a prefix (emobench). `cptlab eval tasks` lists them." };
        var dataDir = new Option<DirectoryInfo>("--data-dir") { Description = "Folder holding each task's dataset_path (the benchmark files as published).", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("..", "shared", "data")) };
        var limit = new Option<int?>("--limit") { Description = "Only the first N documents of each task or subject." };
        var shots = new Option<int?>("--num-fewshot") { Description = "Few-shot examples per prompt, overriding each task's num_fewshot." };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for results.json, samples.jsonl and results.md.", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("out", "eval")) };
        var dtype = new Option<string>("--dtype") { Description = "auto (the faster on this machine), float32 or bfloat16.", DefaultValueFactory = _ => "auto" };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per forward pass.", DefaultValueFactory = _ => 8 };
        var seed = new Option<long>("--seed") { Description = "Few-shot sampler seed (lm-eval's fewshot_random_seed).", DefaultValueFactory = _ => 1234 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest model input in tokens (lm-eval's max_length; loglikelihood_rolling windows): default the model's context.", DefaultValueFactory = _ => 0 };
        var tasksDir = new Option<DirectoryInfo>("--tasks-dir") { Description = "Folder of task YAML files (default: the built-in ones)." };
        var cmd = new Command("eval", "Evaluate a model on benchmark tasks with lm-evaluation-harness semantics; writes results.json, samples.jsonl and results.md.")
        {
            model, tasks, dataDir, limit, shots, outDir, dtype, batch, seed, tasksDir, maxLength,
        };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var dir = r.GetValue(model) ?? throw new Core.CptLabException("--model DIR is required");
            var selection = r.GetValue(tasks) ?? throw new Core.CptLabException("--tasks is required (see `cptlab eval tasks`)");
            var registry = new TaskRegistry(r.GetValue(tasksDir)?.FullName ?? TaskRegistry.DefaultFolder);
            var (specs, subjects) = registry.Select(selection);
            TorchRuntime.Initialise();
            using var backend = LocalModel.Open(dir.FullName, r.GetValue(dtype), r.GetValue(batch), w => Console.Error.WriteLine(w), r.GetValue(maxLength));
            Console.Error.WriteLine($"model {backend.Name}: {DtypeNames.HfName(backend.Dtype)} ({backend.DtypeChoice?.Reason})");
            var options = new EvalOptions { DataDir = r.GetValue(dataDir)!.FullName, Limit = r.GetValue(limit), NumFewshot = r.GetValue(shots), Seed = r.GetValue(seed) };
            EvalRun? run = null;
            if (Console.IsErrorRedirected)
                run = Evaluator.Run(backend, specs, options, subjects: subjects);
            else
                AnsiConsole.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var bars = new Dictionary<string, ProgressTask>();
                        run = Evaluator.Run(backend, specs, options, new Core.SyncProgress<EvalProgress>(p =>
                        {
                            if (!bars.TryGetValue(p.Stage, out var bar)) bars[p.Stage] = bar = ctx.AddTask(Markup.Escape(p.Stage), maxValue: Math.Max(1, p.Total));
                            bar.Value = p.Done;
                        }), subjects: subjects);
                    });
            ResultsWriter.Write(run!, r.GetValue(outDir)!.FullName);
            Console.Write(ResultsWriter.Markdown(run!));
            Console.WriteLine($"wrote {Path.Combine(r.GetValue(outDir)!.FullName, ResultsWriter.ResultsFile)} ({run!.Samples.Count} samples, {run.WallSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s)");
            return 0;
        }));
        cmd.Subcommands.Add(List(tasksDir));
        return cmd;
    }

    static Command List(Option<DirectoryInfo> tasksDir)
    {
        var cmd = new Command("tasks", "List the task files: name, kind, few-shot count, subjects, metrics.") { tasksDir };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var registry = new TaskRegistry(r.GetValue(tasksDir)?.FullName ?? TaskRegistry.DefaultFolder);
            foreach (var t in registry.All())
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{t.Task,-26} {t.OutputType,-15} {t.NumFewshot}-shot  {(t.Subjects.Count > 0 ? $"{t.Subjects.Count} subjects" : "-"),-12} {string.Join(", ", t.Metrics.Select(m => m.Metric))}  {t.DatasetPath}/"));
            return 0;
        }));
        return cmd;
    }
}
