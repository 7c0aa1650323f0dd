using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model.Hardware;
using CptLab.Training.PostTraining;

namespace CptLab.Training;

/// <summary>
/// One key of the train config file: its dotted path, how it is read into a <see cref="TrainConfig"/> (absent: the
/// record's default stays) and how it is written back (null: left out).
/// </summary>
/// <param name="Read">(section reader, key within the section, folder relative paths are taken from, config so far) → config.</param>
internal sealed record TrainConfigKey(string Path, Func<ConfigReader, string, string, TrainConfig, TrainConfig> Read, Func<TrainConfig, JsonNode?> Write);

/// <summary>
/// Every key of the train config, once: <see cref="TrainConfig.FromJson"/> reads through this table and
/// <see cref="TrainConfig.ToJson"/> writes through it, in this order (the order of a run folder's config.json), so an
/// option cannot be readable but not saved (a resumed run would silently lose it) or the reverse. A test round-trips
/// every property of the record through the table.
/// </summary>
internal static class TrainConfigKeys
{
    public static readonly IReadOnlyList<TrainConfigKey> All =
    [
        Text("model.dtype", c => c.ComputeDtype, (c, v) => c with { ComputeDtype = v }),
        Text("model.flavor", c => c.Flavor, (c, v) => c with { Flavor = v }),
        FilePath("model.config", c => c.ModelConfigPath, (c, v) => c with { ModelConfigPath = v }),
        FilePath("model.init_from", c => c.InitFrom, (c, v) => c with { InitFrom = v }),
        // "auto" is left out when written, so a run folder of an earlier version writes back byte for byte.
        Text("model.save_dtype", c => ComputePrecision.IsAuto(c.SaveDtype) ? null : c.SaveDtype, (c, v) => c with { SaveDtype = v }),
        FilePath("model.tokenizer", c => c.Tokenizer, (c, v) => c with { Tokenizer = v }),

        Int("data.seq_len", c => c.SeqLen, (c, v) => c with { SeqLen = v }),
        FilePath("data.mixture", c => c.Data, (c, v) => c with { Data = v }),

        Double("optimizer.lr", c => c.Lr, (c, v) => c with { Lr = v }),
        Double("optimizer.beta1", c => c.Beta1, (c, v) => c with { Beta1 = v }),
        Double("optimizer.beta2", c => c.Beta2, (c, v) => c with { Beta2 = v }),
        Double("optimizer.eps", c => c.Eps, (c, v) => c with { Eps = v }),
        Double("optimizer.weight_decay", c => c.WeightDecay, (c, v) => c with { WeightDecay = v }),
        Bool("optimizer.decay_embeddings", c => c.DecayEmbeddings, (c, v) => c with { DecayEmbeddings = v }),
        Double("optimizer.grad_clip", c => c.GradClip, (c, v) => c with { GradClip = v }),

        Enum<ScheduleKind>("schedule.kind", c => c.Schedule, (c, v) => c with { Schedule = v }),
        Tokens("schedule.warmup_tokens", c => c.WarmupTokens, (c, v) => c with { WarmupTokens = v }),
        Double("schedule.min_lr_ratio", c => c.MinLrRatio, (c, v) => c with { MinLrRatio = v }),
        Double("schedule.decay_fraction", c => c.DecayFraction, (c, v) => c with { DecayFraction = v }),
        Enum<AnnealShape>("schedule.anneal", c => c.Anneal, (c, v) => c with { Anneal = v }),
        Double("schedule.warmup_init_lr", c => c.WarmupInitLr, (c, v) => c with { WarmupInitLr = v }),

        Int("batch.micro_batch_size", c => c.MicroBatchSize, (c, v) => c with { MicroBatchSize = v }),
        Tokens("batch.global_batch_tokens", c => c.GlobalBatchTokens, (c, v) => c with { GlobalBatchTokens = v }),
        Tokens("budget_tokens", c => c.BudgetTokens, (c, v) => c with { BudgetTokens = v }),

        Int("eval.every_steps", c => c.EvalEverySteps, (c, v) => c with { EvalEverySteps = v }),
        Int("eval.max_sequences", c => c.EvalMaxSequences, (c, v) => c with { EvalMaxSequences = v }),

        Int("checkpoint.every_steps", c => c.CheckpointEverySteps, (c, v) => c with { CheckpointEverySteps = v }),
        Int("checkpoint.keep_last", c => c.KeepLast, (c, v) => c with { KeepLast = v }),
        Bool("checkpoint.keep_best", c => c.KeepBest, (c, v) => c with { KeepBest = v }),

        Int("guards.max_consecutive_skips", c => c.MaxConsecutiveSkips, (c, v) => c with { MaxConsecutiveSkips = v }),
        Double("guards.rollback_lr_factor", c => c.RollbackLrFactor, (c, v) => c with { RollbackLrFactor = v }),

        .. PostKeys(PostTrainStage.Sft),
        .. PostKeys(PostTrainStage.Dpo),

        Long("seed", c => c.Seed, (c, v) => c with { Seed = v }),
        Int("threads", c => c.Threads, (c, v) => c with { Threads = v }),
        Bool("measure_peak_flops", c => c.MeasurePeakFlops, (c, v) => c with { MeasurePeakFlops = v }),

        // Written by the trainer when a run starts (the dtype and threads it computes with), all four or none.
        new("resolved", ReadResolved, c => c.Resolved is { } n
            ? new JsonObject { ["dtype"] = n.Dtype, ["threads"] = n.Threads, ["dtype_reason"] = n.DtypeReason, ["threads_reason"] = n.ThreadsReason }
            : null),
    ];

