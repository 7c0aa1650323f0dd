using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Eval.Results;

namespace CptLab.Eval.Tests;

/// <summary>`eval compare` on hand-made results.json and samples.jsonl whose p-values are worked out by hand.</summary>
public class CompareTests
{
    static readonly int[] AccA = [1, 0, 0, 0, 0, 0, 0, 1, 1, 1], AccB = [0, 1, 1, 1, 1, 1, 1, 1, 1, 1];

    /// <summary>A run of two tasks: "mc" (10 documents, acc) and "text" (3 documents, per-document bits_per_byte).</summary>
    static string WriteRun(string dir, int[] acc, double[] bpb, double bpbAggregate, Func<int, string>? target = null)
    {
        Directory.CreateDirectory(dir);
        JsonObject Task(string name, string metric, double value, int n) => new()
        {
            ["task"] = name, ["aggregate"] = new JsonArray(),
            ["units"] = new JsonArray(new JsonObject { ["name"] = name, ["n"] = n, ["metrics"] = new JsonArray(new JsonObject { ["metric"] = metric, ["value"] = value, ["stderr"] = null, ["n"] = n }) }),
        };
        var results = new JsonObject { ["model"] = dir, ["tasks"] = new JsonArray(Task("mc", "acc", acc.Average(), acc.Length), Task("text", "bits_per_byte", bpbAggregate, bpb.Length)) };
        File.WriteAllText(Path.Combine(dir, "results.json"), results.ToJsonString());
        var lines = acc.Select((v, i) => new JsonObject { ["task"] = "mc", ["doc"] = i, ["line"] = i + 2, ["target"] = target?.Invoke(i) ?? $"answer {i}", ["scores"] = new JsonObject { ["acc"] = v } })
            .Concat(bpb.Select((v, i) => new JsonObject { ["task"] = "text", ["doc"] = i, ["line"] = i + 1, ["target"] = $"document {i}", ["scores"] = new JsonObject { ["bits_per_byte"] = v } }))
            .Select(o => o.ToJsonString());
        File.WriteAllLines(Path.Combine(dir, "samples.jsonl"), lines);
        return Path.Combine(dir, "results.json");
    }

    [Fact]
    public void McNemar_exact_and_paired_t_p_values_are_the_hand_computed_ones()
    {
        var root = Temp.Dir();
        var a = WriteRun(Path.Combine(root, "a"), AccA, [1.0, 2.0, 3.0], 2.0);
        var b = WriteRun(Path.Combine(root, "b"), AccB, [2.0, 4.0, 6.0], 4.0);
        var rows = RunComparison.Compare(a, b).ToDictionary(r => r.Task);

        var mc = rows["mc"];
        Assert.Equal((0.4, 0.9, 10, "McNemar exact"), (mc.A, mc.B, mc.Pairs, mc.Test));
        Assert.Equal(0.5, mc.Delta, 12);
        // Discordant: b = 1 (A right only: doc 0), c = 6 (B right only: docs 1–6); p = 2 · (C(7,0) + C(7,1)) / 2^7 = 16/128.
        Assert.Equal(0.125, mc.PValue, 12);

        var text = rows["text"];
        Assert.Equal(("paired t", 2.0), (text.Test, text.Delta));
        // d = (1, 2, 3): mean 2, sd 1, t = 2√3 with 2 df, where P(|T| > t) = 1 − t/√(2 + t²) = 1 − √(12/14).
        Assert.Equal(1 - Math.Sqrt(6.0 / 7.0), text.PValue, 10);

        // Comparing a run with itself: no discordant documents, no difference.
        Assert.All(RunComparison.Compare(a, a), r => Assert.Equal(1.0, r.PValue));
        Assert.Equal(1.0, RunComparison.McNemarExact(5, 5));
        Assert.Equal(2.0 / 1024, RunComparison.McNemarExact(0, 10), 15);
    }

    [Fact]
    public void Runs_that_scored_different_documents_are_refused()
    {
        var root = Temp.Dir();
        var a = WriteRun(Path.Combine(root, "a"), AccA, [1.0, 2.0, 3.0], 2.0);
        var fewer = WriteRun(Path.Combine(root, "fewer"), AccB[..9], [2.0, 4.0, 6.0], 4.0);
        var e = Assert.Throws<CptLabException>(() => RunComparison.Compare(a, fewer));
        Assert.Contains("scored different documents", e.Message);
        Assert.Contains("mc", e.Message);

        var other = WriteRun(Path.Combine(root, "other"), AccB, [2.0, 4.0, 6.0], 4.0, i => i == 3 ? "another question" : $"answer {i}");
        e = Assert.Throws<CptLabException>(() => RunComparison.Compare(a, other));
        Assert.Contains("document 3", e.Message);

        File.Delete(Path.Combine(root, "other", "samples.jsonl"));
        e = Assert.Throws<CptLabException>(() => RunComparison.Compare(a, other));
        Assert.Contains("samples.jsonl", e.Message);
    }
}
