namespace CptLab.Eval.Execution;

/// <summary>
/// The unbiased pass@k estimator of Chen et al. 2021 (Codex paper, fig. 3): with n samples of which c pass, the chance
/// that k drawn without replacement include a passing one, 1 − C(n−c, k) / C(n, k). The binomials overflow a double for
/// n of a few hundred, so, as the paper does, it is computed as 1 − ∏_{i=n−c+1}^{n} (1 − k/i).
/// </summary>
public static class PassAtK
{
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "need at least one sample");
        if (c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), c, $"the number of passing samples must be in [0, n = {n}]");
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [1, n = {n}]: pass@k needs at least k samples per problem");
        if (n - c < k) return 1.0;   // every k-subset holds a passing sample
        var failAll = 1.0;
        for (var i = n - c + 1; i <= n; i++) failAll *= 1.0 - (double)k / i;
        return 1.0 - failAll;
    }

    /// <summary>
    /// Mean pass@k over problems, given (samples, passing) per problem, for each k that every problem has at least k
    /// samples for (human-eval drops the other ks rather than estimate them from too few samples).
    /// </summary>
    public static IReadOnlyDictionary<int, double> Mean(IReadOnlyList<(int N, int C)> perProblem, IEnumerable<int> ks)
    {
        if (perProblem.Count == 0) throw new ArgumentException("no problems to average over", nameof(perProblem));
        var minN = perProblem.Min(p => p.N);
        var result = new SortedDictionary<int, double>();
        foreach (var k in ks.Distinct())
            if (k >= 1 && k <= minN) result[k] = perProblem.Average(p => Estimate(p.N, p.C, k));
        return result;
    }
}
