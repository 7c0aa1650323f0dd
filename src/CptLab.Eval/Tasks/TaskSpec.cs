using System.Security.Cryptography;
using CptLab.Core;

namespace CptLab.Eval.Tasks;

public enum OutputType { MultipleChoice, GenerateUntil, LoglikelihoodRolling }

/// <summary>One step of a filter pipeline (lm-eval's filter functions): regex, take_first, lowercase, uppercase, strip.</summary>
public sealed record FilterStep(string Function, string? RegexPattern = null, int GroupSelect = 0, string Fallback = "[invalid]");

/// <summary>A named filter pipeline (lm-eval's filter_list entry): each response goes through the steps in order.</summary>
public sealed record FilterPipeline(string Name, IReadOnlyList<FilterStep> Steps);

/// <summary>A metric_list entry, with exact_match's options.</summary>
public sealed record MetricSpec(string Metric, string Aggregation = "mean", bool HigherIsBetter = true)
{
    public bool IgnoreCase { get; init; }
    public bool IgnorePunctuation { get; init; }
    public IReadOnlyList<string> RegexesToIgnore { get; init; } = [];
}

/// <summary>A subject of a grouped task (a CMMLU subject): its data-file name and the name its description uses.</summary>
public sealed record Subject(string Name, string DisplayName);

/// <summary>
/// A benchmark task as data, with lm-evaluation-harness's field names (docs/eval.md lists them). One YAML file per
/// task; a task with <see cref="Subjects"/> is a group whose data files are per subject and whose aggregate is
/// size-weighted when <see cref="WeightBySize"/>.
/// </summary>
public sealed record TaskSpec
{
    public required string Task { get; init; }
    /// <summary>The YAML file it was read from, and the SHA-256 of its bytes (recorded in results.json).</summary>
    public required string File { get; init; }
    public required string FileHash { get; init; }
    /// <summary>Folder of the data files, relative to --data-dir.</summary>
    public required string DatasetPath { get; init; }
    /// <summary>Split → candidate file patterns (templates over <c>subject</c>), the first that exists is read.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> DataFiles { get; init; }
    /// <summary>csv, jsonl, json or parquet; null = from the file's extension (a .gz is decompressed).</summary>
    public string? Format { get; init; }
    public required string TestSplit { get; init; }
    public string? FewshotSplit { get; init; }
    /// <summary>"default" (lm-eval's ContextSampler: Python random.sample, seeded once per task) or "first_n".</summary>
    public string FewshotSampler { get; init; } = "default";
    public int NumFewshot { get; init; }
    public string Description { get; init; } = "";
    public required string DocToText { get; init; }
    /// <summary>Choice templates, or null when <see cref="DocToChoiceField"/> names a list column.</summary>
    public IReadOnlyList<string>? DocToChoice { get; init; }
    public string? DocToChoiceField { get; init; }
    public required string DocToTarget { get; init; }
    public string TargetDelimiter { get; init; } = " ";
    public string FewshotDelimiter { get; init; } = "\n\n";
    public required OutputType OutputType { get; init; }
    public IReadOnlyList<string> Until { get; init; } = [];
    public int MaxGenToks { get; init; } = 256;
    public IReadOnlyList<FilterPipeline> Filters { get; init; } = [];
    public required IReadOnlyList<MetricSpec> Metrics { get; init; }
    public IReadOnlyList<Subject> Subjects { get; init; } = [];
    public bool WeightBySize { get; init; } = true;
    /// <summary>A result processor by name (lm-eval's <c>process_results: !function utils.process_results</c>), see <see cref="Scoring.ResultProcessors"/>.</summary>
    public string? ProcessResults { get; init; }
    /// <summary>Only the documents whose fields equal these values (EmoBench's language).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Where { get; init; } = [];
    public string? Version { get; init; }
    /// <summary>lm-eval's <c>unsafe_code</c>: the task runs model-written code, so it needs --allow-code-execution.</summary>
    public bool UnsafeCode { get; init; }
    /// <summary>lm-eval's <c>repeats</c>: generations per document (pass@k needs k or more).</summary>
    public int Repeats { get; init; } = 1;
    /// <summary>generation_kwargs do_sample / temperature / top_p: sampled generation; false = greedy.</summary>
    public bool DoSample { get; init; }
    public double Temperature { get; init; }
    public double TopP { get; init; } = 1.0;
    /// <summary>A document transform by name (lm-eval's <c>process_docs: !function utils.process_docs</c>), see <see cref="DocProcessors"/>.</summary>
    public string? ProcessDocs { get; init; }
    /// <summary>fewshot_config.samples: the shots written into the task file (minerva_math's four), used in order.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> FewshotSamples { get; init; } = [];
    /// <summary>
    /// Only the documents `cptlab data prepare --validation-fraction F` holds out (their split hash below F), each as the
    /// cleaner leaves it: how a loglikelihood_rolling task reads the held-out text of a training corpus.
    /// </summary>
    public double? HeldOutFraction { get; init; }

