using System.Text.Json;
using System.Text.Json.Serialization;
using CptLab.Core;

namespace CptLab.Laws;

/// <summary>fit.json: the <see cref="FitSummary"/> in snake_case JSON, written atomically.</summary>
public static class FitJson
{
    static readonly JsonSerializerOptions Options = new(Json.SnakeCase)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Serialize(FitSummary summary) => JsonSerializer.Serialize(summary, Options);

    public static void Write(string path, FitSummary summary) => AtomicFile.WriteAllText(path, Serialize(summary) + "\n");

    public static FitSummary Read(string path)
    {
        using var doc = Json.ParseFile(path);
        try
        {
            return doc.Deserialize<FitSummary>(Options)
                   ?? throw new CorruptFileException(path, "fit.json is empty (null)");
        }
        catch (JsonException e)
        {
            throw new CorruptFileException(path, $"not a CptLab fit.json: {e.Message}");
        }
    }
}
