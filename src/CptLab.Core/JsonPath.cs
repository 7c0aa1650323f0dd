using System.Text.Json.Nodes;

namespace CptLab.Core;

/// <summary>Dotted paths into JSON config trees ("optimizer.lr"): the names config errors and config comparisons use.</summary>
public static class JsonPath
{
    /// <summary>The node at <paramref name="dottedPath"/>, or null where any part of it is missing or not a mapping.</summary>
    public static JsonNode? Find(JsonNode? node, string dottedPath)
    {
        foreach (var part in dottedPath.Split('.')) node = (node as JsonObject)?[part];
        return node;
    }

    /// <summary>The dotted path of the first key whose value differs between two trees (a key absent on one side counts); null when equal.</summary>
    /// <param name="ignore">(path, node in a, node in b) → true: that key is not compared.</param>
    public static string? FirstDifference(JsonNode? a, JsonNode? b, string path = "", Func<string, JsonNode?, JsonNode?, bool>? ignore = null)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
            {
                var at = path.Length == 0 ? key : $"{path}.{key}";
                if (ignore?.Invoke(at, oa[key], ob[key]) == true) continue;
                if (FirstDifference(oa[key], ob[key], at, ignore) is { } d) return d;
            }
            return null;
        }
        return JsonNode.DeepEquals(a, b) ? null : path;
    }

    /// <summary>A node as it reads in a message: its JSON text, or "absent".</summary>
    public static string Show(JsonNode? node) => node?.ToJsonString() ?? "absent";
}
