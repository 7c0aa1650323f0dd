using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Laws;
using CptLab.Training;

namespace CptLab.Sweep;

/// <summary>
/// What a proxy sweep is: the base checkpoint every run continues from, the data and how each ALMR's blend is
/// made, which validation sources make up each language, the (ALMR × LR × seed) grid, the token budget of one
/// run, the rest of each run's `cptlab train` config, the objective, and how the runner and the fit behave.
/// Read from YAML or JSON (<see cref="Load"/>); every relative path is taken relative to the spec file. The
/// resolved spec (absolute paths, languages filled in) is kept in the sweep's database as <see cref="ToJson"/>.
/// <code>
/// base_checkpoint: models/base          # HF folder of the proxy model; every run starts from it
/// data:
///   dir: data/prepared                  # written by `cptlab data prepare`
///   seq_len: 256
///   seed: 1234                          # blend (document order) seed; run seed s uses seed + s
///   original: [en-web]                  # NAME or NAME:WEIGHT within the group
///   additional: [zh-web]                # the added language; its share of tokens is the ALMR
///   domain: []                          # optional, with domain_share
///   domain_share: 0
/// languages:                            # optional: language → validation sources (default: the sources' tags)
///   zh: [zh-web]
///   en: [en-web]
/// target_language: zh                   # default: the additional sources' tag
/// original_language: en                 # default: the original sources' tag
/// grid:
///   almr: [0.1, 0.3, 0.5]               # or {min: 0.1, max: 0.5, count: 3}
///   lr: {min: 1e-4, max: 1e-3, count: 4} # log grid (4 significant digits), or a list
///   seeds: [0]
/// tokens_per_run: 20M
/// train:                                # a `cptlab train` config without model, data, lr, budget, seed, threads
///   batch: {micro_batch_size: 8, global_batch_tokens: 65536}
///   schedule: {kind: cosine, warmup_tokens: 1M, min_lr_ratio: 0.1}
///   eval: {every_steps: 50, max_sequences: 64}
///   checkpoint: {every_steps: 50, keep_last: 2}
/// objective: {kind: weighted, target_weight: 1, forgetting_weight: 2}  # or target_loss, forgetting, {kind: constrained, max_forgetting: 0.05}
/// workers: 2                            # runs at a time; the cores are split between them
/// cores: 0                              # 0: the cores free when the sweep starts (never more workers than cores)
/// max_attempts: 3                       # a run killed by a signal is resumed this many times in all
/// keep_models: false                    # keep each run's checkpoints and final model once recorded
/// adaptive: {enabled: false, almr_tolerance: 0.05, log10_lr_tolerance: 0.1, max_runs: 0, min_residual_dof: 5}
/// fit: {bootstrap: 200, seed: 0, starts: 12, max_forgetting: 0.05, extrapolate_to_tokens: 0}
/// </code>
/// </summary>
public sealed record SweepSpec
{
    public required string Source { get; init; }
    public required string BaseCheckpoint { get; init; }
    /// <summary>Parameter count of the proxy, for the LR transfer rule (default: counted from the base checkpoint's config).</summary>
    public double? ProxyParameters { get; init; }

    public required string DataDir { get; init; }
    public required int SeqLen { get; init; }
    public ulong DataSeed { get; init; } = 1234;
    public required IReadOnlyList<MixComponent> Components { get; init; }
    public double DomainShare { get; init; }

    /// <summary>Language name → the validation sources whose token-weighted mean loss is that language's loss.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Languages { get; init; }
    public required string TargetLanguage { get; init; }
    public required string OriginalLanguage { get; init; }

    public required IReadOnlyList<double> Almrs { get; init; }
    public required IReadOnlyList<double> Lrs { get; init; }
    public required IReadOnlyList<long> Seeds { get; init; }
    public required long TokensPerRun { get; init; }
    /// <summary>The `train:` section: each run's config before the sweep fills in model, data, lr, budget, seed and threads.</summary>
    public required JsonObject Train { get; init; }

    public Objective Objective { get; init; } = Objective.TargetLoss();
    public int Workers { get; init; } = 1;
    /// <summary>Cores the runner splits between its workers; 0 = all.</summary>
    public int Cores { get; init; }
    public int MaxAttempts { get; init; } = 3;
    /// <summary>Keep each run's checkpoints and final model after its result is recorded (default: delete them).</summary>
    public bool KeepModels { get; init; }

