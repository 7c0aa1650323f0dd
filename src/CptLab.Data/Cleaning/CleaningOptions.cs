namespace CptLab.Data.Cleaning;

/// <summary>Cleaning knobs; the defaults suit web text and books alike.</summary>
public sealed record CleaningOptions
{
    /// <summary>Documents shorter than this many characters (after cleaning) are dropped.</summary>
    public int MinChars { get; init; } = 16;
    public int MaxChars { get; init; } = 2_000_000;

    /// <summary>For sources with a language: the least share of letters in its script (Han for zh, Latin for en).</summary>
    public double MinScriptShare { get; init; } = 0.5;

    public bool ExactDedup { get; init; } = true;
    public bool NearDedup { get; init; } = true;

    /// <summary>Character shingle length for MinHash: characters, so that Chinese (no spaces) works as well as English.</summary>
    public int ShingleSize { get; init; } = 5;

    /// <summary>Estimated Jaccard similarity of shingle sets at or above which a document is a near duplicate.</summary>
    public double JaccardThreshold { get; init; } = 0.8;

    /// <summary>MinHash signature length. Memory of near dedup: 4 bytes each per kept document, plus the LSH buckets (about 1 KB per kept document in all at 128).</summary>
    public int NumPermutations { get; init; } = 128;

    public void Validate()
    {
        static void Check(bool ok, string key, string problem) { if (!ok) throw new Core.ConfigException("cleaning", key, problem); }
        Check(MinChars >= 0 && MaxChars > MinChars, "min_chars/max_chars", $"need 0 <= min_chars < max_chars, got {MinChars}, {MaxChars}");
        Check(MinScriptShare is >= 0 and <= 1, "min_script_share", $"{MinScriptShare} is not in [0, 1]");
        Check(ShingleSize >= 1, "shingle_size", $"{ShingleSize} must be at least 1");
        Check(JaccardThreshold is > 0 and <= 1, "jaccard_threshold", $"{JaccardThreshold} is not in (0, 1]");
        Check(NumPermutations is >= 8 and <= 1024, "num_permutations", $"{NumPermutations} is not in [8, 1024]");
    }
}
