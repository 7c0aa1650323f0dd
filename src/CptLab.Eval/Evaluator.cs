using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using CptLab.Core;
using CptLab.Eval.Backends;
using CptLab.Eval.Scoring;
using CptLab.Eval.Tasks;

namespace CptLab.Eval;

public sealed record EvalOptions
{
    /// <summary>The folder holding each task's dataset_path (the real files, as downloaded).</summary>
    public required string DataDir { get; init; }
    /// <summary>Only the first N documents of each task or subject (lm-eval's --limit).</summary>
    public int? Limit { get; init; }
    /// <summary>Overrides every task's num_fewshot.</summary>
    public int? NumFewshot { get; init; }
    /// <summary>The few-shot sampler's seed (lm-eval's fewshot_random_seed, 1234 by default).</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>Lets tasks with unsafe_code (HumanEval) run model-written code in the sandbox (lm-eval's confirm_run_unsafe_code).</summary>
    public bool AllowCodeExecution { get; init; }
    /// <summary>Generations per document, overriding each task's repeats (pass@k needs k or more).</summary>
    public int? NumSamples { get; init; }
    /// <summary>Overrides the tasks' sampling temperature (0 = greedy); with <see cref="TopP"/>. Each sample's seed comes from <see cref="Seed"/>.</summary>
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
}

/// <summary>A metric's value over a task or subject: mean, lm-eval's stderr, and the number of documents.</summary>
public sealed record MetricValue(string Metric, double Value, double Stderr, int N);

