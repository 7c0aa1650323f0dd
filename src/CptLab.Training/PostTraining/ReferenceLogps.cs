using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Training.PostTraining;

/// <summary>
/// The reference model's log-probabilities of every pair's completions (summed over their tokens, with the token count),
/// computed once from the starting model before training and kept in the run folder as <c>reference_logps.json</c>, so
/// that only the policy is in memory while training and a resumed run reuses them. The file carries a hash of the
/// tokenized pairs: a run whose data changed is refused rather than anchored to another set's reference.
/// </summary>
internal sealed record ReferenceLogps(string DataHash, double[][] Train, double[][] Validation)
{
    public const string FileName = "reference_logps.json";

    /// <summary>SHA-256 over the ids and labels of the pairs, train then validation.</summary>
    public static string Hash(IReadOnlyList<PreferencePair> train, IReadOnlyList<PreferencePair> validation)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var p in train.Concat(validation))
            foreach (var e in new[] { p.Chosen, p.Rejected })
            {
                sha.AppendData(BitConverter.GetBytes(e.Length));
                foreach (var id in e.Ids) sha.AppendData(BitConverter.GetBytes(id));
                foreach (var t in e.Trained) sha.AppendData([t ? (byte)1 : (byte)0]);
            }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    public static ReferenceLogps? TryRead(string runDir)
    {
        var path = System.IO.Path.Combine(runDir, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            double[][] Rows(string key) => o[key]!.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<double>()).ToArray()).ToArray();
            return new ReferenceLogps(o["data_hash"]!.GetValue<string>(), Rows("train"), Rows("validation"));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new CorruptFileException(path, $"not a reference log-prob file ({e.Message}); delete it to recompute it from the starting model (only possible before the first checkpoint)");
        }
    }

    public void Write(string runDir)
    {
        static JsonArray Rows(double[][] rows) => [.. rows.Select(r => (JsonNode)new JsonArray([.. r.Select(v => (JsonNode)JsonValue.Create(v))]))];
        var o = new JsonObject { ["data_hash"] = DataHash, ["columns"] = new JsonArray("chosen_logp_sum", "rejected_logp_sum", "chosen_tokens", "rejected_tokens"), ["train"] = Rows(Train), ["validation"] = Rows(Validation) };
        AtomicFile.WriteAllText(System.IO.Path.Combine(runDir, FileName), o.ToJsonString() + "\n");
    }
}
