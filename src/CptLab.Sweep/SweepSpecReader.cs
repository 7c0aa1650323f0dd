using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Laws;

namespace CptLab.Sweep;

/// <summary>
/// Reads and validates a sweep spec (the YAML or JSON a user writes, or the resolved spec a sweep stored) into a
/// <see cref="SweepSpec"/>. Every error names the file and the dotted key; unknown keys are errors.
/// </summary>
static class SweepSpecReader
{
    public static SweepSpec Read(JsonObject root, string source, string baseDir, bool checkFiles)
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
        var components = Components(data, manifest, dataDir);
        var domainShare = data.Double("domain_share") ?? 0;
        if (!(domainShare >= 0 && domainShare < 1)) throw data.Error("domain_share", $"{domainShare} must be in [0, 1)");
        if (domainShare > 0 && !components.Any(c => c.Group == SourceGroup.Domain)) throw data.Error("domain", $"domain_share is {domainShare} but no domain source is named");

        var (languages, target, original) = Languages(r, components, manifest);

        var grid = r.Section("grid");
        var almrs = SweepGrid.Values(grid, "almr", log: false, digits: 6);
        foreach (var a in almrs)
            if (!(a >= 0 && a <= 1 - domainShare + 1e-12)) throw grid.Error("almr", $"{Fmt(a)} is not in [0, {Fmt(1 - domainShare)}]: the ALMR is the additional language's share of tokens");
        var lrs = SweepGrid.Values(grid, "lr", log: true, digits: 4);
        foreach (var lr in lrs)
            if (!(lr > 0) || !double.IsFinite(lr)) throw grid.Error("lr", $"{Fmt(lr)} must be a positive learning rate");
        var seeds = grid.Longs("seeds") ?? [0];
        if (seeds.Count == 0 || seeds.Distinct().Count() != seeds.Count || seeds.Any(s => s < 0)) throw grid.Error("seeds", "give distinct seeds ≥ 0");

        var tokens = r.Tokens("tokens_per_run") ?? throw r.Error("tokens_per_run", $"missing: the token budget of each proxy run ({TokenAmount.Examples})");
        if (tokens == 0) throw r.Error("tokens_per_run", "must be more than 0");
        var train = SweepTrainTemplate.Read(r);

        var objective = ObjectiveJson.Read(r, "objective");
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
            AdaptiveMinRuns = ad.Int("min_runs") ?? d.MinRuns,
            AdaptiveStopProbability = ad.Double("stop_probability") ?? d.StopProbability,
            LawIntervalStop = ad.Bool("law_interval_stop") ?? d.StopOnLawInterval,
            SurrogateKernel = ad.String("gp_kernel") is { } surrogate
                ? Laws.GpKernels.Parse(surrogate) ?? throw ad.Error("gp_kernel", $"'{surrogate}' is not a kernel: squared_exponential (the default), matern52 or matern32")
                : d.SurrogateKernel,
            FitBootstrap = fit.Int("bootstrap") ?? 200,
            FitSeed = fit.Int("seed") ?? 0,
            FitStarts = fit.Int("starts") ?? 12,
            GaussianProcessKernel = fit.String("gp_kernel") is { } kernel
                ? Laws.GpKernels.Parse(kernel) ?? throw fit.Error("gp_kernel", $"'{kernel}' is not a kernel: matern52 (the default), matern32 or squared_exponential")
                : Laws.GpKernel.Matern52,
            MaxForgetting = fit.Double("max_forgetting"),
            ExtrapolateToTokens = fit.Tokens("extrapolate_to_tokens") is { } x && x > 0 ? x : null,
            FitLaws = fit.Strings("laws") is { Count: > 0 } names
                ? names.Select(n => Laws.Registry.LawRegistry.SweepKind(n) ?? throw fit.Error("laws",
                    $"'{n}' is not a sweep law family; the registry's sweep families are {string.Join(", ", Laws.Registry.LawRegistry.SweepFamilyNames)} (`cptlab laws list` shows each)")).Distinct().ToArray()
                : null,
        };
        r.RejectUnknown();
        if (spec.Adaptive && AdaptiveDesign.GridProblem(almrs.Distinct().Count(), lrs.Distinct().Count()) is { } problem)
            throw ad.Error("enabled", problem);
        if (spec.FitBootstrap < 0) throw fit.Error("bootstrap", "must be ≥ 0");
        if (spec.FitStarts < 1) throw fit.Error("starts", "must be at least 1");
        if (!(spec.AlmrTolerance > 0) || !(spec.Log10LrTolerance > 0)) throw ad.Error("almr_tolerance", "tolerances must be positive");
        if (!(spec.AdaptiveStopProbability >= 0 && spec.AdaptiveStopProbability < 1)) throw ad.Error("stop_probability", $"{spec.AdaptiveStopProbability} must be in [0, 1) (0.05: stop when an unrun cell is better with probability under 5%)");

        // Check the per-run config once now, so a typo in train: fails before any run starts.
        if (checkFiles) spec.RunConfig(almr: almrs[0], lr: lrs[0], seed: seeds[0], blendPath: Path.Combine(dataDir, "blend.json"), threads: 1);
        return spec;
    }

    /// <summary>data.original, data.additional and data.domain: NAME or NAME:WEIGHT, each a source of the prepared data.</summary>
    static List<MixComponent> Components(ConfigReader data, PrepareManifest? manifest, string dataDir)
    {
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
        return components;
    }

    /// <summary>Languages: explicit, or each source's tag from the prepared data; and the target and original language.</summary>
    static (Dictionary<string, IReadOnlyList<string>> Languages, string Target, string Original) Languages(
        ConfigReader r, IReadOnlyList<MixComponent> components, PrepareManifest? manifest)
    {
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
        return (languages, target, original);
    }

    internal static string Fmt(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
