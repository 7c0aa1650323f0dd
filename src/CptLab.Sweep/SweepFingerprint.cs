using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace CptLab.Sweep;

/// <summary>
/// A hash of everything that decides a run's result (base model, data and blends, budget, train template,
/// languages). Resuming a sweep whose fingerprint changed would mix runs of two different experiments.
/// The grid, objective, workers and fit settings are not in it: a sweep may be extended or refitted.
/// Stored sweeps are matched against it, so for a given spec it must stay the same across versions (a test pins one).
/// </summary>
static class SweepFingerprint
{
    /// <param name="withTrain">Leave the train template out: what must match even where the runner accepts a changed
    /// template (one that still makes the earlier runs' config, see <see cref="RunConfigCheck"/>).</param>
    public static string Of(SweepSpec spec, bool withTrain = true)
    {
        var j = spec.ToJson();
        var identity = new JsonObject
        {
            ["base_checkpoint"] = j["base_checkpoint"]!.DeepClone(), ["data"] = j["data"]!.DeepClone(),
            ["languages"] = j["languages"]!.DeepClone(), ["tokens_per_run"] = spec.TokensPerRun,
        };
        if (withTrain) identity["train"] = spec.Train.DeepClone();
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity.ToJsonString())))[..16];
    }
}