    public bool Adaptive { get; init; }
    public double AlmrTolerance { get; init; } = 0.05;
    public double Log10LrTolerance { get; init; } = 0.1;
    public int? AdaptiveMaxRuns { get; init; }
    public int MinResidualDof { get; init; } = 5;

    public int FitBootstrap { get; init; } = 200;
    public int FitSeed { get; init; }
    public int FitStarts { get; init; } = 12;
    public double? MaxForgetting { get; init; }
    public long? ExtrapolateToTokens { get; init; }

    /// <summary>Keys of `train:` that the sweep sets itself, with where to set them instead.</summary>
    static readonly (string Path, string Instead)[] SweepOwned =
    [
        ("model.flavor", "base_checkpoint"), ("model.config", "base_checkpoint"), ("model.init_from", "base_checkpoint"),
        ("data", "the sweep's data section"), ("optimizer.lr", "grid.lr"), ("budget_tokens", "tokens_per_run"),
        ("seed", "grid.seeds"), ("threads", "workers and cores"),
    ];

    public int GridSize => Almrs.Count * Lrs.Count * Seeds.Count;

    public static SweepSpec Load(string path)
    {
        if (!File.Exists(path)) throw new CptLabException($"{path}: sweep spec not found");
        var full = Path.GetFullPath(path);
        return FromJson(ConfigFile.Read(full), full, Path.GetDirectoryName(full)!);
    }

