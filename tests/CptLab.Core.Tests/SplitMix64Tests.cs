using CptLab.Core;

namespace CptLab.Core.Tests;

public class SplitMix64Tests
{
    [Fact]
    public void Matches_the_published_sequence()
    {
        // The reference splitmix64.c seeded with 1234567 (the vectors Rosetta Code's "Splitmix64" task lists).
        var g = new SplitMix64(1234567);
        ulong[] expected = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821];
        Assert.Equal(expected, Enumerable.Range(0, 5).Select(_ => g.NextUInt64()));
        ulong state = 1234567;
        Assert.Equal(expected[0], SplitMix64.Next(ref state));
        Assert.Equal(expected[1], SplitMix64.Next(ref state));
    }
}
