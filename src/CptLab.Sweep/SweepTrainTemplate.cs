using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Training;

namespace CptLab.Sweep;

/// <summary>
/// The spec's `train:` section — a `cptlab train` config without the keys the sweep sets itself — and the config of
/// one run made from it: the base checkpoint, the ALMR's blend, the LR, the budget, the seed and the worker's threads
/// filled in, validated by <see cref="TrainConfig"/>.
/// </summary>
static class SweepTrainTemplate
{
    /// <summary>Keys of `train:` that the sweep sets itself, with where to set them instead.</summary>
    static readonly (string Path, string Instead)[] SweepOwned =
    [
        ("model.flavor", "base_checkpoint"), ("model.config", "base_checkpoint"), ("model.init_from", "base_checkpoint"),
        ("data", "the sweep's data section"), ("optimizer.lr", "grid.lr"), ("budget_tokens", "tokens_per_run"),
        ("seed", "grid.seeds"), ("threads", "workers and cores"),
    ];

    /// <summary>Token amounts of the template that may be written with a suffix ("1M"); stored as plain numbers.</summary>
    static readonly string[] TokenKeys = ["schedule.warmup_tokens", "batch.global_batch_tokens"];

    public static JsonObject Read(ConfigReader r)
    {
        var train = r.Raw("train") switch
        {
            null => new JsonObject(),
            JsonObject o => (JsonObject)o.DeepClone(),
            _ => throw r.Error("train", "expected a section: a `cptlab train` config without model, data, lr, budget, seed and threads"),
        };
        foreach (var (path, instead) in SweepOwned)
            if (JsonPath.Find(train, path) is not null) throw r.Error("train." + path, $"set by the sweep; use {instead} instead");
        if (train["model"] is JsonObject m && m.Any(kv => kv.Key != "dtype")) throw r.Error("train.model", "only model.dtype may be set here; the model is base_checkpoint");
        // Stored as numbers: the template is part of the sweep's fingerprint, which must not depend on how a count was written.
        foreach (var path in TokenKeys)
        {
            var parts = path.Split('.');
            if (train[parts[0]] is JsonObject section && section[parts[1]] is JsonValue v && v.TryGetValue<string>(out var s))
                section[parts[1]] = TokenAmount.TryParse(s, out var n, out var problem) ? n : throw r.Error("train." + path, $"'{s}' is not a token count: {problem}");
        }
        return train;
    }

    /// <param name="dtype">The sweep's compute dtype (chosen once for all runs); null: the template's own setting.</param>
    public static TrainConfig RunConfig(SweepSpec spec, double lr, long seed, string blendPath, int threads, string? dtype)
    {
        var node = (JsonObject)spec.Train.DeepClone();
        var model = node["model"] as JsonObject ?? new JsonObject();
        model["init_from"] = spec.BaseCheckpoint;
        if (dtype is not null) model["dtype"] = dtype;
        node["model"] = model;
        node["data"] = new JsonObject { ["mixture"] = blendPath, ["seq_len"] = spec.SeqLen };
        var optimizer = node["optimizer"] as JsonObject ?? new JsonObject();
        optimizer["lr"] = lr;
        node["optimizer"] = optimizer;
        node["budget_tokens"] = spec.TokensPerRun;
        node["seed"] = seed;
        node["threads"] = threads;
        node["measure_peak_flops"] ??= false; // a sweep's runs are too short for the measurement to pay for itself
        try
        {
            return TrainConfig.FromJson(node, spec.Source, Path.GetDirectoryName(blendPath)!);
        }
        catch (ConfigException e)
        {
            throw new ConfigException(spec.Source, "train." + e.Key, e.Message[(e.Message.IndexOf("': ", StringComparison.Ordinal) + 3)..]);
        }
    }
}
