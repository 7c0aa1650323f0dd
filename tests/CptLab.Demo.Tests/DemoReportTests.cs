using CptLab.Demo;
using CptLab.Laws;

namespace CptLab.Demo.Tests;

/// <summary>The report's reading of the ALMR interval against the grid, on hand-made intervals (no training).</summary>
public class DemoReportTests
{
    static readonly DemoScale Grid = DemoScale.Default with { Almrs = [0.1, 0.3, 0.5, 0.7] }; // step 0.2

    [Fact]
    public void An_interval_over_the_whole_grid_is_unresolved_with_the_runs_it_would_take()
    {
        var text = DemoReport.AlmrResolution(new Interval(0.1, 0.7), Grid, (16, 16, null));
        Assert.Contains("0.6 wide, 3 grid steps of 0.2", text);
        Assert.Contains("could not resolve the optimum", text);
        Assert.Contains("about 144 runs", text); // 16 × (0.6 / 0.2)²
        Assert.Contains("all 16 cells", text);
    }

    [Fact]
    public void An_interval_at_one_edge_says_the_optimum_may_lie_beyond()
    {
        var text = DemoReport.AlmrResolution(new Interval(0.62, 0.7), Grid, (12, 16, "fewer than 5% of the draws improve"));
        Assert.Contains("edge of the grid (ALMR 0.7)", text);
        Assert.Contains("12 runs of the 16-cell grid (the adaptive design stopped: fewer than 5% of the draws improve)", text);
        Assert.DoesNotContain("resolved the optimum to within", text);
    }

    [Fact]
    public void An_inner_interval_is_read_in_grid_steps()
    {
        Assert.Contains("resolved the optimum to within two grid steps", DemoReport.AlmrResolution(new Interval(0.25, 0.55), Grid, (16, 16, null)));
        Assert.Contains("wider than two grid steps", DemoReport.AlmrResolution(new Interval(0.15, 0.65), Grid, (16, 16, null)));
        Assert.Contains("no interval", DemoReport.AlmrResolution(null, Grid, (16, 16, null)));
    }

    [Fact]
    public void Seed_comparison_follows_its_rule()
    {
        ModelScore M(string name, int seed, double objective) => new(name, 0.5, 1e-3, objective, 0, 0, 0, 0, objective, "", "") { Seed = seed };
        var beat = SeedComparison.Of([M("chosen", 1, 7.0), M("naive", 1, 7.3), M("chosen", 2, 7.05), M("naive", 2, 7.32)]);
        Assert.Equal(SeedComparison.Beat, beat.Verdict);
        Assert.Equal(0.285, beat.MeanGain, 12);
        Assert.Equal(0.05, beat.Spread, 12);
        // Positive on both seeds but smaller than the spread: within noise.
        Assert.Equal(SeedComparison.WithinNoise, SeedComparison.Of([M("chosen", 1, 7.0), M("naive", 1, 7.05), M("chosen", 2, 7.2), M("naive", 2, 7.22)]).Verdict);
        Assert.Equal(SeedComparison.Lost, SeedComparison.Of([M("chosen", 1, 7.3), M("naive", 1, 7.0), M("chosen", 2, 7.31), M("naive", 2, 7.02)]).Verdict);
        Assert.Equal(SeedComparison.OneSeed, SeedComparison.Of([M("chosen", 1, 7.0), M("naive", 1, 7.3)]).Verdict);
    }
}
