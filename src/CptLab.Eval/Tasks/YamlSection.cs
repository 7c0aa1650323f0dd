using CptLab.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CptLab.Eval.Tasks;

/// <summary>
/// A YAML mapping read strictly: every key a reader asks for is marked, and <see cref="RejectUnknown"/> refuses
/// the first key nobody asked for with the file, its line and the keys known there. Errors name file:line:key.
/// </summary>
public sealed class YamlSection
{
    readonly YamlMappingNode _map;
    readonly HashSet<string> _read = [];
    readonly List<YamlSection> _children = [];

    YamlSection(YamlMappingNode map, string file, string prefix)
    {
        _map = map;
        File = file;
        Prefix = prefix;
    }

    public string File { get; }
    public string Prefix { get; }
    public int Line => (int)_map.Start.Line;

    /// <summary>Parses the first document of <paramref name="text"/>; <paramref name="file"/> names it in errors.</summary>
    public static YamlSection Parse(string text, string file)
    {
        var yaml = new YamlStream();
        try { yaml.Load(new StringReader(text)); }
        catch (YamlException e) { throw new CptLabException($"{file}:{e.Start.Line}: malformed YAML: {e.Message}"); }
        if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlMappingNode root)
            throw new CptLabException($"{file}: expected a mapping of task keys at the top");
        return new YamlSection(root, file, "");
    }

    public CptLabException Error(string key, string problem) => Error(key, Node(key)?.Start.Line ?? _map.Start.Line, problem);

    CptLabException Error(string key, long line, string problem) => new($"{File}:{line}: {Prefix}{key}: {problem}");

    YamlNode? Node(string key) =>
        _map.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode s && s.Value == key).Value;

    YamlNode? Take(string key)
    {
        _read.Add(key);
        return Node(key);
    }

    public bool Has(string key) => Node(key) is not null;

    public string? String(string key) => Take(key) switch
    {
        null => null,
        YamlScalarNode s => s.Value,
        var n => throw Error(key, n.Start.Line, "expected a string"),
    };

    public string RequiredString(string key) => String(key) ?? throw Error(key, "missing (required)");

    public int? Int(string key)
    {
        var s = String(key);
        if (s is null) return null;
        return int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw Error(key, $"'{s}' is not a whole number");
    }

    public bool? Bool(string key) => String(key) switch
    {
        null => null,
        "true" or "True" => true,
        "false" or "False" => false,
        var s => throw Error(key, $"'{s}' is not true or false"),
    };

    /// <summary>A list of strings; a single string is read as a list of one when <paramref name="allowScalar"/>.</summary>
    public IReadOnlyList<string>? Strings(string key, bool allowScalar = false) => Take(key) switch
    {
        null => null,
        YamlScalarNode s when allowScalar => [s.Value ?? ""],
        YamlSequenceNode seq => seq.Children.Select(c => c is YamlScalarNode s ? s.Value ?? "" : throw Error(key, c.Start.Line, "expected a list of strings")).ToArray(),
        var n => throw Error(key, n.Start.Line, "expected a list of strings"),
    };

    /// <summary>True when the key holds a list (as opposed to a string).</summary>
    public bool IsList(string key) => Node(key) is YamlSequenceNode;

    public YamlSection? Section(string key) => Take(key) switch
    {
        null => null,
        YamlMappingNode m => Child(m, key + "."),
        var n => throw Error(key, n.Start.Line, "expected a mapping"),
    };

    /// <summary>A list of mappings (filter_list, metric_list).</summary>
    public IReadOnlyList<YamlSection> Sections(string key) => Take(key) switch
    {
        null => [],
        YamlSequenceNode seq => seq.Children.Select((c, i) => c is YamlMappingNode m ? Child(m, $"{key}[{i}].") : throw Error(key, c.Start.Line, "expected a list of mappings")).ToArray(),
        var n => throw Error(key, n.Start.Line, "expected a list of mappings"),
    };

    /// <summary>A mapping of string → string, in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Pairs(string key) => Take(key) switch
    {
        null => [],
        YamlMappingNode m => m.Children.Select(kv => KeyValuePair.Create(
            (kv.Key as YamlScalarNode)?.Value ?? throw Error(key, kv.Key.Start.Line, "expected string keys"),
            (kv.Value as YamlScalarNode)?.Value ?? throw Error(key, kv.Value.Start.Line, "expected string values"))).ToArray(),
        var n => throw Error(key, n.Start.Line, "expected a mapping of names to strings"),
    };

    /// <summary>Every key of this mapping with its string value (a fewshot_config sample document); all are marked read.</summary>
    public IReadOnlyDictionary<string, string> AllStrings()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, _) in _map.Children)
            if (k is YamlScalarNode { Value: { } name }) d[name] = String(name) ?? "";
        return d;
    }

    YamlSection Child(YamlMappingNode m, string prefix)
    {
        var c = new YamlSection(m, File, Prefix + prefix);
        _children.Add(c);
        return c;
    }

    /// <summary>Throws for the first key, here or in any section read, that no reader asked for.</summary>
    public void RejectUnknown()
    {
        foreach (var (k, _) in _map.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            if (!_read.Contains(name))
                throw Error(name, k.Start.Line, $"unknown key (known here: {string.Join(", ", _read.Order(StringComparer.Ordinal))})");
        }
        foreach (var c in _children) c.RejectUnknown();
    }
}
