using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Laws;

namespace CptLab.Sweep;

/// <summary>
/// The spec's `objective`: a name (target_loss, forgetting) or a section with `kind` and the kind's parameters.
/// <see cref="Write"/> writes exactly what <see cref="Read"/> reads, so a stored spec always reads back.
/// </summary>
static class ObjectiveJson
{
    public static Objective Read(ConfigReader r, string key)
    {
        var node = r.Raw(key);
        if (node is null) return Objective.TargetLoss();
        if (node is JsonValue v && v.TryGetValue<string>(out var name))
            return name switch
            {
                "target_loss" => Objective.TargetLoss(),
                "forgetting" => Objective.Forgetting(),
                _ => throw r.Error(key, $"'{name}' is not target_loss or forgetting; weighted and constrained take parameters: {{kind: weighted, target_weight: 1, forgetting_weight: 2}} or {{kind: constrained, max_forgetting: 0.05}}"),
            };
        var o = r.Section(key);
        var kind = o.RequiredString("kind");
        Objective result = kind switch
        {
            "target_loss" => Objective.TargetLoss(),
            "forgetting" => Objective.Forgetting(),
            "weighted" => Objective.Weighted(o.Double("target_weight") ?? throw o.Error("target_weight", "missing"), o.Double("forgetting_weight") ?? throw o.Error("forgetting_weight", "missing")),
            "constrained" => Objective.Constrained(o.Double("max_forgetting") ?? throw o.Error("max_forgetting", "missing: the largest acceptable increase of the original language's loss")),
            _ => throw o.Error("kind", $"'{kind}' is not one of target_loss, forgetting, weighted, constrained"),
        };
        // Sweeps stored before this writer existed serialised the objective record, with the derived flag
        // "needs_base" (false for target_loss). Accept it where it agrees with the kind, so they still read.
        if (o.Bool("needs_base") is { } needsBase && needsBase != result.NeedsBase)
            throw o.Error("needs_base", $"is {(needsBase ? "true" : "false")}, but a {kind} objective {(result.NeedsBase ? "reads" : "does not read")} the base model's loss; remove the key (it follows from kind)");
        return result;
    }

    public static JsonNode Write(Objective objective) => objective switch
    {
        TargetLossObjective => new JsonObject { ["kind"] = "target_loss" },
        ForgettingObjective => new JsonObject { ["kind"] = "forgetting" },
        WeightedObjective w => new JsonObject { ["kind"] = "weighted", ["target_weight"] = w.TargetWeight, ["forgetting_weight"] = w.ForgettingWeight },
        ConstrainedObjective c => new JsonObject { ["kind"] = "constrained", ["max_forgetting"] = c.MaxForgetting },
        _ => throw new ArgumentException($"objective {objective.GetType().Name} has no spec form; add it to {nameof(ObjectiveJson)}", nameof(objective)),
    };
}
