namespace CptLab.Core;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014): a small, fast generator whose sequence is fixed by its seed on every
/// platform and .NET version. Data order (mixture permutations), MinHash seeds and sampling all draw from it, so
/// a run's randomness is reproducible from its seeds alone.
/// </summary>
public sealed class SplitMix64(ulong seed)
{
    public const ulong Gamma = 0x9E3779B97F4A7C15UL;
    ulong _state = seed;

    public ulong NextUInt64() => Next(ref _state);

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>The next output for a state held by the caller (advances it).</summary>
    public static ulong Next(ref ulong state)
    {
        var z = state += Gamma;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
