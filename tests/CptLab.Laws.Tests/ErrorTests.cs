using CptLab.Core;
using CptLab.Laws;

namespace CptLab.Laws.Tests;

/// <summary>Each way a sweep can be unusable gives a CptLabException whose message says what is missing.</summary>
public class ErrorTests
{
    static readonly FitOptions Options = new() { Objective = Synthetic.Weighted, Bootstrap = 0 };

    static SweepPoint Point(double r, double lr, double zh = 2.5, double en = 2.1, string? error = null) =>
        new(r, lr, 0, new Dictionary<string, double> { ["zh"] = zh, ["en"] = en }, [], error);

    [Fact]
    public void TooFewPointsForAnyLaw()
    {
        // 3 ALMR × 3 LR with 3 runs failed leaves 6: the smallest law needs 7 (6 parameters plus one to leave out).
        var grid = Synthetic.Sweep([0.2, 0.5, 0.8], [-4.5, -4.0, -3.5], noise: 0.01, seed: 1);
        var sweep = Synthetic.Wrap(grid.Points.Select((p, i) => i % 3 == i / 3 ? p with { Error = "node lost" } : p).ToList());
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options));
        Assert.Contains("too few points for any law", e.Message);
        Assert.Contains("6 successful runs", e.Message);
        Assert.Contains("needs at least 7 successful runs", e.Message);
        Assert.Contains("needs at least 4 distinct ALMR values at every learning rate", e.Message);
    }

    [Fact]
    public void SingleLearningRateWithTooFewAlmrs()
    {
        // One LR answers the ALMR question (DesignTests); with 3 ALMR values the mixing law has nothing to leave out.
        var sweep = Synthetic.Wrap([Point(0.1, 3e-4), Point(0.3, 3e-4), Point(0.5, 3e-4)]);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options));
        Assert.Contains("one learning rate (3e-4) and 3 ALMR values", e.Message);
        Assert.Contains("at least 4 distinct ALMR values", e.Message);
    }

    [Fact]
    public void OneCell()
    {
        var sweep = Synthetic.Wrap([Point(0.3, 3e-4), Point(0.3, 3e-4) with { Seed = 1 }]);
        Assert.Contains("one cell (ALMR 0.3, lr 3e-4)", Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options)).Message);
    }

    [Fact]
    public void TwoLearningRates()
    {
        var sweep = Synthetic.Wrap([Point(0.1, 1e-4), Point(0.3, 1e-4), Point(0.1, 3e-4), Point(0.3, 3e-4)]);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options));
        Assert.Contains("only 2 distinct learning rates", e.Message);
    }

    [Fact]
    public void SingleAlmrWithTooFewLearningRates()
    {
        // One ALMR answers the LR question (DesignTests); with 2 LRs a quadratic in log10 lr cannot be fitted.
        var sweep = Synthetic.Wrap([Point(0.3, 1e-4), Point(0.3, 3e-4)]);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options));
        Assert.Contains("one ALMR (0.3) and 2 learning rates", e.Message);
        Assert.Contains("at least 3 distinct LRs", e.Message);
    }

    [Fact]
    public void TwoAlmrsAreRefusedAndThreeAreEnough()
    {
        // The boundary: 2 ALMR × 4 LR (8 runs, more than the 7 the linear law needs) is refused for want of a third
        // ALMR value; adding it, 3 × 3 runs fit with the linear response surface.
        var two = Synthetic.Sweep([0.2, 0.8], [-4.5, -4.0, -3.5, -3.0], noise: 0.002, seed: 1);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(two, Options));
        Assert.Contains("only 2 distinct ALMR values (0.2, 0.8)", e.Message);
        Assert.Contains("need at least 3", e.Message);

        var three = Synthetic.Sweep([0.2, 0.5, 0.8], [-4.5, -4.0, -3.5], noise: 0.002, seed: 1);
        var fit = LawFitter.Fit(three, Options);
        Assert.Equal("response_surface_linear", fit.Summary.Law);
        Assert.Equal(9, fit.Summary.Runs);
    }

    [Fact]
    public void AllRunsFailed()
    {
        var sweep = Synthetic.Wrap([Point(0.1, 1e-4, error: "CUDA out of memory"), Point(0.3, 3e-4, error: "killed")]);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options));
        Assert.Contains("all 2 runs failed", e.Message);
        Assert.Contains("CUDA out of memory", e.Message);
    }

    [Fact]
    public void NoRunsAtAll()
    {
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(Synthetic.Wrap([]), Options));
        Assert.Contains("no runs", e.Message);
    }

    [Fact]
    public void NaNLossNamesTheRunAndTheFix()
    {
        var sweep = Synthetic.Sweep([0.1, 0.4, 0.7], [-4.5, -4.0, -3.5], noise: 0.01, seed: 1);
        var points = sweep.Points.ToList();
        points[4] = points[4] with { FinalLoss = new Dictionary<string, double> { ["zh"] = double.NaN, ["en"] = 2.1 } };
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(Synthetic.Wrap(points), Options));
        Assert.Contains("ALMR=0.4, lr=1e-4", e.Message);
        Assert.Contains("'zh' validation loss is NaN", e.Message);
        Assert.Contains("recorded as failed", e.Message);

        // Marked as failed, the same run is left out and the fit goes ahead.
        points[4] = points[4] with { Error = "diverged" };
        var fit = LawFitter.Fit(Synthetic.Wrap(points), Options);
        Assert.Equal(1, fit.Summary.FailedRuns);
        Assert.Equal(8, fit.Summary.Runs);
    }

    [Fact]
    public void MissingLanguageAndMissingBase()
    {
        var noEn = new SweepPoint(0.1, 1e-4, 0, new Dictionary<string, double> { ["zh"] = 2.5, ["code"] = 1.1 }, []);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(Synthetic.Wrap([noEn]), Options));
        Assert.Contains("no final validation loss for 'en' (it has: zh, code)", e.Message);

        var sweep = Synthetic.Sweep([0.1, 0.4, 0.7], [-4.5, -4.0, -3.5], noise: 0.01, seed: 1) with { BaseLoss = new Dictionary<string, double>() };
        var b = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options));
        Assert.Contains("base model's 'en' validation loss is missing", b.Message);
        // Target loss alone does not need the base model.
        Assert.NotNull(LawFitter.Fit(sweep, Options with { Objective = Objective.TargetLoss() }));
    }

    [Fact]
    public void ConstraintThatNothingSatisfies()
    {
        var sweep = Synthetic.Sweep(Synthetic.Grid(0.2, 0.9, 4), [-4.5, -4.0, -3.5], noise: 0.002, seed: 1);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options with { Objective = Objective.Constrained(0.0001) }));
        Assert.Contains("no (ALMR, LR) in the swept range satisfies", e.Message);
        Assert.Contains("least predicted forgetting", e.Message);
    }

    [Fact]
    public void ExtrapolationWithoutEnoughCurvePoints()
    {
        var sweep = Synthetic.Sweep([0.1, 0.4, 0.7], [-4.5, -4.0, -3.5], noise: 0.01, seed: 1);
        var e = Assert.Throws<CptLabException>(() => LawFitter.Fit(sweep, Options with { ExtrapolateToTokens = 1_000_000_000 }));
        Assert.Contains("needs at least 4 validation points", e.Message);
        Assert.Contains("language 'zh'", e.Message);
    }

    [Fact]
    public void PlanWithoutASourceForAShareOfTheBlend()
    {
        var e = Assert.Throws<CptLabException>(() => TransferPlanner.Plan(TransferTests.Request() with
        {
            Sources = [new ShardSource("/data/zh_text_document", BlendRole.Target, 10_000_000_000)],
        }));
        Assert.Contains("no original source was given", e.Message);
    }
}
