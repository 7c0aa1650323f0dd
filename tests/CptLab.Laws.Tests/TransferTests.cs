using CptLab.Laws;

namespace CptLab.Laws.Tests;

public class TransferTests(Xunit.Abstractions.ITestOutputHelper output)
{
    internal static PlanRequest Request() => new()
    {
        Almr = 0.33,
        ProxyLr = 3e-4,
        ProxyParameters = 8e9,
        TargetParameters = 70e9,
        TokenBudget = 100_000_000_000,
        SeqLength = 8192,
        GlobalBatchSize = 512,
        Sources =
        [
            new ShardSource("/data/zh_web_text_document", BlendRole.Target, 30_000_000_000),
            new ShardSource("/data/zh_books_text_document", BlendRole.Target, 10_000_000_000),
            new ShardSource("/data/en_replay_text_document", BlendRole.Original, 500_000_000_000),
        ],
        Rule = LrScalingRule.Fit([new ProxyOptimum(8e9, 3e-4)]),
    };

    [Fact]
    public void ExponentIsRecoveredFromTwoOrMoreProxySizes()
    {
        // η* = 0.01 · N^-0.25 exactly at three sizes.
        var proxies = new[] { 1e8, 4e8, 1.6e9 }.Select(n => new ProxyOptimum(n, 0.01 * Math.Pow(n, -0.25))).ToArray();
        var rule = LrScalingRule.Fit(proxies);
        Assert.True(rule.Fitted);
        Assert.Equal(0.25, rule.Alpha, 1e-9);
        Assert.Equal(0.01 * Math.Pow(7e10, -0.25), rule.Scale(proxies[0].Lr, 1e8, 7e10), 1e-15);
    }

    [Fact]
    public void OneProxySizeUsesTheStatedDefault()
    {
        var rule = LrScalingRule.Fit([new ProxyOptimum(8e9, 3e-4)]);
        Assert.False(rule.Fitted);
        Assert.Equal(LrScalingRule.DefaultAlpha, rule.Alpha);
        Assert.Contains("one proxy size only", rule.Assumption);
        // 8B → 70B at α = 0.3: 3e-4 × 8.75^-0.3 ≈ 1.56e-4, close to Llama-3 70B's 1.5e-4.
        Assert.Equal(3e-4 * Math.Pow(8.75, -0.3), rule.Scale(3e-4, 8e9, 70e9), 1e-12);
    }

    [Fact]
    public void PlanDerivesItersWarmupAndBlend()
    {
        var plan = TransferPlanner.Plan(Request());
        const long perIter = 8192L * 512;
        Assert.Equal(perIter, plan.TokensPerIter);
        Assert.Equal((100_000_000_000 + perIter - 1) / perIter, plan.TrainIters);
        Assert.Equal(23842, plan.TrainIters);
        Assert.Equal(238, plan.WarmupIters); // 1% of 23842, rounded
        Assert.Equal(plan.Lr * 0.1, plan.MinLr, 1e-15);
        Assert.Equal(1.0, plan.Blend.Sum(b => b.Weight), 1e-12);
        Assert.Equal(0.33, plan.Blend.Where(b => b.Role == BlendRole.Target).Sum(b => b.Weight), 1e-12);
        Assert.Equal(0.33 * 0.75, plan.Blend.Single(b => b.PathPrefix == "/data/zh_web_text_document").Weight, 1e-12);
        Assert.Equal(0.67, plan.Blend.Single(b => b.Role == BlendRole.Original).Weight, 1e-12);
        // 0.33 × 100B = 33B target tokens from 40B available: no repetition note for zh, none for the huge en source.
        Assert.DoesNotContain(plan.Assumptions, a => a.Contains("repeated"));
    }

    [Fact]
    public void A_domain_share_is_blended_and_a_small_source_repeated_is_said()
    {
        var plan = TransferPlanner.Plan(Request() with { DomainShare = 0.1, Sources = [.. Request().Sources, new ShardSource("/data/math_text_document", BlendRole.Domain, 1_000_000_000)] });
        // weight, prefix pairs: target, domain, original; the original language gets 1 − ALMR − domain share.
        Assert.Equal([("/data/zh_web_text_document", 0.2475), ("/data/zh_books_text_document", 0.0825), ("/data/math_text_document", 0.1), ("/data/en_replay_text_document", 0.57)],
            plan.Blend.Select(b => (b.PathPrefix, Math.Round(b.Weight, 12))));
        Assert.Equal(23842, plan.TrainIters);
        // 10% of 100B tokens from a 1B-token math source is 10 epochs: the plan says so.
        Assert.Contains(plan.Assumptions, a => a.Contains("/data/math_text_document is repeated 10"));
    }

