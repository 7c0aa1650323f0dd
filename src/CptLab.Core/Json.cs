using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CptLab.Core;

/// <summary>The JSON settings CptLab writes with: indented, snake_case where it mirrors Hugging Face files.</summary>
public static class Json
{
    public static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static readonly JsonSerializerOptions SnakeCase = new(Indented)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>Parses a JSON file, with an error naming the file, line and position when it is malformed.</summary>
    public static JsonDocument ParseFile(string path)
    {
        if (!File.Exists(path)) throw new CptLabException($"{path}: file not found");
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new CorruptFileException(path, $"malformed JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {e.Message.Split(" LineNumber")[0]}");
        }
    }
}