    /// <param name="checkFiles">Check the base checkpoint, the prepared data and each run's config (off when a
    /// stored spec is read back for fitting or reporting, possibly where the data is not).</param>
    public static SweepSpec FromJson(JsonObject root, string source, string baseDir, bool checkFiles = true)
    {
        var r = new ConfigReader(root, source);
        string PathOf(string p) => Path.GetFullPath(p, baseDir);

        var baseCheckpoint = PathOf(r.RequiredString("base_checkpoint"));
        if (checkFiles && !File.Exists(Path.Combine(baseCheckpoint, "config.json")))
            throw r.Error("base_checkpoint", $"{baseCheckpoint} is not a model folder (no config.json); give the Hugging Face checkpoint every run continues from");
        var proxyParameters = r.Double("proxy_parameters");

        var data = r.Section("data");
        var dataDir = PathOf(data.RequiredString("dir"));
        var manifest = checkFiles ? PrepareManifest.Load(dataDir) : null;
        var seqLen = data.Int("seq_len") ?? throw data.Error("seq_len", "missing: the training sequence length");
        if (seqLen < 2) throw data.Error("seq_len", $"{seqLen} must be > 1");
        var dataSeed = data.Long("seed") ?? 1234;
        if (dataSeed < 0) throw data.Error("seed", "must be ≥ 0");
        var components = new List<MixComponent>();
        foreach (var (key, group) in new[] { ("original", SourceGroup.Original), ("additional", SourceGroup.Additional), ("domain", SourceGroup.Domain) })
            foreach (var s in data.Strings(key) ?? [])
            {
                MixComponent c;
                try { c = MixComponent.Parse(s, group); }
                catch (CptLabException e) { throw data.Error(key, e.Message); }
                if (manifest is not null && !manifest.Sources.Any(m => m.Name == c.Source))
                    throw data.Error(key, $"source '{c.Source}' is not in {dataDir} (it has: {string.Join(", ", manifest.Sources.Select(m => m.Name))})");
                components.Add(c);
            }
        if (!components.Any(c => c.Group == SourceGroup.Original)) throw data.Error("original", "missing: name the original-language (replay) sources");
        if (!components.Any(c => c.Group == SourceGroup.Additional)) throw data.Error("additional", "missing: name the additional-language sources");
        var dupe = components.GroupBy(c => c.Source).FirstOrDefault(g => g.Count() > 1);
        if (dupe is not null) throw data.Error("original", $"source '{dupe.Key}' is listed twice");
        var domainShare = data.Double("domain_share") ?? 0;
        if (!(domainShare >= 0 && domainShare < 1)) throw data.Error("domain_share", $"{domainShare} must be in [0, 1)");
        if (domainShare > 0 && !components.Any(c => c.Group == SourceGroup.Domain)) throw data.Error("domain", $"domain_share is {domainShare} but no domain source is named");

        // Languages: explicit, or each source's tag from the prepared data.
        var languages = new Dictionary<string, IReadOnlyList<string>>();
        var langSection = r.Section("languages");
        foreach (var lang in langSection.Keys.ToList())
        {
            var sources = langSection.Strings(lang) ?? [];
            if (sources.Count == 0) throw langSection.Error(lang, "no validation source named");
            foreach (var s in sources)
                if (!components.Any(c => c.Source == s))
                    throw langSection.Error(lang, $"source '{s}' is not in the mixture; a language's validation sources must be among data.original/additional/domain (their held-out splits are what each run validates on)");
            languages[lang] = sources;
        }
        if (languages.Count == 0 && manifest is not null)
            foreach (var g in components.GroupBy(c => manifest.Source(c.Source).Tag))
                languages[g.Key] = g.Select(c => c.Source).ToArray();
        string TagOf(SourceGroup group, string key)
        {
            var tags = manifest is null ? [] : components.Where(c => c.Group == group).Select(c => manifest.Source(c.Source).Tag).Distinct().ToList();
            if (tags.Count != 1) throw r.Error(key, $"missing, and the {group.ToString().ToLowerInvariant()} sources have {tags.Count} tags ({string.Join(", ", tags)}); name the language");
            return tags[0];
        }
        var target = r.String("target_language") ?? TagOf(SourceGroup.Additional, "target_language");
        var original = r.String("original_language") ?? TagOf(SourceGroup.Original, "original_language");
        foreach (var (key, lang) in new[] { ("target_language", target), ("original_language", original) })
            if (!languages.ContainsKey(lang)) throw r.Error(key, $"'{lang}' is not a language of the sweep (languages: {string.Join(", ", languages.Keys)})");
        if (target == original) throw r.Error("original_language", $"'{original}' is also the target language");

        var grid = r.Section("grid");
        var almrs = Grid(grid, "almr", log: false, digits: 6);
        foreach (var a in almrs)
            if (!(a >= 0 && a <= 1 - domainShare + 1e-12)) throw grid.Error("almr", $"{Fmt(a)} is not in [0, {Fmt(1 - domainShare)}]: the ALMR is the additional language's share of tokens");
        var lrs = Grid(grid, "lr", log: true, digits: 4);
        foreach (var lr in lrs)
            if (!(lr > 0) || !double.IsFinite(lr)) throw grid.Error("lr", $"{Fmt(lr)} must be a positive learning rate");
        var seeds = grid.Longs("seeds") ?? [0];
        if (seeds.Count == 0 || seeds.Distinct().Count() != seeds.Count || seeds.Any(s => s < 0)) throw grid.Error("seeds", "give distinct seeds ≥ 0");

        var tokens = Tokens(r, "tokens_per_run") ?? throw r.Error("tokens_per_run", "missing: the token budget of each proxy run (e.g. 20M)");
        var train = r.Raw("train") switch
        {
            null => new JsonObject(),
            JsonObject o => (JsonObject)o.DeepClone(),
            _ => throw r.Error("train", "expected a section: a `cptlab train` config without model, data, lr, budget, seed and threads"),
        };
        foreach (var (path, instead) in SweepOwned)
            if (Find(train, path) is not null) throw r.Error("train." + path, $"set by the sweep; use {instead} instead");
        if (train["model"] is JsonObject m && m.Any(kv => kv.Key != "dtype")) throw r.Error("train.model", "only model.dtype may be set here; the model is base_checkpoint");
        NormaliseTokens(train, source);

        var objective = ReadObjective(r);
        var workers = r.Int("workers") ?? 1;
        if (workers < 1) throw r.Error("workers", $"{workers} must be at least 1");
        var cores = r.Int("cores") ?? 0;
        if (cores < 0) throw r.Error("cores", $"{cores} must be ≥ 0 (0: the free cores)");
        var attempts = r.Int("max_attempts") ?? 3;
        if (attempts < 1) throw r.Error("max_attempts", $"{attempts} must be at least 1");

        var ad = r.Section("adaptive");
        var d = new AdaptiveOptions();
        var fit = r.Section("fit");
        var spec = new SweepSpec
        {
            Source = source, BaseCheckpoint = baseCheckpoint, ProxyParameters = proxyParameters,
            DataDir = dataDir, SeqLen = seqLen, DataSeed = (ulong)dataSeed, Components = components, DomainShare = domainShare,
            Languages = languages, TargetLanguage = target, OriginalLanguage = original,
            Almrs = almrs, Lrs = lrs, Seeds = seeds, TokensPerRun = tokens, Train = train,
            Objective = objective, Workers = workers, Cores = cores, MaxAttempts = attempts, KeepModels = r.Bool("keep_models") ?? false,
            Adaptive = ad.Bool("enabled") ?? false,
            AlmrTolerance = ad.Double("almr_tolerance") ?? d.AlmrTolerance,
            Log10LrTolerance = ad.Double("log10_lr_tolerance") ?? d.Log10LrTolerance,
            AdaptiveMaxRuns = ad.Int("max_runs") is { } mr && mr > 0 ? mr : null,
            MinResidualDof = ad.Int("min_residual_dof") ?? d.MinResidualDof,
            FitBootstrap = fit.Int("bootstrap") ?? 200,
            FitSeed = fit.Int("seed") ?? 0,
            FitStarts = fit.Int("starts") ?? 12,
            MaxForgetting = fit.Double("max_forgetting"),
            ExtrapolateToTokens = Tokens(fit, "extrapolate_to_tokens") is { } x && x > 0 ? x : null,
        };
        r.RejectUnknown();
        if (spec.Adaptive && (almrs.Count < 3 || lrs.Count < 3))
            throw ad.Error("enabled", $"adaptive design needs a grid of at least 3 ALMR values × 3 LRs, the grid has {almrs.Count} × {lrs.Count}");
        if (spec.FitBootstrap < 0) throw fit.Error("bootstrap", "must be ≥ 0");
        if (spec.FitStarts < 1) throw fit.Error("starts", "must be at least 1");
        if (!(spec.AlmrTolerance > 0) || !(spec.Log10LrTolerance > 0)) throw ad.Error("almr_tolerance", "tolerances must be positive");

        // Check the per-run config once now, so a typo in train: fails before any run starts.
        if (checkFiles) spec.RunConfig(almr: almrs[0], lr: lrs[0], seed: seeds[0], blendPath: Path.Combine(dataDir, "blend.json"), threads: 1);
        return spec;
    }

