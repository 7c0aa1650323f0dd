using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using CptLab.Core;
using CptLab.Data.Prepare;

namespace CptLab.Data.Mixing;

/// <summary>Where a source sits in the mixture: replay of the original language, the additional language, or domain data.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SourceGroup>))]
public enum SourceGroup { Original, Additional, Domain }

/// <summary>A source in a mixture, with its weight relative to the other sources of its group.</summary>
public sealed record MixComponent(string Source, SourceGroup Group, double Weight = 1.0)
{
    /// <summary>Parses NAME or NAME:WEIGHT.</summary>
    public static MixComponent Parse(string text, SourceGroup group)
    {
        var colon = text.LastIndexOf(':');
        if (colon < 0) return new(text, group);
        if (!double.TryParse(text[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var w) || !(w > 0) || double.IsInfinity(w))
            throw new CptLabException($"'{text}': the weight after ':' must be a positive number, as in zh-web:2");
        return new(text[..colon], group, w);
    }
}

/// <summary>What `cptlab data mix` is asked for.</summary>
public sealed record MixSpec
{
    public required string DataDir { get; init; }
    public required IReadOnlyList<MixComponent> Components { get; init; }
    /// <summary>ALMR: the share of additional-language tokens, in [0, 1].</summary>
    public required double Almr { get; init; }
    /// <summary>The share of domain tokens; the original language gets 1 − ALMR − domain share.</summary>
    public double DomainShare { get; init; }
    public required long TokenBudget { get; init; }
    public required int SeqLen { get; init; }
    public ulong Seed { get; init; } = 1234;
    /// <summary>A source planned to repeat more often than this is reported with a warning.</summary>
    public double MaxEpochs { get; init; } = 4;
}

/// <summary>One source's line of the blend manifest.</summary>
public sealed record BlendSource
{
    public required string Name { get; init; }
    public required SourceGroup Group { get; init; }
    public required string Tag { get; init; }
    public required double WeightInGroup { get; init; }
    /// <summary>Target share of all training tokens.</summary>
    public required double Share { get; init; }
    public required string TrainPrefix { get; init; }
    public required string ValidationPrefix { get; init; }
    public required long TokensAvailable { get; init; }
    public required long TokensPlanned { get; init; }
    public required double Epochs { get; init; }
}

/// <summary>
/// The blend manifest: per source its share, the tokens the budget draws from it and how many epochs that is,
/// plus everything the sampler needs to reproduce the stream (seed, sequence length) and the equivalent
/// Megatron-LM arguments.
/// </summary>
public sealed record BlendManifest
{
    public int FormatVersion { get; init; } = 1;
    public required string DataDir { get; init; }
    public required double Almr { get; init; }
    public required double DomainShare { get; init; }
    public required long TokenBudget { get; init; }
    public required int SeqLen { get; init; }
    public required long Sequences { get; init; }
    public required ulong Seed { get; init; }
    public required int VocabSize { get; init; }
    public required List<BlendSource> Sources { get; init; }
    public required List<string> Warnings { get; init; }
    public required string MegatronDataPath { get; init; }
    public required string MegatronValidDataPath { get; init; }

