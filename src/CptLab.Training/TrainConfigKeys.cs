using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model.Hardware;

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

        Long("seed", c => c.Seed, (c, v) => c with { Seed = v }),
        Int("threads", c => c.Threads, (c, v) => c with { Threads = v }),
        Bool("measure_peak_flops", c => c.MeasurePeakFlops, (c, v) => c with { MeasurePeakFlops = v }),

        // Written by the trainer when a run starts (the dtype and threads it computes with), all four or none.
        new("resolved", ReadResolved, c => c.Resolved is { } n
            ? new JsonObject { ["dtype"] = n.Dtype, ["threads"] = n.Threads, ["dtype_reason"] = n.DtypeReason, ["threads_reason"] = n.ThreadsReason }
            : null),
    ];

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