    /// <summary>
    /// The `cptlab train` config of one run: the train template with the base checkpoint, the ALMR's blend, the
    /// LR, the budget, the seed and the worker's threads filled in, validated by <see cref="TrainConfig"/>.
    /// </summary>
    /// <param name="dtype">The sweep's compute dtype (chosen once for all runs); null: the spec's own setting.</param>
    public TrainConfig RunConfig(double almr, double lr, long seed, string blendPath, int threads, string? dtype = null)
    {
        var node = (JsonObject)Train.DeepClone();
        var model = node["model"] as JsonObject ?? new JsonObject();
        model["init_from"] = BaseCheckpoint;
        if (dtype is not null) model["dtype"] = dtype;
        node["model"] = model;
        node["data"] = new JsonObject { ["mixture"] = blendPath, ["seq_len"] = SeqLen };
        var optimizer = node["optimizer"] as JsonObject ?? new JsonObject();
        optimizer["lr"] = lr;
        node["optimizer"] = optimizer;
        node["budget_tokens"] = TokensPerRun;
        node["seed"] = seed;
        node["threads"] = threads;
        node["measure_peak_flops"] ??= false; // a sweep's runs are too short for the measurement to pay for itself
        try
        {
            return TrainConfig.FromJson(node, Source, Path.GetDirectoryName(blendPath)!);
        }
        catch (ConfigException e)
        {
            throw new ConfigException(Source, "train." + e.Key, e.Message[(e.Message.IndexOf("': ", StringComparison.Ordinal) + 3)..]);
        }
    }

    /// <summary>Blend seed of a run seed: replicate seeds see the data in different orders.</summary>
    public ulong BlendSeed(long runSeed) => DataSeed + (ulong)runSeed;

    public MixSpec Mix(double almr, long runSeed) => new()
    {
        DataDir = DataDir, Components = Components, Almr = almr, DomainShare = DomainShare,
        TokenBudget = TokensPerRun, SeqLen = SeqLen, Seed = BlendSeed(runSeed),
    };