    /// <summary>
    /// The keys of a post-training section (`sft.*` or `dpo.*`): read into <see cref="TrainConfig.Post"/> when the section
    /// is present (one of the two per config), written only for the config's own stage.
    /// </summary>
    static IEnumerable<TrainConfigKey> PostKeys(PostTrainStage stage)
    {
        var section = stage == PostTrainStage.Sft ? "sft" : "dpo";
        TrainConfigKey Key(string key, Func<ConfigReader, string, string, PostTrainOptions, PostTrainOptions> read, Func<PostTrainOptions, JsonNode?> write) =>
            new($"{section}.{key}", (r, k, baseDir, c) =>
            {
                if (!r.Has(k)) return c;
                var o = c.Post ?? new PostTrainOptions { Stage = stage };
                if (o.Stage != stage) throw r.Error(k, "a config has one post-training section, sft or dpo, not both");
                return c with { Post = read(r, k, baseDir, o) };
            }, c => c.Post is { } o && o.Stage == stage ? write(o) : null);
        JsonNode Paths(IReadOnlyList<string> files) => new JsonArray([.. files.Select(f => (JsonNode)JsonValue.Create(f))]);
        IReadOnlyList<string> ReadPaths(ConfigReader r, string k, string baseDir) => [.. r.Strings(k)!.Select(f => System.IO.Path.GetFullPath(f, baseDir))];

        yield return Key("train", (r, k, b, o) => o with { Train = ReadPaths(r, k, b) }, o => Paths(o.Train));
        yield return Key("validation", (r, k, b, o) => o with { Validation = ReadPaths(r, k, b) }, o => Paths(o.Validation));
        yield return Key("format", (r, k, _, o) => o with { Format = r.String(k)! }, o => o.Format);
        yield return Key("validation_fraction", (r, k, _, o) => o with { ValidationFraction = r.Double(k)!.Value }, o => o.ValidationFraction);
        yield return Key("max_validation", (r, k, _, o) => o with { MaxValidation = r.Int(k)!.Value }, o => o.MaxValidation);
        yield return Key("cutoff_len", (r, k, _, o) => o with { CutoffLen = r.Int(k)!.Value }, o => o.CutoffLen);
        yield return Key("truncation", (r, k, _, o) => o with { Truncation = r.Enum<TruncationMode>(k)!.Value }, o => SnakeCase(o.Truncation));
        yield return Key("epochs", (r, k, _, o) => o with { Epochs = r.Double(k)!.Value }, o => o.Epochs);
        if (stage == PostTrainStage.Sft)
        {
            yield return Key("packing", (r, k, _, o) => o with { Packing = r.Bool(k)!.Value }, o => o.Packing);
            yield return Key("train_on_prompt", (r, k, _, o) => o with { TrainOnPrompt = r.Bool(k)!.Value }, o => o.TrainOnPrompt);
            yield return Key("mask_history", (r, k, _, o) => o with { MaskHistory = r.Bool(k)!.Value }, o => o.MaskHistory);
        }
        else
        {
            yield return Key("loss", (r, k, _, o) => o with { Loss = r.Enum<DpoLossType>(k)!.Value }, o => SnakeCase(o.Loss));
            yield return Key("beta", (r, k, _, o) => o with { Beta = r.Double(k)!.Value }, o => o.Beta);
            yield return Key("label_smoothing", (r, k, _, o) => o with { LabelSmoothing = r.Double(k)!.Value }, o => o.LabelSmoothing);
            yield return Key("simpo_gamma", (r, k, _, o) => o with { SimpoGamma = r.Double(k)!.Value }, o => o.SimpoGamma);
            yield return Key("rpo_alpha", (r, k, _, o) => o with { RpoAlpha = r.Double(k)!.Value }, o => o.RpoAlpha);
        }
    }

