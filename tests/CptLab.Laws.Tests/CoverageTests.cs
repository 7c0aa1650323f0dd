using System.Diagnostics;
using CptLab.Laws;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>
/// How often the optimum's 95% intervals cover the true optimum over repeated noisy sweeps with a known truth (the
/// optimum found by dense grid search, independently of the library). In the family the law contains, coverage
/// must be near nominal; outside it, it is far below nominal: a known limitation that the doc comment of
/// <see cref="LawFitter"/> and docs/sweeps.md state with these tests' numbers, pinned here so that the documents
/// change with the code. The larger measurements those numbers come from are the slow tests below.
/// </summary>
public class CoverageTests(ITestOutputHelper output)
{
    [Fact]
    public void In_family_95_percent_intervals_cover_the_true_optimum_in_at_least_90_percent_of_draws()
    {
        // 50 draws (the first 50 of the slow measurement, whose 200 on this grid covered 97.0% and 96.5%): at the nominal
        // 95% a binomial count falls below 45/50 with probability 0.04, and a method covering only 80% reaches 45/50
        // with probability 0.05, so the test tells the two apart. About 30 CPU-seconds, run on every core.
        var c = Measure(Synthetic.InFamily, almrs: 5, lrs: 6, draws: 50, firstSeed: 1000);
        output.WriteLine(c.ToString());
        Assert.True(c.CoveredAlmr >= 45, $"ALMR interval covered the true optimum in {c.CoveredAlmr}/50 draws");
        Assert.True(c.CoveredLr >= 45, $"LR interval covered the true optimum in {c.CoveredLr}/50 draws");
        // And the intervals are informative, not trivially wide: well under the swept ranges (0.9 and 1.5).
        Assert.True(c.MeanAlmrWidth < 0.1, $"mean ALMR interval width {c.MeanAlmrWidth:0.000}");
        Assert.True(c.MeanLog10LrWidth < 0.2, $"mean log10 lr interval width {c.MeanLog10LrWidth:0.000}");
    }

    [Fact]
    public void Out_of_family_the_intervals_widened_by_the_gaussian_process_still_cover()
    {
        // On a smooth surface no family contains, the law's own ALMR interval covers the truth in only about a fifth
        // of draws (its bootstrap resamples the noise, not the misfit). The reported interval is the hull of the law's
        // and the Gaussian-process surface's; measured 19/20 here (ALMR), 20/20 (LR), median width 0.12 on a 0.225
        // grid step. A method covering 95% reaches 17 of 20 with probability 0.98; the law's interval alone (about
        // 20–40%) essentially never does.
        var c = Measure(Synthetic.OutOfFamily, almrs: 5, lrs: 6, draws: 20, firstSeed: 1000);
        output.WriteLine(c.ToString());
        Assert.True(c.CoveredAlmr >= 17, $"ALMR interval covered the true optimum in {c.CoveredAlmr}/20 draws");
        Assert.True(c.CoveredLr >= 17, $"LR interval covered the true optimum in {c.CoveredLr}/20 draws");
        Assert.True(c.MeanAlmrWidth < 0.225, $"mean ALMR interval width {c.MeanAlmrWidth:0.000}: wider than a grid step");
        Assert.True(Math.Abs(c.MeanAlmrError) <= 0.04, $"mean ALMR error {c.MeanAlmrError:0.000}");
    }

    // The measurements behind the documented numbers, 200 draws per grid (100 with every law competing) with the
    // default 200 bootstrap replicates; about 8, 7 and 5 CPU-minutes. Run with
    //   CPTLAB_SLOW_TESTS=1 dotnet test tests/CptLab.Laws.Tests -c Release --filter Category=Slow --logger "console;verbosity=detailed"

    [SlowFact, Trait("Category", "Slow")]
    public void Coverage_in_family()
    {
        foreach (var (almrs, lrs) in new[] { (6, 6), (5, 6), (9, 6) })
        {
            var c = Measure(Synthetic.InFamily, almrs, lrs, draws: 200, firstSeed: 1000);
            output.WriteLine(c.ToString());
            Assert.True(c.AlmrRate >= 0.93 && c.LrRate >= 0.93, $"in family, below 93%: {c}");
        }
        // Half the replicates: the LR interval's coverage drops (docs/sweeps.md quotes this line).
        output.WriteLine(Measure(Synthetic.InFamily, 6, 6, draws: 200, firstSeed: 1000, bootstrap: 100).ToString());
    }

    /// <summary>One test per surface and grid, so each result is printed as it finishes.</summary>
    [SlowTheory, Trait("Category", "Slow")]
    [InlineData("exp/power", 5, 6)]
    [InlineData("saturating", 5, 6)]
    [InlineData("v-shaped", 5, 6)]
    [InlineData("exp/power", 9, 6)]
    [InlineData("saturating", 9, 6)]
    [InlineData("v-shaped", 9, 6)]
    public void Coverage_out_of_family(string surface, int almrs, int lrs)
    {
        var truth = surface switch { "saturating" => Synthetic.Saturating, "v-shaped" => Synthetic.VShaped, _ => Synthetic.OutOfFamily };
        var c = Measure(truth, almrs, lrs, draws: 100, firstSeed: 1000);
        output.WriteLine(c.ToString());
        Assert.True(c.AlmrRate >= 0.9 && c.LrRate >= 0.9, $"out of family, below 90%: {c}");
    }

    /// <summary>What a user gets by default out of family: every law competing by leave-one-out error. Measured, not asserted.</summary>
    [SlowFact, Trait("Category", "Slow")]
    public void Coverage_out_of_family_with_every_law_competing()
    {
        foreach (var (almrs, lrs) in new[] { (5, 6), (9, 6) })
            output.WriteLine(Measure(Synthetic.OutOfFamily, almrs, lrs, draws: 100, firstSeed: 1000, laws: Enum.GetValues<LawKind>()).ToString());
    }