    [Fact]
    public void One_proxy_size_gives_the_lr_an_interval_over_the_prior_range_of_alpha()
    {
        var rule = LrScalingRule.Fit([new ProxyOptimum(8e9, 3e-4, new Interval(2e-4, 4.5e-4))]);
        Assert.Equal(new Interval(0.2, 0.5), rule.AlphaInterval);
        var plan = TransferPlanner.Plan(Request() with { Rule = rule, ProxyLrInterval = new Interval(2e-4, 4.5e-4) });
        // The corners by hand: the lowest LR is the proxy's lowest scaled with the steepest α, the highest the other way.
        Assert.Equal(2e-4 * Math.Pow(70.0 / 8, -0.5), plan.LrInterval!.Lo, 1e-15);
        Assert.Equal(4.5e-4 * Math.Pow(70.0 / 8, -0.2), plan.LrInterval.Hi, 1e-15);
        Assert.InRange(plan.Lr, plan.LrInterval.Lo, plan.LrInterval.Hi);
        Assert.Contains(plan.Assumptions, a => a.StartsWith("lr interval [", StringComparison.Ordinal));
        // Without the sweep's interval there is none, and the plan says why.
        var bare = TransferPlanner.Plan(Request() with { Rule = rule });
        Assert.Null(bare.LrInterval);
        Assert.Contains(bare.Assumptions, a => a.Contains("no lr interval: the sweep fit has no LR interval"));
    }

    [Fact]
    public void Two_proxy_sizes_give_alpha_the_standard_error_of_a_slope_through_two_noisy_points()
    {
        // log-LR known to σ = 0.1 at each size (a 95% interval of ×/÷ e^(1.96·0.1)): the slope through two points has
        // variance (σ₁² + σ₂²) / Δ(log N)².
        const double z = 1.959963984540054, sigma = 0.1;
        ProxyOptimum At(double n) { var lr = 0.01 * Math.Pow(n, -0.3); return new(n, lr, new Interval(lr * Math.Exp(-z * sigma), lr * Math.Exp(z * sigma))); }
        var rule = LrScalingRule.Fit([At(1e8), At(8e8)]);
        var se = Math.Sqrt(2 * sigma * sigma) / Math.Log(8);
        Assert.Equal(0.3, rule.Alpha, 1e-12);
        Assert.Equal(0.3 - z * se, rule.AlphaInterval!.Lo, 1e-12);
        Assert.Equal(0.3 + z * se, rule.AlphaInterval.Hi, 1e-12);
        Assert.Contains("95% interval", rule.Assumption);
        // A proxy without an interval leaves α without one.
        Assert.Null(LrScalingRule.Fit([At(1e8), new ProxyOptimum(8e8, 1e-3)]).AlphaInterval);
    }

    [Fact]
    public void The_alpha_interval_covers_the_true_exponent_about_95_percent_of_the_time()
    {
        // 400 simulated studies: three proxy sizes, each optimal LR measured with log-noise σ and reported with its 95% interval.
        const double z = 1.959963984540054, sigma = 0.15, alpha = 0.32;
        var rng = new Random(20261203);
        var covered = 0;
        for (var k = 0; k < 400; k++)
        {
            var proxies = new[] { 5e7, 2e8, 8e8 }.Select(n =>
            {
                var u1 = 1 - rng.NextDouble();
                var noise = sigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * rng.NextDouble());
                var lr = 0.02 * Math.Pow(n, -alpha) * Math.Exp(noise);
                return new ProxyOptimum(n, lr, new Interval(lr * Math.Exp(-z * sigma), lr * Math.Exp(z * sigma)));
            }).ToArray();
            if (LrScalingRule.Fit(proxies).AlphaInterval!.Contains(alpha)) covered++;
        }
        output.WriteLine($"α interval covered {alpha} in {covered}/400 studies");
        // Nominal 95%; the residual term makes it a little conservative with three sizes. Binomial sd at n = 400 is 1.1%.
        Assert.InRange(covered, 368, 400);
    }
}
