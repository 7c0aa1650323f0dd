using CptLab.Eval.Execution;

namespace CptLab.Eval.Tests.Execution;

public class PassAtKTests
{
    [Fact]
    public void Matches_hand_computed_values()
    {
        Assert.Equal(0.4, PassAtK.Estimate(5, 2, 1), 12);                       // c/n
        Assert.Equal(1.0 - 21.0 / 252.0, PassAtK.Estimate(10, 3, 5), 12);       // 1 − C(7,5)/C(10,5)
        Assert.Equal(1.0 - 3.0 / 10.0, PassAtK.Estimate(5, 2, 2), 12);          // 1 − C(3,2)/C(5,2)
        Assert.Equal(0.0, PassAtK.Estimate(7, 0, 3));
        Assert.Equal(1.0, PassAtK.Estimate(7, 5, 3));                           // n − c < k: every draw holds a pass
        Assert.Equal(1.0, PassAtK.Estimate(4, 4, 1));
    }

    [Fact]
    public void Equals_the_fraction_of_k_subsets_with_a_passing_sample()
    {
        for (var n = 1; n <= 10; n++)
        for (var c = 0; c <= n; c++)
        for (var k = 1; k <= n; k++)
            Assert.Equal(BruteForce(n, c, k), PassAtK.Estimate(n, c, k), 12);
    }

    [Fact]
    public void Stays_finite_where_the_binomials_overflow()
    {
        // C(2000, 1000) ≈ 2e600 is not a double; the product form still gives 1 − C(1990,1000)/C(2000,1000).
        var p = PassAtK.Estimate(2000, 10, 1000);
        var expected = 1.0;
        for (var i = 0; i < 10; i++) expected *= (1000.0 - i) / (2000.0 - i);   // C(n−c,k)/C(n,k) = ∏ (n−k−i)/(n−i)
        Assert.Equal(1.0 - expected, p, 12);
    }

    [Fact]
    public void Refuses_impossible_counts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 6, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 2, 6));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 2, 0));
    }

    [Fact]
    public void Mean_leaves_out_ks_above_the_fewest_samples()
    {
        var mean = PassAtK.Mean([(5, 2), (10, 3)], [1, 5, 10]);
        Assert.Equal([1, 5], mean.Keys);
        Assert.Equal((0.4 + 0.3) / 2, mean[1], 12);
        Assert.Equal((1.0 + (1.0 - 21.0 / 252.0)) / 2, mean[5], 12);    // n=5,c=2,k=5: n−c < k → 1
    }

    /// <summary>Enumerates every k-subset of n samples (the first c passing) and counts those holding a pass.</summary>
    static double BruteForce(int n, int c, int k)
    {
        long hits = 0, total = 0;
        for (var mask = 0; mask < 1 << n; mask++)
        {
            if (System.Numerics.BitOperations.PopCount((uint)mask) != k) continue;
            total++;
            if ((mask & ((1 << c) - 1)) != 0) hits++;
        }
        return (double)hits / total;
    }
}