    /// <summary>Reads a task file strictly: an unknown key, a wrong type or a missing required key is refused with file:line.</summary>
    public static TaskSpec Load(string path)
    {
        byte[] bytes;
        try { bytes = System.IO.File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CptLabException($"{path}: cannot read the task file: {e.Message}"); }
        var y = YamlSection.Parse(new System.Text.UTF8Encoding(false).GetString(bytes), path);
        var output = y.RequiredString("output_type") switch
        {
            "multiple_choice" => OutputType.MultipleChoice,
            "generate_until" => OutputType.GenerateUntil,
            "loglikelihood_rolling" => OutputType.LoglikelihoodRolling,
            var o => throw y.Error("output_type", $"'{o}' is not multiple_choice, generate_until or loglikelihood_rolling"),
        };
        var dataFiles = new Dictionary<string, IReadOnlyList<string>>();
        if (y.Section("data_files") is { } df)
        {
            foreach (var split in new[] { "train", "dev", "validation", "test", "val" })
                if (df.Strings(split, allowScalar: true) is { } files) dataFiles[split] = files;
        }
        var fewshotConfig = y.Section("fewshot_config");
        var gen = y.Section("generation_kwargs");
        IReadOnlyList<string>? choices = null;
        string? choiceField = null;
        if (y.IsList("doc_to_choice")) choices = y.Strings("doc_to_choice");
        else choiceField = y.String("doc_to_choice");

        var spec = new TaskSpec
        {
            Task = y.RequiredString("task"),
            File = Path.GetFullPath(path),
            FileHash = Convert.ToHexStringLower(SHA256.HashData(bytes)),
            DatasetPath = y.RequiredString("dataset_path"),
            DataFiles = dataFiles,
            Format = y.String("format"),
            TestSplit = y.RequiredString("test_split"),
            FewshotSplit = y.String("fewshot_split"),
            FewshotSampler = fewshotConfig?.String("sampler") ?? "default",
            NumFewshot = y.Int("num_fewshot") ?? 0,
            Description = y.String("description") ?? "",
            DocToText = y.RequiredString("doc_to_text"),
            DocToChoice = choices,
            DocToChoiceField = choiceField,
            DocToTarget = y.RequiredString("doc_to_target"),
            TargetDelimiter = y.String("target_delimiter") ?? " ",
            FewshotDelimiter = y.String("fewshot_delimiter") ?? "\n\n",
            OutputType = output,
            Until = gen?.Strings("until", allowScalar: true) ?? [],
            MaxGenToks = gen?.Int("max_gen_toks") ?? 256,
            Filters = y.Sections("filter_list").Select(ReadFilter).ToArray(),
            Metrics = y.Sections("metric_list").Select(ReadMetric).ToArray(),
            Subjects = y.Pairs("subjects").Select(kv => new Subject(kv.Key, kv.Value)).ToArray(),
            WeightBySize = y.Section("aggregate_metric_list")?.Bool("weight_by_size") ?? true,
            ProcessResults = y.String("process_results"),
            Where = y.Pairs("where"),
            Version = y.Section("metadata")?.String("version"),
            UnsafeCode = y.Bool("unsafe_code") ?? false,
            Repeats = y.Int("repeats") ?? 1,
            DoSample = gen?.Bool("do_sample") ?? false,
            Temperature = Number(gen, "temperature") ?? 0,
            TopP = Number(gen, "top_p") ?? 1.0,
            ProcessDocs = y.String("process_docs"),
            FewshotSamples = fewshotConfig?.Sections("samples").Select(s => s.AllStrings()).ToArray() ?? [],
            HeldOutFraction = y.String("held_out_fraction") is { } hf
                ? double.TryParse(hf, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var f) && f is > 0 and <= 1 ? f
                    : throw y.Error("held_out_fraction", $"'{hf}' is not a number in (0, 1]")
                : null,
        };
        y.RejectUnknown();

        if (spec.FewshotSampler is not ("default" or "first_n"))
            throw y.Error("fewshot_config", $"sampler '{spec.FewshotSampler}' is not default or first_n");
        if (!spec.DataFiles.ContainsKey(spec.TestSplit)) throw y.Error("data_files", $"no files for the test split '{spec.TestSplit}'");
        if (spec.Repeats < 1) throw y.Error("repeats", $"{spec.Repeats} must be at least 1");
        if (spec.DoSample && !(spec.Temperature > 0)) throw y.Error("generation_kwargs", "do_sample is true but temperature is not above 0");
        if (spec.ProcessDocs is { } pd && !DocProcessors.Names.Contains(pd))
            throw y.Error("process_docs", $"'{pd}' is not a known document transform (known: {string.Join(", ", DocProcessors.Names)})");
        if (spec.NumFewshot > 0 && spec.FewshotSamples.Count == 0 && (spec.FewshotSplit is null || !spec.DataFiles.ContainsKey(spec.FewshotSplit)))
            throw y.Error("fewshot_split", $"num_fewshot is {spec.NumFewshot} but data_files has no files for the few-shot split '{spec.FewshotSplit}'");
        if (spec.OutputType == OutputType.MultipleChoice && spec.DocToChoice is null && spec.DocToChoiceField is null)
            throw y.Error("doc_to_choice", "a multiple_choice task needs doc_to_choice (a list of templates or a list column's name)");
        if (spec.Metrics.Count == 0) throw y.Error("metric_list", "no metrics: give at least one (acc, acc_norm, exact_match, or a process_results metric)");
        if (spec.OutputType == OutputType.LoglikelihoodRolling && spec.Metrics.FirstOrDefault(m => !Scoring.Perplexity.Metrics.Contains(m.Metric)) is { } bad)
            throw y.Error("metric_list", $"metric '{bad.Metric}' is not one a loglikelihood_rolling task computes ({string.Join(", ", Scoring.Perplexity.Metrics)})");
        if (spec.Format is not (null or "csv" or "jsonl" or "json" or "parquet"))
            throw y.Error("format", $"'{spec.Format}' is not csv, jsonl, json or parquet");
        return spec;
    }

