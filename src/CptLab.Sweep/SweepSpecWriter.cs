using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Data.Mixing;

namespace CptLab.Sweep;

/// <summary>
/// A <see cref="SweepSpec"/> as the resolved JSON a sweep stores (sweep.db and spec.json): absolute paths, languages
/// filled in, every default written out. <see cref="SweepSpecReader"/> reads it back to the same spec.
/// </summary>
static class SweepSpecWriter
{
    public static JsonObject Write(SweepSpec s)
    {
        JsonArray Names(SourceGroup g) => new(s.Components.Where(c => c.Group == g).Select(c => (JsonNode)JsonValue.Create($"{c.Source}:{c.Weight.ToString("R", CultureInfo.InvariantCulture)}")).ToArray());
        var o = new JsonObject
        {
            ["base_checkpoint"] = s.BaseCheckpoint,
            ["data"] = new JsonObject
            {
                ["dir"] = s.DataDir, ["seq_len"] = s.SeqLen, ["seed"] = s.DataSeed,
                ["original"] = Names(SourceGroup.Original), ["additional"] = Names(SourceGroup.Additional), ["domain"] = Names(SourceGroup.Domain),
                ["domain_share"] = s.DomainShare,
            },
            ["languages"] = new JsonObject(s.Languages.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonArray(kv.Value.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray())))),
            ["target_language"] = s.TargetLanguage,
            ["original_language"] = s.OriginalLanguage,
            ["grid"] = new JsonObject
            {
                ["almr"] = new JsonArray(s.Almrs.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
                ["lr"] = new JsonArray(s.Lrs.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
                ["seeds"] = new JsonArray(s.Seeds.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()),
            },
            ["tokens_per_run"] = s.TokensPerRun,
            ["train"] = s.Train.DeepClone(),
            ["objective"] = ObjectiveJson.Write(s.Objective),
            ["workers"] = s.Workers,
            ["cores"] = s.Cores,
            ["max_attempts"] = s.MaxAttempts,
            ["keep_models"] = s.KeepModels,
            ["adaptive"] = new JsonObject
            {
                ["enabled"] = s.Adaptive, ["almr_tolerance"] = s.AlmrTolerance, ["log10_lr_tolerance"] = s.Log10LrTolerance,
                ["max_runs"] = s.AdaptiveMaxRuns ?? 0, ["min_residual_dof"] = s.MinResidualDof,
                ["min_runs"] = s.AdaptiveMinRuns, ["stop_probability"] = s.AdaptiveStopProbability, ["law_interval_stop"] = s.LawIntervalStop,
            },
            ["fit"] = new JsonObject
            {
                ["bootstrap"] = s.FitBootstrap, ["seed"] = s.FitSeed, ["starts"] = s.FitStarts, ["extrapolate_to_tokens"] = s.ExtrapolateToTokens ?? 0,
            },
        };
        if (s.MaxForgetting is { } mf) o["fit"]!["max_forgetting"] = mf;
        if (s.FitLaws is { } laws) o["fit"]!["laws"] = new System.Text.Json.Nodes.JsonArray([.. laws.Select(k => (System.Text.Json.Nodes.JsonNode?)Laws.Registry.LawRegistry.SweepFamilyName(k))]);
        if (s.ProxyParameters is { } p) o["proxy_parameters"] = p;
        return o;
    }
}
