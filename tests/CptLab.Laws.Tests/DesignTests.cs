using CptLab.Laws;
using Xunit.Abstractions;

namespace CptLab.Laws.Tests;

/// <summary>
/// The designs people run besides the grid: ALMR values at one LR (Data Mixing Laws' design, or an LR fixed by an
/// earlier decision) answer the ALMR question with the LR taken as given; LRs at one ALMR answer the LR question.
/// The truth is the synthetic surface, its optimum along the swept axis found by brute force.
/// </summary>
public class DesignTests(ITestOutputHelper output)
{
    const double Noise = 0.005;

    [Fact]
    public void One_learning_rate_answers_the_almr_question_at_that_lr()
    {
        const double x = -4.0;
        var truth = Synthetic.TrueOptimum(Synthetic.Weighted, 0, 0.9, x, x, n: 2001);
        var covered = 0;
        var errors = new List<double>();
        for (var seed = 0; seed < 10; seed++)
        {
            var sweep = Synthetic.Sweep(Synthetic.Grid(0, 0.9, 7), [x], Noise, seed: 500 + seed);
            var fit = LawFitter.Fit(sweep, new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 100, NonparametricDraws = 200, Seed = seed }).Summary;
            Assert.Equal("single_lr", fit.Design);
            Assert.Contains("taken as given", fit.DesignNote);
            Assert.Equal("mixing_law", fit.Law);
            Assert.Equal(x, fit.Optimum.Log10Lr, 12);
            Assert.Null(fit.Optimum.LrInterval);
            Assert.Null(fit.Optimum.Nonparametric?.Log10LrInterval);
            var iv = fit.Optimum.AlmrInterval!;
            output.WriteLine($"seed {seed}: r* {fit.Optimum.Almr:0.000} [{iv.Lo:0.000}, {iv.Hi:0.000}] truth {truth.R:0.000}");
            if (iv.Contains(truth.R)) covered++;
            errors.Add(Math.Abs(fit.Optimum.Almr - truth.R));
        }
        errors.Sort();
        Assert.True(covered >= 8, $"the ALMR interval covered the truth at the fixed LR in {covered}/10 sweeps");
        Assert.True(errors[5] <= 0.05, $"median |ALMR error| {errors[5]:0.000}");
        // The report says what was taken as given, and shows no η*(r) table.
        var md = LawReport.Section(LawFitter.Fit(Synthetic.Sweep(Synthetic.Grid(0, 0.9, 7), [x], Noise, seed: 500), new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 20 }).Summary);
        Assert.Contains("Design: **single_lr** — one learning rate was swept (1e-4): the ALMR is chosen at that LR, taken as given", md);
        Assert.DoesNotContain("η*(r)", md);
    }

    [Fact]
    public void One_almr_answers_the_lr_question_at_that_almr()
    {
        const double r = 0.3;
        var truth = Synthetic.TrueOptimum(Synthetic.Weighted, r, r, -5, -3, n: 2001);
        var covered = 0;
        for (var seed = 0; seed < 10; seed++)
        {
            var sweep = Synthetic.Sweep([r], Synthetic.Grid(-5, -3, 6), Noise, seed: 700 + seed);
            var fit = LawFitter.Fit(sweep, new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 100, NonparametricDraws = 200, Seed = seed }).Summary;
            Assert.Equal("single_almr", fit.Design);
            Assert.Equal("response_surface_constant", fit.Law);
            Assert.Equal(r, fit.Optimum.Almr, 12);
            Assert.Null(fit.Optimum.AlmrInterval);
            var iv = fit.Optimum.Log10LrInterval!;
            output.WriteLine($"seed {seed}: x* {fit.Optimum.Log10Lr:0.000} [{iv.Lo:0.000}, {iv.Hi:0.000}] truth {truth.X:0.000}");
            Assert.InRange(fit.Optimum.Log10Lr, truth.X - 0.15, truth.X + 0.15);
            if (iv.Contains(truth.X)) covered++;
        }
        Assert.True(covered >= 8, $"the LR interval covered the truth at the fixed ALMR in {covered}/10 sweeps");
    }

    [Fact]
    public void On_a_grid_the_one_almr_family_never_competes()
    {
        var fit = LawFitter.Fit(Synthetic.Sweep(Synthetic.Grid(0, 0.9, 4), Synthetic.Grid(-5, -3, 4), Noise, seed: 3), new FitOptions { Objective = Synthetic.Weighted, Bootstrap = 0 }).Summary;
        Assert.Equal("grid", fit.Design);
        Assert.Null(fit.DesignNote);
        Assert.Contains(fit.Candidates, c => c.Law == "response_surface_constant" && c.Skipped!.Contains("one ALMR"));
    }
}