    public static BlendManifest Create(MixSpec spec)
    {
        if (!(spec.Almr >= 0 && spec.Almr <= 1)) throw new CptLabException($"ALMR {spec.Almr.ToString(CultureInfo.InvariantCulture)} is not in [0, 1]: it is the share of additional-language tokens");
        if (!(spec.DomainShare >= 0 && spec.DomainShare < 1)) throw new CptLabException($"domain share {spec.DomainShare.ToString(CultureInfo.InvariantCulture)} is not in [0, 1)");
        if (spec.Almr + spec.DomainShare > 1 + 1e-12) throw new CptLabException($"ALMR {spec.Almr} + domain share {spec.DomainShare} exceeds 1: nothing is left for the original language");
        if (spec.SeqLen < 1) throw new CptLabException($"sequence length {spec.SeqLen} must be positive");
        if (spec.TokenBudget < spec.SeqLen) throw new CptLabException($"token budget {spec.TokenBudget} is less than one sequence of {spec.SeqLen} tokens");
        var dupes = spec.Components.GroupBy(c => c.Source).FirstOrDefault(g => g.Count() > 1);
        if (dupes is not null) throw new CptLabException($"source '{dupes.Key}' appears twice in the mixture");

        var manifest = PrepareManifest.Load(spec.DataDir);
        var dataDir = Path.GetFullPath(Directory.Exists(spec.DataDir) ? spec.DataDir : Path.GetDirectoryName(spec.DataDir)!);
        var groupShare = new Dictionary<SourceGroup, double>
        {
            [SourceGroup.Additional] = spec.Almr,
            [SourceGroup.Domain] = spec.DomainShare,
            [SourceGroup.Original] = Math.Max(0, 1 - spec.Almr - spec.DomainShare),
        };
        foreach (var (group, share) in groupShare)
            if (share > 0 && !spec.Components.Any(c => c.Group == group))
                throw new CptLabException($"the {group.ToString().ToLowerInvariant()} group has a share of {share:0.###} but no source; add --{group.ToString().ToLowerInvariant()} NAME");

        var sequences = (spec.TokenBudget + spec.SeqLen - 1) / spec.SeqLen;
        var shares = new List<double>();
        var accounts = new List<SourceAccount>();
        foreach (var c in spec.Components)
        {
            var acc = manifest.Source(c.Source);
            var groupWeight = spec.Components.Where(x => x.Group == c.Group).Sum(x => x.Weight);
            var share = groupShare[c.Group] * c.Weight / groupWeight;
            if (share > 0 && acc.TokensTrain == 0) throw new CptLabException($"source '{c.Source}' is empty: it has no training tokens in {spec.DataDir}");
            shares.Add(share);
            accounts.Add(acc);
        }
        var counts = Apportionment.CountsAfter(shares, sequences);

        var sources = new List<BlendSource>();
        var warnings = new List<string>();
        for (var i = 0; i < spec.Components.Count; i++)
        {
            var c = spec.Components[i];
            var planned = counts[i] * spec.SeqLen;
            var epochs = (double)planned / accounts[i].TokensTrain;
            if (epochs > spec.MaxEpochs)
                warnings.Add($"source '{c.Source}' repeats {epochs:0.##} times ({planned:N0} tokens planned from {accounts[i].TokensTrain:N0}), more than the limit of {spec.MaxEpochs}: repeated data stops helping and starts to overfit; add data or lower its share");
            sources.Add(new BlendSource
            {
                Name = c.Source, Group = c.Group, Tag = accounts[i].Tag, WeightInGroup = c.Weight, Share = shares[i],
                TrainPrefix = accounts[i].TrainPrefix, ValidationPrefix = accounts[i].ValidationPrefix,
                TokensAvailable = accounts[i].TokensTrain, TokensPlanned = planned, Epochs = epochs,
            });
        }
        string DataPath(Func<BlendSource, string> prefix) => string.Join(' ', sources.Where(s => s.Share > 0)
            .Select(s => $"{s.Share.ToString("0.######", CultureInfo.InvariantCulture)} {Path.Combine(dataDir, prefix(s))}"));

        return new BlendManifest
        {
            DataDir = dataDir, Almr = spec.Almr, DomainShare = spec.DomainShare, TokenBudget = spec.TokenBudget,
            SeqLen = spec.SeqLen, Sequences = sequences, Seed = spec.Seed, VocabSize = manifest.VocabSize,
            Sources = sources, Warnings = warnings,
            // Per-split paths: validate_args (megatron/training/arguments.py) asserts "A single data source must be provided in
            // training mode, else None" against --data-path with --valid-data-path, and --data-path alone never reads the .val shards.
            MegatronDataPath = "--train-data-path " + DataPath(s => s.TrainPrefix),
            MegatronValidDataPath = "--valid-data-path " + DataPath(s => s.ValidationPrefix),
        };
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json.SnakeCase));

    public static BlendManifest Load(string path)
    {
        if (!File.Exists(path)) throw new CptLabException($"{path}: blend manifest not found; write one with `cptlab data mix`");
        try
        {
            return JsonSerializer.Deserialize<BlendManifest>(File.ReadAllText(path), Json.SnakeCase) ?? throw new CorruptFileException(path, "empty blend manifest");
        }
        catch (JsonException e)
        {
            throw new CorruptFileException(path, $"not a CptLab blend manifest: {e.Message}");
        }
    }
}
