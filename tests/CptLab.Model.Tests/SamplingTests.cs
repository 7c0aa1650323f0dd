using CptLab.Core;
using CptLab.Model;

namespace CptLab.Model.Tests;

public class SamplingTests
{
    static readonly float[] Logits = [2.0f, 1.0f, 0.5f, 0.0f, -1.0f];

    static double[] Softmax(IEnumerable<double> xs)
    {
        var a = xs.ToArray();
        double m = a.Max();
        var e = a.Select(x => Math.Exp(x - m)).ToArray();
        double s = e.Sum();
        return e.Select(x => x / s).ToArray();
    }

    [Fact]
    public void Temperature_scales_the_softmax()
    {
        var p = TokenSampler.Probabilities(Logits, new SamplingOptions { Temperature = 0.5 });
        var expected = Softmax(Logits.Select(l => l / 0.5));
        for (int i = 0; i < p.Length; i++) Assert.Equal(expected[i], p[i], 1e-12);
    }

    [Fact]
    public void Top_k_keeps_the_k_most_likely()
    {
        var p = TokenSampler.Probabilities(Logits, new SamplingOptions { TopK = 2 });
        var expected = Softmax([2.0, 1.0]);
        Assert.Equal(expected[0], p[0], 1e-12);
        Assert.Equal(expected[1], p[1], 1e-12);
        Assert.Equal(0, p[2]);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_p()
    {
        var full = Softmax(Logits.Select(l => (double)l)); // 0.5745, 0.2113, 0.1282, 0.0777, 0.0286
        var p = TokenSampler.Probabilities(Logits, new SamplingOptions { TopP = 0.8 });
        // 0.5745 + 0.2113 = 0.7858 < 0.8, so the third token is needed too.
        double kept = full[0] + full[1] + full[2];
        Assert.Equal(full[2] / kept, p[2], 1e-12);
        Assert.Equal(0, p[3]);
        Assert.Equal(1.0, p.Sum(), 1e-12);
    }

    [Fact]
    public void Min_p_drops_tokens_below_a_share_of_the_best()
    {
        var full = Softmax(Logits.Select(l => (double)l));
        var p = TokenSampler.Probabilities(Logits, new SamplingOptions { MinP = 0.2 }); // threshold 0.1149
        double kept = full[0] + full[1] + full[2];
        Assert.Equal(full[0] / kept, p[0], 1e-12);
        Assert.Equal(0, p[3]);
        Assert.Equal(0, p[4]);
    }

    [Fact]
    public void Repetition_penalty_changes_the_greedy_choice()
    {
        var greedy = new TokenSampler(SamplingOptions.Greedy);
        Assert.Equal(0, greedy.Next((float[])Logits.Clone()));
        var penalised = new TokenSampler(SamplingOptions.Greedy with { RepetitionPenalty = 2.5 }, context: [0]);
        Assert.Equal(1, penalised.Next((float[])Logits.Clone())); // 2.0 / 2.5 = 0.8 < 1.0
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_follows_the_distribution()
    {
        var options = new SamplingOptions { Temperature = 1.0, Seed = 42 };
        int[] Draw(int n)
        {
            var s = new TokenSampler(options);
            return Enumerable.Range(0, n).Select(_ => s.Next((float[])Logits.Clone())).ToArray();
        }
        var a = Draw(20_000);
        Assert.Equal(a, Draw(20_000));
        var expected = Softmax(Logits.Select(l => (double)l));
        for (int i = 0; i < expected.Length; i++)
        {
            double freq = a.Count(t => t == i) / 20_000.0;
            double sd = Math.Sqrt(expected[i] * (1 - expected[i]) / 20_000);
            Assert.True(Math.Abs(freq - expected[i]) < 5 * sd, $"token {i}: frequency {freq:F4}, expected {expected[i]:F4}");
        }
        Assert.NotEqual(a, new TokenSampler(options with { Seed = 43 }) is var other ? Enumerable.Range(0, 20_000).Select(_ => other.Next((float[])Logits.Clone())).ToArray() : null);
    }

    [Theory]
    [InlineData(-1.0, 0, 1.0, 0.0, 1.0, "temperature")]
    [InlineData(1.0, -1, 1.0, 0.0, 1.0, "top-k")]
    [InlineData(1.0, 0, 0.0, 0.0, 1.0, "top-p")]
    [InlineData(1.0, 0, 1.0, 1.0, 1.0, "min-p")]
    [InlineData(1.0, 0, 1.0, 0.0, 0.0, "repetition penalty")]
    public void Invalid_options_are_refused(double t, int k, double p, double minP, double rep, string what)
    {
        var e = Assert.Throws<CptLabException>(() => new SamplingOptions { Temperature = t, TopK = k, TopP = p, MinP = minP, RepetitionPenalty = rep }.Validate());
        Assert.StartsWith(what, e.Message);
    }

    /// <summary>The filters by their definition: the whole row sorted by (logit desc, id asc), then top-k, top-p, min-p.</summary>
    static double[] ReferenceProbabilities(float[] logits, SamplingOptions o)
    {
        int n = logits.Length;
        var scaled = logits.Select(l => l / o.Temperature).ToArray();
        var order = Enumerable.Range(0, n).OrderByDescending(i => scaled[i]).ThenBy(i => i).ToArray();
        int keep = o.TopK > 0 ? Math.Min(o.TopK, n) : n;
        double max = scaled.Max();
        var p = new double[n];
        double sum = 0;
        for (int r = 0; r < keep; r++) sum += p[order[r]] = Math.Exp(scaled[order[r]] - max);
        for (int r = 0; r < keep; r++) p[order[r]] /= sum;
        if (o.TopP < 1)
        {
            double c = 0;
            int r = 0;
            while (r < keep) { c += p[order[r++]]; if (c >= o.TopP) break; }
            for (int q = r; q < keep; q++) p[order[q]] = 0;
            keep = Math.Max(r, 1);
        }
        if (o.MinP > 0)
            for (int r = 1; r < keep; r++) if (p[order[r]] < o.MinP * p[order[0]]) p[order[r]] = 0;
        double t = p.Sum();
        return p.Select(x => x / t).ToArray();
    }

    [Theory]
    [InlineData(1000, 0, 0.9, 0.0, 1.0)]
    [InlineData(20000, 0, 0.9, 0.0, 0.7)]
    [InlineData(20000, 0, 0.5, 0.0, 3.0)]  // a flat row: the nucleus is thousands of tokens
    [InlineData(20000, 0, 1.0, 0.05, 1.0)] // min-p alone
    [InlineData(20000, 0, 0.95, 0.1, 1.0)]
    [InlineData(20000, 40, 0.9, 0.0, 1.0)]
    [InlineData(20000, 5000, 1.0, 0.0, 1.0)]
    [InlineData(300, 0, 0.9, 0.02, 1.0)]
    public void Filtering_only_the_head_of_the_row_gives_the_full_sort_distribution(int n, int topK, double topP, double minP, double temperature)
    {
        var rng = new Random(n + topK);
        // Peaked rows with many exact ties (values on a coarse grid), as after logit_bias or in a quantised model.
        var logits = Enumerable.Range(0, n).Select(_ => (float)Math.Round(rng.NextDouble() * rng.NextDouble() * 12, 1)).ToArray();
        var o = new SamplingOptions { TopK = topK, TopP = topP, MinP = minP, Temperature = temperature };
        var got = TokenSampler.Probabilities(logits, o);
        var want = ReferenceProbabilities(logits, o);
        Assert.Equal(want.Count(p => p > 0), got.Count(p => p > 0));
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(got[i] - want[i]) <= 1e-12, $"token {i}: {got[i]} vs {want[i]}");
    }
}