/// <summary>A task or subject scored: its metrics, and what was skipped.</summary>
public sealed record UnitResult(string Name, int N, IReadOnlyList<MetricValue> Metrics, IReadOnlyList<SkippedDoc> Skipped, IReadOnlyList<string> Files)
{
    /// <summary>Run-level verdicts a scorer adds (EQ-Bench's failed-run rule, a pass@k left out for want of samples).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>A task file's results: its subjects (or itself as the one unit) and, for a group, the size-weighted aggregate.</summary>
public sealed record TaskResult(string Task, string File, string FileHash, string? Version, int NumFewshot, IReadOnlyList<UnitResult> Units, IReadOnlyList<MetricValue> Aggregate)
{
    public int Skipped => Units.Sum(u => u.Skipped.Count);
}

/// <summary>One scored document, for samples.jsonl.</summary>
public sealed record SampleRecord(string Task, int Doc, string File, long Line, string Prompt, string Target,
    IReadOnlyList<string>? Choices, IReadOnlyList<double>? LogLikelihoods, int? Gold, string? Generation,
    IReadOnlyDictionary<string, string>? Filtered, IReadOnlyDictionary<string, double> Scores)
{
    /// <summary>Every generation of the document when the task made more than one (repeats / --num-samples).</summary>
    public IReadOnlyList<string>? Generations { get; init; }
    /// <summary>A loglikelihood_rolling document's counts: tokens scored, words and UTF-8 bytes of its text.</summary>
    public IReadOnlyDictionary<string, long>? Counts { get; init; }
}

/// <summary>A whole evaluation: what was run, on what, and every sample.</summary>
public sealed record EvalRun(string Model, string? ModelConfigHash, string CptLabVersion, long Seed, int? Limit, double WallSeconds,
    IReadOnlyList<TaskResult> Tasks, IReadOnlyList<SampleRecord> Samples)
{
    public string? Dtype { get; init; }
    /// <summary>The server's API root when the model was evaluated through an OpenAI-compatible API.</summary>
    public string? ApiBase { get; init; }
}

/// <summary>
/// Runs tasks against a model as lm-evaluation-harness does: builds the requests of every document, sends them to
/// the backend in one list per task (so it can batch across documents), scores each document by the task's metrics
/// or its named result processor, and aggregates: mean and its stderr per task or subject, the size-weighted mean
/// and pooled stderr per group.
/// </summary>
public static class Evaluator
{
    public static EvalRun Run(IEvalModel model, IReadOnlyList<TaskSpec> tasks, EvalOptions options, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default,
        IReadOnlyDictionary<string, IReadOnlyCollection<string>>? subjects = null)
    {
        Check(tasks, options);
        var clock = Stopwatch.StartNew();
        var results = new List<TaskResult>();
        var samples = new List<SampleRecord>();
        foreach (var spec in tasks)
        {
            int shots = options.NumFewshot ?? spec.NumFewshot;
            var units = TaskData.Load(spec, options.DataDir, shots, options.Limit, options.Seed, subjects?.GetValueOrDefault(spec.Task));
            var unitResults = spec.OutputType switch
            {
                OutputType.MultipleChoice => RunMultipleChoice(model, spec, units, samples, Stage(progress, spec.Task), cancellation),
                OutputType.GenerateUntil => RunGenerate(model, spec, units, samples, Stage(progress, spec.Task), cancellation, options),
                OutputType.LoglikelihoodRolling => RunRolling(model, spec, units, samples, Stage(progress, spec.Task), cancellation),
                _ => throw new CptLabException($"{spec.File}: output_type {spec.OutputType} is not implemented"),
            };
            var aggregate = spec.Subjects.Count == 0 ? [] : Aggregate(unitResults, spec.WeightBySize);
            results.Add(new TaskResult(spec.Task, spec.File, spec.FileHash, spec.Version, shots, unitResults, aggregate));
        }
        string? configHash = File.Exists(Path.Combine(model.Name, "config.json"))
            ? Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(model.Name, "config.json")))) : null;
        return new EvalRun(model.Name, configHash, Version, options.Seed, options.Limit, clock.Elapsed.TotalSeconds, results, samples)
        {
            Dtype = (model as LocalModel)?.Dtype.ToString(),
            ApiBase = (model as OpenAiModel)?.BaseUrl,
        };
    }

    /// <summary>
    /// What must hold before any model work: a task that runs model-written code (unsafe_code) needs
    /// <see cref="EvalOptions.AllowCodeExecution"/>, as lm-eval needs --confirm_run_unsafe_code; several samples per
    /// document need sampling (n greedy samples are n copies).
    /// </summary>
    public static void Check(IReadOnlyList<TaskSpec> tasks, EvalOptions options)
    {
        var unsafeTasks = tasks.Where(t => t.UnsafeCode).ToArray();
        if (unsafeTasks.Length > 0 && !options.AllowCodeExecution)
            throw new CptLabException($"{string.Join(", ", unsafeTasks.Select(t => t.Task))} run{(unsafeTasks.Length == 1 ? "s" : "")} the model's generated code " +
                $"({string.Join(", ", unsafeTasks.Select(t => t.File))} has unsafe_code: true); refusing without permission. Pass --allow-code-execution to run it " +
                "inside the bubblewrap sandbox (no network, read-only system, a private temp dir, CPU/memory/process limits)");
        foreach (var t in tasks.Where(t => t.OutputType == OutputType.GenerateUntil))
            if ((options.NumSamples ?? t.Repeats) > 1 && SamplingFor(t, options) is null)
                throw new CptLabException($"{t.Task}: {options.NumSamples ?? t.Repeats} samples per document with greedy decoding would be identical copies; " +
                    "give --temperature (humaneval_64 in lm-eval samples at 0.2 with --top-p 0.95)");
        if (options.NumSamples is < 1) throw new CptLabException($"--num-samples {options.NumSamples} must be at least 1");
    }

    /// <summary>
    /// The sampling of a task's generations, or null for greedy: the options' temperature when given, else the task's
    /// generation_kwargs. top_k stays at 50, Hugging Face generate's default, which lm-eval's HF backend inherits.
    /// </summary>
    public static Model.SamplingOptions? SamplingFor(TaskSpec spec, EvalOptions options)
    {
        double temperature = options.Temperature ?? (spec.DoSample ? spec.Temperature : 0);
        return temperature == 0 ? null : new Model.SamplingOptions { Temperature = temperature, TopP = options.TopP ?? spec.TopP, TopK = 50 }.Validate();
    }

    /// <summary>A sample's own seed, from the run's seed, the unit, the document and the sample number (so batching cannot change it).</summary>
    static ulong SampleSeed(long seed, string unit, int doc, int sample)
    {
        ulong h = 14695981039346656037UL;                                   // FNV-1a over the unit name: stable across runs, unlike string.GetHashCode
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(unit)) h = (h ^ b) * 1099511628211UL;
        ulong z = h ^ (ulong)seed ^ ((ulong)doc << 24) ^ ((ulong)sample << 48);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;                          // SplitMix64's finaliser
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The CptLab version: the assembly's informational version.</summary>
    public static string Version =>
        typeof(Evaluator).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    static IProgress<EvalProgress>? Stage(IProgress<EvalProgress>? p, string task) =>
        p is null ? null : new SyncProgress<EvalProgress>(e => p.Report(e with { Stage = $"{task} {e.Stage}" }));

    static List<UnitResult> RunMultipleChoice(IEvalModel model, TaskSpec spec, IReadOnlyList<TaskUnit> units, List<SampleRecord> samples, IProgress<EvalProgress>? progress, CancellationToken ct)
    {
        var requests = new List<LoglikelihoodRequest>();
        foreach (var u in units)
            foreach (var d in u.Docs)
                foreach (var c in d.Choices) requests.Add(new LoglikelihoodRequest(d.Prompt, spec.TargetDelimiter + c));
        var lls = model.Loglikelihood(requests, progress, ct);
        return ScoreMultipleChoice(spec, units, lls.Select(r => r.LogLikelihood).ToArray(), samples);
    }

    /// <summary>
    /// Scores multiple-choice documents from their choices' log-likelihoods (all documents' choices in order): what a
    /// run computes after the model, and what `eval rescore` computes from given log-likelihoods.
    /// </summary>
    public static List<UnitResult> ScoreMultipleChoice(TaskSpec spec, IReadOnlyList<TaskUnit> units, IReadOnlyList<double> lls, List<SampleRecord> samples)
    {
        var processor = spec.ProcessResults is { } name ? ResultProcessors.Get(name, spec.File) : null;
        int next = 0;
        var output = new List<UnitResult>();
        foreach (var u in units)
        {
            var perMetric = spec.Metrics.ToDictionary(m => m.Metric, _ => new List<double>());
            foreach (var d in u.Docs)
            {
                var ll = lls.Skip(next).Take(d.Choices.Count).ToArray();
                next += d.Choices.Count;
                var scores = new Dictionary<string, double>();
                if (processor is not null) foreach (var (k, v) in processor(new ProcessInput(d, null, ll)).Metrics) scores[k] = v;
                else
                {
                    var (pred, predNorm) = TaskMetrics.MultipleChoice(ll, d.Choices);
                    scores["acc"] = pred == d.Gold ? 1 : 0;
                    scores["acc_norm"] = predNorm == d.Gold ? 1 : 0;
                }
                foreach (var m in spec.Metrics)
                    perMetric[m.Metric].Add(scores.TryGetValue(m.Metric, out var s) ? s
                        : throw new CptLabException($"{spec.File}: metric '{m.Metric}' is not one a multiple_choice task computes (acc, acc_norm) nor one its process_results gives"));
                samples.Add(new SampleRecord(u.Name, d.Index, d.Doc.File, d.Doc.Line, d.Prompt, d.Choices[d.Gold], d.Choices, ll, d.Gold, null, null,
                    spec.Metrics.ToDictionary(m => m.Metric, m => scores[m.Metric])));
            }
            output.Add(Unit(u, perMetric.Select(kv => (kv.Key, (IReadOnlyList<double>)kv.Value))));
        }
        return output;
    }

    static List<UnitResult> RunGenerate(IEvalModel model, TaskSpec spec, IReadOnlyList<TaskUnit> units, List<SampleRecord> samples, IProgress<EvalProgress>? progress, CancellationToken ct,
        EvalOptions options)
    {
        int repeats = options.NumSamples ?? spec.Repeats;
        var sampling = SamplingFor(spec, options);
        var requests = units.SelectMany(u => u.Docs.SelectMany(d => Enumerable.Range(0, repeats).Select(r => new GenerateUntilRequest(d.Prompt, spec.Until, spec.MaxGenToks)
        {
            Sampling = sampling is null ? null : sampling with { Seed = SampleSeed(options.Seed, u.Name, d.Index, r) },
        }))).ToArray();
        var all = model.GenerateUntil(requests, progress, ct);
        if (all.Count != requests.Length) throw new CptLabException($"{model.Name}: {all.Count} generations for {requests.Length} requests");
        if (spec.ProcessResults is { } batchName && ResultProcessors.GetBatch(batchName) is { } batch)
            return RunBatchScored(spec, units, samples, options, repeats, all, batch);
        var generations = Enumerable.Range(0, all.Count / repeats).Select(i => all[i * repeats]).ToArray(); // take_first
        return ScoreGenerations(spec, units, generations, samples);
    }


    /// <summary>Scores generations (one per document, in order) through the task's filters and metrics: a run's path and `eval rescore`'s.</summary>
    public static List<UnitResult> ScoreGenerations(TaskSpec spec, IReadOnlyList<TaskUnit> units, IReadOnlyList<string> generations, List<SampleRecord> samples)
    {
        var processor = spec.ProcessResults is { } name ? ResultProcessors.Get(name, spec.File) : null;
        var pipelines = spec.Filters.Count > 0 ? spec.Filters : [new FilterPipeline("none", [new FilterStep("take_first")])];
        int next = 0;
        var output = new List<UnitResult>();
        foreach (var u in units)
        {
            var perMetric = new Dictionary<string, List<double>>();
            foreach (var d in u.Docs)
            {
                var gen = generations[next++];
                var scores = new Dictionary<string, double>();
                var filtered = new Dictionary<string, string>();
                if (processor is not null)
                {
                    var r = processor(new ProcessInput(d, gen, null));
                    foreach (var (k, v) in r.Metrics) scores[k] = v;
                    if (r.Extracted is not null) filtered["process_results"] = r.Extracted;
                }
                else
                {
                    foreach (var p in pipelines)
                    {
                        var answer = Filters.Apply(p, gen);
                        filtered[p.Name] = answer;
                        foreach (var m in spec.Metrics)
                        {
                            if (m.Metric != "exact_match") throw new CptLabException($"{spec.File}: metric '{m.Metric}' is not one a generate_until task computes (exact_match) without a process_results");
                            scores[$"{m.Metric},{p.Name}"] = TaskMetrics.ExactMatch(answer, d.Target, m);
                        }
                    }
                }
                foreach (var (k, v) in scores) (perMetric.TryGetValue(k, out var l) ? l : perMetric[k] = []).Add(v);
                samples.Add(new SampleRecord(u.Name, d.Index, d.Doc.File, d.Doc.Line, d.Prompt, d.Target, null, null, null, gen, filtered, scores));
            }
            output.Add(Unit(u, perMetric.Select(kv => (kv.Key, (IReadOnlyList<double>)kv.Value))));
        }
        return output;
    }

    /// <summary>A corpus-level scorer sees a unit's documents and all their generations at once (HumanEval runs them in parallel).</summary>
    static List<UnitResult> RunBatchScored(TaskSpec spec, IReadOnlyList<TaskUnit> units, List<SampleRecord> samples, EvalOptions options, int repeats,
        IReadOnlyList<string> all, Func<BatchInput, BatchOutput> batch)
    {
        int next = 0;
        var output = new List<UnitResult>();
        foreach (var u in units)
        {
            var gens = new IReadOnlyList<string>[u.Docs.Count];
            for (int i = 0; i < gens.Length; i++, next += repeats) gens[i] = all.Skip(next).Take(repeats).ToArray();
            var scored = batch(new BatchInput(spec, u, gens, options));
            var perMetric = new Dictionary<string, List<double>>();
            for (int i = 0; i < u.Docs.Count; i++)
            {
                var d = u.Docs[i];
                var r = scored.PerDoc[i];
                foreach (var (k, v) in r.Metrics) (perMetric.TryGetValue(k, out var l) ? l : perMetric[k] = []).Add(v);
                var filtered = r.Extracted is null ? null : new Dictionary<string, string> { ["process_results"] = r.Extracted };
                samples.Add(new SampleRecord(u.Name, d.Index, d.Doc.File, d.Doc.Line, d.Prompt, d.Target, null, null, null, gens[i][0], filtered, r.Metrics)
                {
                    Generations = repeats > 1 ? gens[i] : null,
                });
            }
            var unit = Unit(u, perMetric.Select(kv => (kv.Key, (IReadOnlyList<double>)kv.Value)));
            output.Add(unit with { Metrics = [.. unit.Metrics, .. scored.UnitMetrics], Notes = scored.Notes });
        }
        return output;
    }

    static List<UnitResult> RunRolling(IEvalModel model, TaskSpec spec, IReadOnlyList<TaskUnit> units, List<SampleRecord> samples, IProgress<EvalProgress>? progress, CancellationToken ct)
    {
        var results = model.LoglikelihoodRolling(units.SelectMany(u => u.Docs).Select(d => d.Target).ToArray(), progress, ct);
        return ScoreRolling(spec, units, results, samples);
    }

    /// <summary>
    /// Scores whole documents from their rolling log-likelihoods (lm-eval's loglikelihood_rolling): bytes and words
    /// counted on the document text, the aggregate weighted by them (<see cref="Perplexity"/>).
    /// </summary>
    public static List<UnitResult> ScoreRolling(TaskSpec spec, IReadOnlyList<TaskUnit> units, IReadOnlyList<LoglikelihoodResult> results, List<SampleRecord> samples)
    {
        int next = 0;
        var output = new List<UnitResult>();
        foreach (var u in units)
        {
            var docs = new List<(double LogLikelihood, long Words, long Bytes)>();
            foreach (var d in u.Docs)
            {
                var r = results[next++];
                long words = Perplexity.CountWords(d.Target), bytes = Perplexity.CountBytes(d.Target);
                docs.Add((r.LogLikelihood, words, bytes));
                var scores = spec.Metrics.ToDictionary(m => m.Metric, m => Perplexity.PerDocument(m.Metric, r.LogLikelihood, words, bytes));
                samples.Add(new SampleRecord(u.Name, d.Index, d.Doc.File, d.Doc.Line, d.Prompt, d.Target, null, [r.LogLikelihood], null, null, null, scores)
                {
                    Counts = new Dictionary<string, long> { ["tokens"] = r.Tokens, ["words"] = words, ["bytes"] = bytes },
                });
            }
            // lm-eval reports no stderr for these aggregations (they are not means).
            var metrics = docs.Count == 0 ? [] : spec.Metrics.Select(m => new MetricValue(m.Metric, Perplexity.Aggregate(m.Metric, docs), double.NaN, docs.Count)).ToArray();
            output.Add(new UnitResult(u.Name, u.Docs.Count, metrics, u.Skipped, u.Files));
        }
        return output;
    }

    static UnitResult Unit(TaskUnit u, IEnumerable<(string Metric, IReadOnlyList<double> Values)> metrics) =>
        new(u.Name, u.Docs.Count, metrics.Select(m => new MetricValue(m.Metric, TaskMetrics.Mean(m.Values), TaskMetrics.MeanStderr(m.Values), m.Values.Count)).ToArray(), u.Skipped, u.Files);

    /// <summary>lm-eval's group aggregation: size-weighted mean of the subjects and the pooled stderr.</summary>
    public static IReadOnlyList<MetricValue> Aggregate(IReadOnlyList<UnitResult> units, bool weightBySize)
    {
        var names = units.SelectMany(u => u.Metrics.Select(m => m.Metric)).Distinct().ToArray();
        var output = new List<MetricValue>();
        foreach (var name in names)
        {
            var ms = units.Select(u => u.Metrics.FirstOrDefault(m => m.Metric == name)).Where(m => m is not null && m.N > 0).ToArray();
            if (ms.Length == 0) continue;
            var sizes = ms.Select(m => m!.N).ToArray();
            double value = TaskMetrics.Aggregate(ms.Select(m => m!.Value).ToArray(), sizes, weightBySize);
            double stderr = ms.Any(m => double.IsNaN(m!.Stderr)) ? double.NaN : TaskMetrics.PooledStderr(ms.Select(m => m!.Stderr).ToArray(), sizes);
            output.Add(new MetricValue(name, value, stderr, sizes.Sum()));
        }
        return output;
    }
}
