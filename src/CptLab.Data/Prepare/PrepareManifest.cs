using System.Text.Json;
using CptLab.Core;

namespace CptLab.Data.Prepare;

/// <summary>The account of one source: every document read is kept (train or validation) or dropped with its reason.</summary>
public sealed record SourceAccount
{
    public required string Name { get; init; }
    public required string Tag { get; init; }
    public string? Language { get; init; }
    public required IReadOnlyList<string> Files { get; init; }
    public long DocumentsRead { get; set; }
    public long KeptTrain { get; set; }
    public long KeptValidation { get; set; }
    public SortedDictionary<string, long> Dropped { get; init; } = new(StringComparer.Ordinal);
    public long TokensTrain { get; set; }
    public long TokensValidation { get; set; }
    public long CharsKept { get; set; }
    /// <summary>Path prefixes (no extension) of the shards, relative to the manifest's folder.</summary>
    public required string TrainPrefix { get; init; }
    public required string ValidationPrefix { get; init; }

    public long DroppedTotal => Dropped.Values.Sum();
    /// <summary>read = kept + dropped, by construction; checked before the manifest is written.</summary>
    public bool Balances => DocumentsRead == KeptTrain + KeptValidation + DroppedTotal;
}

/// <summary>`manifest.json` of a prepared data folder: what went in, what came out, with which tokenizer.</summary>
public sealed record PrepareManifest
{
    public const string FileName = "manifest.json";
    public int FormatVersion { get; init; } = 1;
    public required string Tokenizer { get; init; }
    public required int VocabSize { get; init; }
    public int? BosId { get; init; }
    public required int EosId { get; init; }
    public required bool AddBos { get; init; }
    public required double ValidationFraction { get; init; }
    public required Cleaning.CleaningOptions Cleaning { get; init; }
    public required List<SourceAccount> Sources { get; init; }
    public string? RejectsFile { get; init; }
    // No creation time: the same inputs give the same bytes, whatever the thread count or an interruption.

    public void Save(string dir) => AtomicFile.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(this, Json.SnakeCase));

    public static PrepareManifest Load(string dirOrFile)
    {
        var path = Directory.Exists(dirOrFile) ? Path.Combine(dirOrFile, FileName) : dirOrFile;
        if (!File.Exists(path)) throw new CptLabException($"{path}: no prepared-data manifest; run `cptlab data prepare` first");
        try
        {
            return JsonSerializer.Deserialize<PrepareManifest>(File.ReadAllText(path), Json.SnakeCase)
                ?? throw new CorruptFileException(path, "empty manifest");
        }
        catch (JsonException e)
        {
            throw new CorruptFileException(path, $"not a CptLab data manifest: {e.Message}");
        }
    }

    public SourceAccount Source(string name) =>
        Sources.FirstOrDefault(s => s.Name == name)
        ?? throw new CptLabException($"source '{name}' is not in this data folder (sources: {string.Join(", ", Sources.Select(s => s.Name))})");
}