    static double? Number(YamlSection? s, string key) => s?.String(key) is not { } v ? null
        : double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) ? d
        : throw s.Error(key, $"'{v}' is not a number");

    static FilterPipeline ReadFilter(YamlSection s)
    {
        var name = s.RequiredString("name");
        var steps = s.Sections("filter").Select(f =>
        {
            var fn = f.RequiredString("function");
            var step = new FilterStep(fn, f.String("regex_pattern"), f.Int("group_select") ?? 0, f.String("fallback") ?? "[invalid]");
            if (fn is not ("regex" or "take_first" or "lowercase" or "uppercase" or "strip"))
                throw f.Error("function", $"'{fn}' is not regex, take_first, lowercase, uppercase or strip");
            if (fn == "regex" && step.RegexPattern is null) throw f.Error("regex_pattern", "missing (the regex filter needs it)");
            return step;
        }).ToArray();
        return new FilterPipeline(name, steps);
    }

    static MetricSpec ReadMetric(YamlSection s)
    {
        var m = new MetricSpec(s.RequiredString("metric"), s.String("aggregation") ?? "mean", s.Bool("higher_is_better") ?? true)
        {
            IgnoreCase = s.Bool("ignore_case") ?? false,
            IgnorePunctuation = s.Bool("ignore_punctuation") ?? false,
            RegexesToIgnore = s.Strings("regexes_to_ignore") ?? [],
        };
        if (m.Aggregation is not ("mean" or "weighted_perplexity" or "bits_per_byte"))
            throw s.Error("aggregation", $"'{m.Aggregation}' is not supported (mean, weighted_perplexity and bits_per_byte are)");
        return m;
    }
}
