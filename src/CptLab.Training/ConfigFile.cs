using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CptLab.Training;

/// <summary>Reads a YAML or JSON file into a JSON object (YAML scalars keep their text; readers parse numbers).</summary>
public static class ConfigFile
{
    public static JsonObject Read(string path)
    {
        var text = File.ReadAllText(path);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                return JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                       ?? throw new CorruptFileException(path, "expected a JSON object at the top");
            }
            catch (JsonException e)
            {
                throw new CorruptFileException(path, $"malformed JSON at line {e.LineNumber + 1}: {e.Message.Split(" LineNumber")[0]}");
            }
        }
        var yaml = new YamlStream();
        try
        {
            yaml.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new CorruptFileException(path, $"malformed YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}");
        }
        if (yaml.Documents.Count == 0) throw new CorruptFileException(path, "empty file");
        return ToJson(yaml.Documents[0].RootNode, path) as JsonObject ?? throw new CorruptFileException(path, "expected a mapping at the top");
    }

    static JsonNode? ToJson(YamlNode node, string path) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value, path)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(c => ToJson(c, path)).ToArray()),
        YamlScalarNode { Value: null or "~" or "null" } => null,
        YamlScalarNode sc when sc.Style == ScalarStyle.Plain && (sc.Value == "true" || sc.Value == "false") => JsonValue.Create(sc.Value == "true"),
        YamlScalarNode sc when sc.Style == ScalarStyle.Plain && double.TryParse(sc.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => JsonValue.Create(d),
        YamlScalarNode sc => JsonValue.Create(sc.Value),
        _ => throw new CorruptFileException(path, $"unsupported YAML node at line {node.Start.Line}"),
    };
}

/// <summary>Typed, strict access to a config section: errors name the key; keys never read are reported as unknown.</summary>
public sealed class ConfigReader
{
    readonly JsonObject _obj;
    readonly string _source, _prefix;
    readonly HashSet<string> _read = [];
    readonly List<ConfigReader> _children = [];

    public ConfigReader(JsonObject obj, string source, string prefix = "")
    {
        (_obj, _source, _prefix) = (obj, source, prefix);
    }

    public ConfigReader Section(string key)
    {
        _read.Add(key);
        var node = _obj[key];
        if (node is not null and not JsonObject) throw new ConfigException(_source, _prefix + key, "expected a section (a mapping of keys)");
        var child = new ConfigReader(node as JsonObject ?? new JsonObject(), _source, _prefix + key + ".");
        _children.Add(child);
        return child;
    }

    JsonNode? Get(string key)
    {
        _read.Add(key);
        return _obj[key];
    }

    public string? String(string key) => Get(key) switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var n => throw new ConfigException(_source, _prefix + key, $"expected text, found {n.ToJsonString()}"),
    };

    public double? Double(string key) => Get(key) switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture),
        JsonValue v when v.TryGetValue<string>(out var s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        var n => throw new ConfigException(_source, _prefix + key, $"expected a number, found {n.ToJsonString()}"),
    };

    public long? Long(string key)
    {
        var d = Double(key);
        if (d is null) return null;
        if (d != Math.Floor(d.Value) || Math.Abs(d.Value) > 9e15) throw new ConfigException(_source, _prefix + key, $"expected a whole number, found {d}");
        return (long)d.Value;
    }

    public int? Int(string key)
    {
        var l = Long(key);
        if (l is null) return null;
        if (l > int.MaxValue || l < int.MinValue) throw new ConfigException(_source, _prefix + key, $"{l} is out of range");
        return (int)l;
    }

    public bool? Bool(string key) => Get(key) switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var n => throw new ConfigException(_source, _prefix + key, $"expected true or false, found {n.ToJsonString()}"),
    };

    public T? Enum<T>(string key) where T : struct, Enum
    {
        var s = String(key);
        if (s is null) return null;
        var norm = s.Replace("_", "").Replace("-", "");
        foreach (var v in System.Enum.GetValues<T>())
            if (string.Equals(v.ToString(), norm, StringComparison.OrdinalIgnoreCase)) return v;
        throw new ConfigException(_source, _prefix + key, $"'{s}' is not one of {string.Join(", ", System.Enum.GetNames<T>().Select(n => JsonNamingPolicy.SnakeCaseLower.ConvertName(n)))}");
    }

    /// <summary>Throws for the first key (here or in any section read) that no reader asked for: most often a typo.</summary>
    public void RejectUnknown()
    {
        foreach (var (key, _) in _obj)
            if (!_read.Contains(key))
                throw new ConfigException(_source, _prefix + key, $"unknown key (known here: {string.Join(", ", _read.Order())})");
        foreach (var c in _children) c.RejectUnknown();
    }
}