    /// <summary>What one coverage measurement saw.</summary>
    internal sealed record Coverage(string Truth, string Laws, string Chosen, int Almrs, int Lrs, int Draws, int FirstSeed, int Bootstrap,
        int CoveredAlmr, int CoveredLr, double MeanAlmrWidth, double MeanLog10LrWidth, double MeanAlmrError, double MeanLog10LrError,
        TimeSpan Wall, TimeSpan Cpu, double MedianAlmrWidth = double.NaN, double MedianAbsAlmrError = double.NaN)
    {
        public double AlmrRate => (double)CoveredAlmr / Draws;
        public double LrRate => (double)CoveredLr / Draws;

        public override string ToString() =>
            $"{Truth}, {Laws} (chosen: {Chosen}), {Almrs} ALMR × {Lrs} LR, {Draws} draws (seeds {FirstSeed}–{FirstSeed + Draws - 1}), B={Bootstrap}: " +
            $"coverage ALMR {CoveredAlmr}/{Draws} = {AlmrRate:P1}, log10 lr {CoveredLr}/{Draws} = {LrRate:P1}; " +
            $"mean width ALMR {MeanAlmrWidth:0.000}, log10 lr {MeanLog10LrWidth:0.000}; median ALMR width {MedianAlmrWidth:0.000}, median |ALMR error| {MedianAbsAlmrError:0.000}; " +
            $"mean error of the fitted optimum ALMR {MeanAlmrError:0.000}, log10 lr {MeanLog10LrError:0.000}; " +
            $"{Wall.TotalSeconds:0.0} s wall, {Cpu.TotalSeconds:0.0} s CPU";
    }

    /// <summary>
    /// Fits <paramref name="draws"/> sweeps of <paramref name="truth"/> (draw d uses seed firstSeed + d for both the
    /// noise and the bootstrap) on an ALMR × LR grid over r ∈ [0, 0.9], log10 lr ∈ [−4.75, −3.25], one run per cell,
    /// log-normal noise of <paramref name="noise"/> (0.5%), objective 1·target loss + 2·forgetting, and counts the
    /// draws whose 95% intervals contain the true optimum. Draws run in parallel on the machine's cores.
    /// </summary>
    internal static Coverage Measure(Truth truth, int almrs, int lrs, int draws, int firstSeed, double noise = 0.005,
        int bootstrap = 200, IReadOnlyList<LawKind>? laws = null)
    {
        var clock = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var rs = Synthetic.Grid(0, 0.9, almrs);
        var xs = Synthetic.Grid(-4.75, -3.25, lrs);
        var optimum = Synthetic.TrueOptimum(Synthetic.Weighted, 0, 0.9, -4.75, -3.25, n: 301, truth: truth);
        laws ??= [LawKind.ResponseSurfaceQuadratic];
        var found = new OptimumSummary[draws];
        var chosen = new string[draws];
        Parallel.For(0, draws, d =>
        {
            var sweep = Synthetic.Sweep(rs, xs, noise, firstSeed + d, truth: truth);
            var summary = LawFitter.Fit(sweep, new FitOptions
            {
                Objective = Synthetic.Weighted, Laws = laws, CrossValidate = false, Bootstrap = bootstrap, Seed = firstSeed + d,
            }).Summary;
            (found[d], chosen[d]) = (summary.Optimum, summary.Law);
        });
        foreach (var (o, d) in found.Select((o, d) => (o, d)))
            Assert.True(o.LrInterval!.Contains(Math.Pow(10, optimum.X)) == o.Log10LrInterval!.Contains(optimum.X),
                $"seed {firstSeed + d}: the LR interval is not the log10 interval exponentiated");
        return new Coverage(truth.Name, laws.Count == 1 ? LawFamily.Name(laws[0]) : "all laws by leave-one-out",
            string.Join(", ", chosen.GroupBy(l => l).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}")), almrs, lrs, draws, firstSeed, bootstrap,
            found.Count(o => o.AlmrInterval!.Contains(optimum.R)), found.Count(o => o.Log10LrInterval!.Contains(optimum.X)),
            found.Average(o => o.AlmrInterval!.Width), found.Average(o => o.Log10LrInterval!.Width),
            found.Average(o => o.Almr - optimum.R), found.Average(o => o.Log10Lr - optimum.X),
            clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu,
            SurfaceSearch.Quantile(found.Select(o => o.AlmrInterval!.Width).ToArray(), 0.5),
            SurfaceSearch.Quantile(found.Select(o => Math.Abs(o.Almr - optimum.R)).ToArray(), 0.5));
    }
}

/// <summary>A fact that runs only with CPTLAB_SLOW_TESTS=1 (a long measurement, not part of the everyday suite).</summary>
public sealed class SlowFactAttribute : FactAttribute
{
    public SlowFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("CPTLAB_SLOW_TESTS") != "1")
            Skip = "slow measurement: set CPTLAB_SLOW_TESTS=1 and filter Category=Slow to run it";
    }
}

/// <summary>A theory that runs only with CPTLAB_SLOW_TESTS=1.</summary>
public sealed class SlowTheoryAttribute : TheoryAttribute
{
    public SlowTheoryAttribute()
    {
        if (Environment.GetEnvironmentVariable("CPTLAB_SLOW_TESTS") != "1")
            Skip = "slow measurement: set CPTLAB_SLOW_TESTS=1 and filter Category=Slow to run it";
    }
}