    public FitOptions FitOptions(int? bootstrap = null) => new()
    {
        Objective = Objective, Bootstrap = bootstrap ?? FitBootstrap, Seed = FitSeed, Starts = FitStarts,
        MaxForgetting = MaxForgetting, ExtrapolateToTokens = ExtrapolateToTokens,
    };

    public AdaptiveOptions AdaptiveOptions() => new()
    {
        Fit = FitOptions(bootstrap: Math.Min(FitBootstrap, 60)), AlmrTolerance = AlmrTolerance, Log10LrTolerance = Log10LrTolerance,
        MaxRuns = AdaptiveMaxRuns, MinResidualDof = MinResidualDof,
    };

    /// <summary>The resolved spec, absolute paths and languages filled in; <see cref="FromJson"/> reads it back.</summary>
    public JsonObject ToJson()
    {
        JsonArray Names(SourceGroup g) => new(Components.Where(c => c.Group == g).Select(c => (JsonNode)JsonValue.Create($"{c.Source}:{c.Weight.ToString("R", CultureInfo.InvariantCulture)}")).ToArray());
        var o = new JsonObject
        {
            ["base_checkpoint"] = BaseCheckpoint,
            ["data"] = new JsonObject
            {
                ["dir"] = DataDir, ["seq_len"] = SeqLen, ["seed"] = DataSeed,
                ["original"] = Names(SourceGroup.Original), ["additional"] = Names(SourceGroup.Additional), ["domain"] = Names(SourceGroup.Domain),
                ["domain_share"] = DomainShare,
            },
            ["languages"] = new JsonObject(Languages.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonArray(kv.Value.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray())))),
            ["target_language"] = TargetLanguage,
            ["original_language"] = OriginalLanguage,
            ["grid"] = new JsonObject
            {
                ["almr"] = new JsonArray(Almrs.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
                ["lr"] = new JsonArray(Lrs.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
                ["seeds"] = new JsonArray(Seeds.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
            },
            ["tokens_per_run"] = TokensPerRun,
            ["train"] = Train.DeepClone(),
            ["objective"] = System.Text.Json.JsonSerializer.SerializeToNode(Objective, Json.SnakeCase),
            ["workers"] = Workers,
            ["cores"] = Cores,
            ["max_attempts"] = MaxAttempts,
            ["keep_models"] = KeepModels,
            ["adaptive"] = new JsonObject
            {
                ["enabled"] = Adaptive, ["almr_tolerance"] = AlmrTolerance, ["log10_lr_tolerance"] = Log10LrTolerance,
                ["max_runs"] = AdaptiveMaxRuns ?? 0, ["min_residual_dof"] = MinResidualDof,
            },
            ["fit"] = new JsonObject
            {
                ["bootstrap"] = FitBootstrap, ["seed"] = FitSeed, ["starts"] = FitStarts, ["extrapolate_to_tokens"] = ExtrapolateToTokens ?? 0,
            },
        };
        if (MaxForgetting is { } mf) o["fit"]!["max_forgetting"] = mf;
        if (ProxyParameters is { } p) o["proxy_parameters"] = p;
        return o;
    }

    /// <summary>
    /// A hash of everything that decides a run's result (base model, data and blends, budget, train template,
    /// languages). Resuming a sweep whose fingerprint changed would mix runs of two different experiments.
    /// The grid, objective, workers and fit settings are not in it: a sweep may be extended or refitted.
    /// </summary>
    public string Fingerprint()
    {
        var j = ToJson();
        var identity = new JsonObject
        {
            ["base_checkpoint"] = j["base_checkpoint"]!.DeepClone(), ["data"] = j["data"]!.DeepClone(),
            ["languages"] = j["languages"]!.DeepClone(), ["tokens_per_run"] = TokensPerRun, ["train"] = Train.DeepClone(),
        };
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity.ToJsonString())))[..16];
    }

    static IReadOnlyList<double> Grid(ConfigReader grid, string key, bool log, int digits)
    {
        var node = grid.Raw(key);
        IReadOnlyList<double> values;
        if (node is JsonObject)
        {
            var s = grid.Section(key);
            var lo = s.Double("min") ?? throw s.Error("min", "missing");
            var hi = s.Double("max") ?? throw s.Error("max", "missing");
            var n = s.Int("count") ?? throw s.Error("count", "missing");
            s.RejectUnknown();
            if (n < 1) throw s.Error("count", $"{n} must be at least 1");
            if (!(hi >= lo)) throw s.Error("max", $"{Fmt(hi)} is below min {Fmt(lo)}");
            if (log && !(lo > 0)) throw s.Error("min", "a log grid needs min > 0");
            values = Enumerable.Range(0, n).Select(i =>
            {
                var f = n == 1 ? 0 : (double)i / (n - 1);
                var v = log ? Math.Exp(Math.Log(lo) + (Math.Log(hi) - Math.Log(lo)) * f) : lo + (hi - lo) * f;
                return log ? RoundSignificant(v, digits) : Math.Round(v, digits);
            }).ToArray();
        }
        else values = grid.Doubles(key) ?? throw grid.Error(key, "missing: a list of values or {min, max, count}");
        values = values.Distinct().Order().ToArray();
        if (values.Count == 0) throw grid.Error(key, "empty");
        return values;
    }

    static double RoundSignificant(double v, int digits)
    {
        var scale = Math.Pow(10, Math.Floor(Math.Log10(v)) - digits + 1);
        return double.Parse((Math.Round(v / scale) * scale).ToString("G" + digits, CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    static Objective ReadObjective(ConfigReader r)
    {
        var node = r.Raw("objective");
        if (node is null) return Objective.TargetLoss();
        if (node is JsonValue v && v.TryGetValue<string>(out var name))
            return name switch
            {
                "target_loss" => Objective.TargetLoss(),
                "forgetting" => Objective.Forgetting(),
                _ => throw r.Error("objective", $"'{name}' is not target_loss or forgetting; weighted and constrained take parameters: {{kind: weighted, target_weight: 1, forgetting_weight: 2}} or {{kind: constrained, max_forgetting: 0.05}}"),
            };
        var o = r.Section("objective");
        var kind = o.RequiredString("kind");
        Objective result = kind switch
        {
            "target_loss" => Objective.TargetLoss(),
            "forgetting" => Objective.Forgetting(),
            "weighted" => Objective.Weighted(o.Double("target_weight") ?? throw o.Error("target_weight", "missing"), o.Double("forgetting_weight") ?? throw o.Error("forgetting_weight", "missing")),
            "constrained" => Objective.Constrained(o.Double("max_forgetting") ?? throw o.Error("max_forgetting", "missing: the largest acceptable increase of the original language's loss")),
            _ => throw o.Error("kind", $"'{kind}' is not one of target_loss, forgetting, weighted, constrained"),
        };
        return result;
    }

    /// <summary>A token count as a number or with a K/M/B/T suffix ("20M").</summary>
    static long? Tokens(ConfigReader r, string key) => r.Raw(key) switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => ParseTokens(s) ?? throw r.Error(key, $"'{s}' is not a token count (e.g. 250000, 250K, 20M, 1.5B)"),
        _ => r.Long(key),
    };

    public static long? ParseTokens(string text)
    {
        var t = text.Trim().Replace("_", "");
        var scale = 1.0;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            scale = char.ToUpperInvariant(t[^1]) switch { 'K' => 1e3, 'M' => 1e6, 'B' or 'G' => 1e9, 'T' => 1e12, _ => double.NaN };
            t = t[..^1];
        }
        if (double.IsNaN(scale) || !double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v >= 0)) return null;
        var n = v * scale;
        return n == Math.Floor(n) && n < 9e18 ? (long)n : null;
    }

    /// <summary>Token amounts in the train template may use suffixes too; the trainer wants plain numbers.</summary>
    static void NormaliseTokens(JsonObject train, string source)
    {
        foreach (var path in new[] { "schedule.warmup_tokens", "batch.global_batch_tokens" })
        {
            var parts = path.Split('.');
            if (train[parts[0]] is JsonObject section && section[parts[1]] is JsonValue v && v.TryGetValue<string>(out var s))
                section[parts[1]] = ParseTokens(s) ?? throw new ConfigException(source, "train." + path, $"'{s}' is not a token count");
        }
    }

    static JsonNode? Find(JsonObject root, string path)
    {
        JsonNode? node = root;
        foreach (var part in path.Split('.')) node = (node as JsonObject)?[part];
        return node;
    }

    static string Fmt(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
