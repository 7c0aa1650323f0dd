using CptLab.Eval.Tasks;

namespace CptLab.Eval.Tests;

/// <summary>lm-eval's default few-shot sampler is Python's random.sample; the expected values were printed by CPython 3.11.</summary>
public class PythonRandomTests
{
    [Fact]
    public void Seed_1234_gives_CPythons_draws()
    {
        var r = new PythonRandom(1234);
        Assert.Equal(0.9664535356921388, r.NextDouble());
        Assert.Equal(1892932127u, r.NextUInt32());
    }

    [Fact]
    public void Sample_matches_CPython_for_the_set_and_the_pool_method()
    {
        var big = Enumerable.Range(0, 7473).ToArray();      // gsm8k's train size: set method
        var r = new PythonRandom(1234);
        Assert.Equal([6374, 3610, 957, 61, 742], r.Sample(big, 5));
        Assert.Equal([7462, 6610, 4769, 286, 5501], r.Sample(big, 5)); // the generator advances doc after doc
        Assert.Equal([7, 1, 0, 9, 4, 6], new PythonRandom(1234).Sample(Enumerable.Range(0, 10).ToArray(), 6)); // pool method
    }
}
