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
