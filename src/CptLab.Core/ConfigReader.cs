using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CptLab.Core;

/// <summary>
/// Strict, typed access to one mapping of a config file (YAML or JSON already turned into JSON nodes): every error
/// names the file and the dotted key, and keys nobody asked for are reported as unknown (most often a typo).
/// The trainer's config and the sweep spec both read through it. Numbers may also be given as text ("3e-4").
/// </summary>
public sealed class ConfigReader
{
    readonly JsonObject _obj;
    readonly HashSet<string> _read = [];
    readonly List<ConfigReader> _children = [];

    public ConfigReader(JsonObject obj, string source, string prefix = "")
    {
        (_obj, Source, Prefix) = (obj, source, prefix);
    }

    public string Source { get; }
    public string Prefix { get; }

    public ConfigException Error(string key, string problem) => new(Source, Prefix + key, problem);

    public bool Has(string key) => _obj[key] is not null;

    public JsonNode? Raw(string key)
    {
        _read.Add(key);
        return _obj[key];
    }

    public ConfigReader Section(string key)
    {
        var node = Raw(key);
        if (node is not null and not JsonObject) throw Error(key, "expected a section (a mapping of keys)");
        var child = new ConfigReader(node as JsonObject ?? new JsonObject(), Source, Prefix + key + ".");
        _children.Add(child);
        return child;
    }

    public string? String(string key) => Raw(key) switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var n => throw Error(key, $"expected text, found {n.ToJsonString()}"),
    };

    public string RequiredString(string key) => String(key) ?? throw Error(key, "missing");

    public double? Double(string key) => AsDouble(Raw(key), key);

    double? AsDouble(JsonNode? node, string key) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture),
        JsonValue v when v.TryGetValue<string>(out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        var n => throw Error(key, $"expected a number, found {n.ToJsonString()}"),
    };

    public long? Long(string key) => Whole(Double(key), key);

    public int? Int(string key)
    {
        var l = Long(key);
        if (l is > int.MaxValue or < int.MinValue) throw Error(key, $"{l} is out of range");
        return (int?)l;
    }

    long? Whole(double? d, string key)
    {
        if (d is null) return null;
        if (d != Math.Floor(d.Value) || Math.Abs(d.Value) > 9e15) throw Error(key, $"expected a whole number, found {d.Value.ToString(CultureInfo.InvariantCulture)}");
        return (long)d.Value;
    }

    /// <summary>A token count: a whole number ≥ 0, or text with a K/M/B/T suffix ("20M"), as <see cref="TokenAmount"/> reads it.</summary>
    public long? Tokens(string key)
    {
        long? n = Raw(key) switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var s) =>
                TokenAmount.TryParse(s, out var t, out var problem) ? t : throw Error(key, $"'{s}' is not a token count: {problem}"),
            _ => Long(key),
        };
        if (n < 0) throw Error(key, $"{n} is negative; a token count is ≥ 0");
        return n;
    }

    public bool? Bool(string key) => Raw(key) switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var n => throw Error(key, $"expected true or false, found {n.ToJsonString()}"),
    };

    /// <summary>A list of numbers; a single number counts as a list of one.</summary>
    public IReadOnlyList<double>? Doubles(string key) => Raw(key) switch
    {
        null => null,
        JsonArray a => a.Select((n, i) => AsDouble(n, $"{key}[{i}]") ?? throw Error($"{key}[{i}]", "empty entry")).ToArray(),
        var n => [AsDouble(n, key)!.Value],
    };

    public IReadOnlyList<long>? Longs(string key) =>
        Doubles(key)?.Select((d, i) => Whole(d, $"{key}[{i}]")!.Value).ToArray();

    /// <summary>A list of strings; a single string counts as a list of one.</summary>
    public IReadOnlyList<string>? Strings(string key) => Raw(key) switch
    {
        null => null,
        JsonArray a => a.Select((n, i) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Error($"{key}[{i}]", $"expected text, found {n?.ToJsonString() ?? "nothing"}")).ToArray(),
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        var n => throw Error(key, $"expected a list of names, found {n.ToJsonString()}"),
    };

    /// <summary>An enum value, written in snake_case or with '-' ("one_minus_sqrt" for OneMinusSqrt); case is ignored.</summary>
    public T? Enum<T>(string key) where T : struct, Enum
    {
        var s = String(key);
        if (s is null) return null;
        var norm = s.Replace("_", "").Replace("-", "");
        foreach (var v in System.Enum.GetValues<T>())
            if (string.Equals(v.ToString(), norm, StringComparison.OrdinalIgnoreCase)) return v;
        throw Error(key, $"'{s}' is not one of {string.Join(", ", System.Enum.GetNames<T>().Select(n => JsonNamingPolicy.SnakeCaseLower.ConvertName(n)))}");
    }

    public IEnumerable<string> Keys => _obj.Select(kv => kv.Key);

    /// <summary>Throws for the first key (here or in any section read) that no reader asked for.</summary>
    public void RejectUnknown()
    {
        foreach (var (key, _) in _obj)
            if (!_read.Contains(key))
                throw Error(key, $"unknown key (known here: {string.Join(", ", _read.Order())})");
        foreach (var c in _children) c.RejectUnknown();
    }
}
