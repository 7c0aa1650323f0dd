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
        var dataDir = DataDirOption("Folders holding each task's dataset_path (the benchmark files as published), ':'-separated, searched in order.");
        var limit = new Option<int?>("--limit") { Description = "Only the first N documents of each task or subject." };
        var shots = new Option<int?>("--num-fewshot") { Description = "Few-shot examples per prompt, overriding each task's num_fewshot." };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for results.json, samples.jsonl and results.md.", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("out", "eval")) };
        var dtype = new Option<string>("--dtype") { Description = "auto (the faster on this machine), float32 or bfloat16.", DefaultValueFactory = _ => "auto" };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per forward pass.", DefaultValueFactory = _ => 8 };
        var seed = new Option<long>("--seed") { Description = "Few-shot sampler seed (lm-eval's fewshot_random_seed).", DefaultValueFactory = _ => 1234 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest model input in tokens (lm-eval's max_length; loglikelihood_rolling windows): default the model's context.", DefaultValueFactory = _ => 0 };
        var tasksDir = new Option<DirectoryInfo>("--tasks-dir") { Description = "Folder of task YAML files (default: the built-in ones)." };
        var apiBase = new Option<string>("--api-base") { Description = "Evaluate a model behind an OpenAI-compatible server instead of --model: its API root, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, cptlab serve)." };
        var apiKey = new Option<string>("--api-key") { Description = "Bearer key for --api-base (default: $OPENAI_API_KEY); never written to the results." };
        var modelName = new Option<string>("--model-name") { Description = "The model name requests carry (default: the server's first /v1/models entry)." };
        var tokenizer = new Option<DirectoryInfo>("--tokenizer") { Description = "Folder with the served model's tokenizer (tokenizer.json or tokenizer.model): required for multiple-choice tasks through --api-base; prompts go as token ids." };
        var chat = new Option<bool>("--chat") { Description = "With --api-base: generate through /v1/chat/completions, the prompt as one user message (the server applies the model's chat template)." };
        var concurrency = new Option<int>("--api-concurrency") { Description = "Requests in flight at once with --api-base.", DefaultValueFactory = _ => 4 };
        var allowCode = new Option<bool>("--allow-code-execution") { Description = "Run model-written code (HumanEval) in the bubblewrap sandbox; tasks that execute code are refused without it." };
        var numSamples = new Option<int?>("--num-samples") { Description = "Generations per document (pass@k needs k or more; give --temperature)." };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature for generation tasks (0 = greedy; default: the task's)." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling for generation tasks (default: the task's, else 1)." };
        var cmd = new Command("eval", "Evaluate a model on benchmark tasks with lm-evaluation-harness semantics; writes results.json, samples.jsonl and results.md.")
        {
            model, tasks, dataDir, limit, shots, outDir, dtype, batch, seed, tasksDir, apiBase, apiKey, modelName, tokenizer, chat, concurrency,
            allowCode, numSamples, temperature, topP, maxLength,
        };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var dir = r.GetValue(model);
            var url = r.GetValue(apiBase);
            if ((dir is null) == (url is null)) throw new Core.CptLabException("give exactly one of --model DIR (in-process) and --api-base URL (an OpenAI-compatible server)");
            var selection = r.GetValue(tasks) ?? throw new Core.CptLabException("--tasks is required (see `cptlab eval tasks`)");
            var registry = new TaskRegistry(r.GetValue(tasksDir)?.FullName ?? TaskRegistry.DefaultFolder);
            var (specs, subjects) = registry.Select(selection);
            var options = new EvalOptions
            {
                DataDir = FullPaths(r.GetValue(dataDir)!), Limit = r.GetValue(limit), NumFewshot = r.GetValue(shots), Seed = r.GetValue(seed),
                AllowCodeExecution = r.GetValue(allowCode), NumSamples = r.GetValue(numSamples), Temperature = r.GetValue(temperature), TopP = r.GetValue(topP),
            };
            Evaluator.Check(specs, options);   // before the model loads: refuse code execution without --allow-code-execution
            using IEvalModel backend = url is null ? OpenLocal(dir!.FullName, r.GetValue(dtype), r.GetValue(batch), r.GetValue(maxLength))
                : OpenApi(url, r.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("OPENAI_API_KEY"), r.GetValue(modelName), r.GetValue(tokenizer), r.GetValue(chat), r.GetValue(concurrency));
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
            if (backend is LocalModel local && local.TokensForwarded > 0)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"log-likelihoods: {local.TokensForwarded:N0} tokens in {local.RowsForwarded:N0} rows, {local.TokensForwarded / run.WallSeconds:N0} tokens/s over the run's wall time"));
            return 0;
        }));
        cmd.Subcommands.Add(List(tasksDir));
        cmd.Subcommands.Add(Compare());
        cmd.Subcommands.Add(RescoreCommand(tasksDir));
        return cmd;
    }

    static Command Compare()
    {
        var a = new Argument<FileInfo>("A") { Description = "results.json of run A (its samples.jsonl beside it)." };
        var b = new Argument<FileInfo>("B") { Description = "results.json of run B." };
        var cmd = new Command("compare", "Per task, subject and metric: A, B, B − A and a paired test over the documents (McNemar exact for 0/1 scores, paired t otherwise).") { a, b };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var rows = RunComparison.Compare(r.GetValue(a)!.FullName, r.GetValue(b)!.FullName);
            var table = new Table().AddColumns("task", "subject", "metric", "A", "B", "B − A", "n", "test", "p");
            foreach (var row in rows)
                table.AddRow(Markup.Escape(row.Task), Markup.Escape(row.Unit == row.Task ? "" : row.Unit), Markup.Escape(row.Metric), RunComparison.Format(row.A), RunComparison.Format(row.B),
                    (row.Delta >= 0 ? "+" : "") + RunComparison.Format(row.Delta), row.Pairs.ToString(CultureInfo.InvariantCulture), row.Test,
                    double.IsFinite(row.PValue) ? row.PValue.ToString("0.0000", CultureInfo.InvariantCulture) : "n/a");
            AnsiConsole.Write(table);
            return 0;
        }));
        return cmd;
    }

    static Command RescoreCommand(Option<DirectoryInfo> tasksDir)
    {
        var task = new Option<string>("--task") { Description = "The task (or task_subject) the predictions are for.", Required = true };
        var predictions = new Option<FileInfo>("--predictions") { Description = "JSONL: doc (or doc_id), task for a task with subjects, and generation | loglikelihoods | loglikelihood (or lm-eval's resps). A samples.jsonl is one.", Required = true };
        var dataDir = DataDirOption("Folders holding the task's dataset_path, ':'-separated, searched in order.");
        var limit = new Option<int?>("--limit") { Description = "Only the first N documents of each task or subject (as the run that made the predictions)." };
        var shots = new Option<int?>("--num-fewshot") { Description = "Few-shot count of the run that made the predictions (it shapes the prompts recorded)." };
        var seed = new Option<long>("--seed") { Description = "Few-shot sampler seed of that run.", DefaultValueFactory = _ => 1234 };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for results.json, samples.jsonl and results.md.", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("out", "eval-rescore")) };
        var cmd = new Command("rescore", "Score predictions made elsewhere (no model) with the task's filters and metrics, as `cptlab eval` scores them.")
        {
            task, predictions, dataDir, limit, shots, seed, outDir, tasksDir,
        };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var registry = new TaskRegistry(r.GetValue(tasksDir)?.FullName ?? TaskRegistry.DefaultFolder);
            var (specs, subjects) = registry.Select(r.GetValue(task)!);
            if (specs.Count != 1) throw new Core.CptLabException($"--task {r.GetValue(task)} selects {specs.Count} tasks ({string.Join(", ", specs.Select(t => t.Task))}); rescore one at a time");
            var options = new EvalOptions { DataDir = FullPaths(r.GetValue(dataDir)!), Limit = r.GetValue(limit), NumFewshot = r.GetValue(shots), Seed = r.GetValue(seed) };
            var run = Rescore.Run(specs[0], r.GetValue(predictions)!.FullName, options, subjects.GetValueOrDefault(specs[0].Task));
            ResultsWriter.Write(run, r.GetValue(outDir)!.FullName);
            Console.Write(ResultsWriter.Markdown(run));
            Console.WriteLine($"wrote {Path.Combine(r.GetValue(outDir)!.FullName, ResultsWriter.ResultsFile)} ({run.Samples.Count} samples)");
            return 0;
        }));
        return cmd;
    }

    /// <summary>--data-dir: the shared benchmark data, then the demo corpora (bpb_en, bpb_zh) when run from the repository.</summary>
    static Option<string> DataDirOption(string description) => new("--data-dir")
    {
        Description = description,
        DefaultValueFactory = _ => string.Join(Path.PathSeparator, Path.Combine("..", "shared", "data"), Path.Combine(".cache", "corpora")),
    };

    static string FullPaths(string folders) =>
        string.Join(Path.PathSeparator, folders.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Select(Path.GetFullPath));

    static LocalModel OpenLocal(string dir, string? dtype, int batch, int maxLength)
    {
        TorchRuntime.Initialise();
        var backend = LocalModel.Open(dir, dtype, batch, w => Console.Error.WriteLine(w), maxLength);
        Console.Error.WriteLine($"model {backend.Name}: {DtypeNames.HfName(backend.Dtype)} ({backend.DtypeChoice?.Reason})");
        return backend;
    }

    static OpenAiModel OpenApi(string url, string? key, string? name, DirectoryInfo? tokenizer, bool chat, int concurrency)
    {
        var backend = OpenAiModel.Connect(new OpenAiModelOptions
        {
            BaseUrl = url, ApiKey = key, ModelName = name, Chat = chat, Concurrency = concurrency,
            Tokenizer = tokenizer is null ? null : Data.Tokenization.TextTokenizer.Load(tokenizer.FullName),
        });
        var prompts = chat ? "generation as chat messages" : tokenizer is null ? "text prompts, no tokenizer" : "token-id prompts";
        Console.Error.WriteLine($"model {backend.Name} at {backend.BaseUrl} ({prompts}{(tokenizer is null ? "" : ", tokenizer " + tokenizer.FullName)}, {concurrency} requests at a time)");
        return backend;
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