    static JsonNode SnakeCase<T>(T value) where T : struct, System.Enum => JsonValue.Create(JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString()))!;

    static TrainConfig ReadResolved(ConfigReader r, string key, string baseDir, TrainConfig c)
    {
        if (!r.Has(key)) return c;
        var s = r.Section(key);
        return c with
        {
            Resolved = new RunNumerics(s.RequiredString("dtype"), s.Int("threads") ?? throw s.Error("threads", "missing"),
                s.String("dtype_reason") ?? "", s.String("threads_reason") ?? ""),
        };
    }

    static TrainConfigKey Text(string path, Func<TrainConfig, string?> get, Func<TrainConfig, string, TrainConfig> set) =>
        new(path, (r, k, _, c) => r.String(k) is { } v ? set(c, v) : c, c => get(c) is { } v ? JsonValue.Create(v) : null);

    /// <summary>A file or folder; relative paths are taken from the config file's folder and kept absolute.</summary>
    static TrainConfigKey FilePath(string path, Func<TrainConfig, string?> get, Func<TrainConfig, string, TrainConfig> set) =>
        new(path, (r, k, baseDir, c) => r.String(k) is { } v ? set(c, System.IO.Path.GetFullPath(v, baseDir)) : c, c => get(c) is { } v ? JsonValue.Create(v) : null);

    static TrainConfigKey Int(string path, Func<TrainConfig, int> get, Func<TrainConfig, int, TrainConfig> set) =>
        new(path, (r, k, _, c) => r.Int(k) is { } v ? set(c, v) : c, c => JsonValue.Create(get(c)));

    static TrainConfigKey Long(string path, Func<TrainConfig, long> get, Func<TrainConfig, long, TrainConfig> set) =>
        new(path, (r, k, _, c) => r.Long(k) is { } v ? set(c, v) : c, c => JsonValue.Create(get(c)));

    /// <summary>A token amount: a number, or text with a K/M/B/T suffix ("1M"); written as a number.</summary>
    static TrainConfigKey Tokens(string path, Func<TrainConfig, long> get, Func<TrainConfig, long, TrainConfig> set) =>
        new(path, (r, k, _, c) => r.Tokens(k) is { } v ? set(c, v) : c, c => JsonValue.Create(get(c)));

    static TrainConfigKey Double(string path, Func<TrainConfig, double> get, Func<TrainConfig, double, TrainConfig> set) =>
        new(path, (r, k, _, c) => r.Double(k) is { } v ? set(c, v) : c, c => JsonValue.Create(get(c)));

    static TrainConfigKey Bool(string path, Func<TrainConfig, bool> get, Func<TrainConfig, bool, TrainConfig> set) =>
        new(path, (r, k, _, c) => r.Bool(k) is { } v ? set(c, v) : c, c => JsonValue.Create(get(c)));

    /// <summary>An enum, written in snake_case ("one_minus_sqrt"); read case- and separator-insensitively.</summary>
    static TrainConfigKey Enum<T>(string path, Func<TrainConfig, T> get, Func<TrainConfig, T, TrainConfig> set) where T : struct, System.Enum =>
        new(path, (r, k, _, c) => r.Enum<T>(k) is { } v ? set(c, v) : c, c => JsonValue.Create(JsonNamingPolicy.SnakeCaseLower.ConvertName(get(c).ToString())));
}
