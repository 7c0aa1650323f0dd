using System.Text.Json;
using System.Text.Json.Serialization;
using CptLab.Core;

namespace CptLab.Laws.Registry;

/// <summary>
/// A table fit as JSON (`cptlab laws fit --out fit.json`): the <see cref="LawTableFit"/> in snake_case, written
/// atomically, so a reader never sees half a file. NaN (a bootstrap quantile with too few replicates) is written
/// as the string "NaN".
/// </summary>
public static class LawFitJson
{
    static readonly JsonSerializerOptions Options = new(Json.SnakeCase)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Serialize(LawTableFit fit) => JsonSerializer.Serialize(fit, Options);

    public static void Write(string path, LawTableFit fit) => AtomicFile.WriteAllText(path, Serialize(fit) + "\n");

    /// <summary>Reads a fit back, with its law looked up in the registry again (so <see cref="LawTableFit.Predict"/> works).</summary>
    public static LawTableFit Read(string path)
    {
        using var doc = Json.ParseFile(path);
        LawTableFit fit;
        try
        {
            fit = doc.Deserialize<LawTableFit>(Options) ?? throw new CorruptFileException(path, "the fit is empty (null)");
        }
        catch (JsonException e)
        {
            throw new CorruptFileException(path, $"not a CptLab law fit: {e.Message}");
        }
        return fit with { Definition = LawRegistry.Find(fit.Law) };
    }
}
