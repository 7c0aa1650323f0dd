using CptLab.Laws;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>The 95% interval of the optimum covers the true optimum in at least 90% of repeated noisy draws.</summary>
public class CoverageTests(ITestOutputHelper output)
{
    [Fact]
    public void NinetyFivePercentIntervalCoversTheTrueOptimum()
    {
        const int draws = 60;
        var rs = Synthetic.Grid(0, 0.9, 6);
        var xs = Synthetic.Grid(-4.75, -3.25, 6);
        var truth = Synthetic.TrueOptimum(Synthetic.Weighted, 0, 0.9, -4.75, -3.25);
        int coverR = 0, coverX = 0, coverLr = 0;
        var widthR = new List<double>();
        for (var d = 0; d < draws; d++)
        {
            var sweep = Synthetic.Sweep(rs, xs, noise: 0.01, seed: 1000 + d);
            var o = LawFitter.Fit(sweep, new FitOptions
            {
                Objective = Synthetic.Weighted, Laws = [LawKind.ResponseSurfaceQuadratic], CrossValidate = false, Bootstrap = 100, Seed = d,
            }).Summary.Optimum;
            if (o.AlmrInterval!.Contains(truth.R)) coverR++;
            if (o.Log10LrInterval!.Contains(truth.X)) coverX++;
            if (o.LrInterval!.Contains(Math.Pow(10, truth.X))) coverLr++;
            widthR.Add(o.AlmrInterval.Width);
        }
        output.WriteLine($"true optimum r*={truth.R:0.0000} log10 lr*={truth.X:0.0000}");
        output.WriteLine($"coverage: ALMR {coverR}/{draws}, log10 lr {coverX}/{draws}; mean ALMR interval width {widthR.Average():0.0000}");
        Assert.Equal(coverX, coverLr); // the LR interval is the log interval exponentiated
        Assert.True(coverR >= 0.9 * draws, $"ALMR interval covered the true optimum in {coverR}/{draws} draws");
        Assert.True(coverX >= 0.9 * draws, $"LR interval covered the true optimum in {coverX}/{draws} draws");
        // And the intervals are informative, not trivially wide: well under the swept ALMR range.
        Assert.True(widthR.Average() < 0.15, $"mean ALMR interval width {widthR.Average():0.000}");
    }
}
