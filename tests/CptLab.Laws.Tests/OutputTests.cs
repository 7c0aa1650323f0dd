using System.Text.Json;
using CptLab.Core;
using CptLab.Laws;

namespace CptLab.Laws.Tests;

/// <summary>fit.json round-trips; the report section carries the numbers. (The plots are tested in CptLab.Reports.Tests.)</summary>
public class OutputTests
{
    static SweepResults SweepWithCurves()
    {
        var rng = new Random(4);
        var points = new List<SweepPoint>();
        foreach (var r in Synthetic.Grid(0, 0.9, 5))
        foreach (var x in Synthetic.Grid(-4.75, -3.25, 5))
        {
            var final = Synthetic.Run(r, x, 0, rng, 0.005);
            var curve = Enumerable.Range(1, 6).Select(i => new CurvePoint(i * 20_000_000L, final.FinalLoss.ToDictionary(kv => kv.Key, kv => kv.Value + 0.8 / i))).ToList();
            points.Add(final with { Curve = curve });
        }
        points.Add(new SweepPoint(0.5, 1e-3, 0, new Dictionary<string, double>(), [], "diverged"));
        return Synthetic.Wrap(points);
    }

    [Fact]
    public void FitJsonRoundTrips()
    {
        var sweep = SweepWithCurves();
        var fit = LawFitter.Fit(sweep, new FitOptions { Objective = Objective.Constrained(0.2), Bootstrap = 20 });
        var dir = Directory.CreateTempSubdirectory("cptlab-laws-");
        try
        {
            var path = Path.Combine(dir.FullName, "fit.json");
            FitJson.Write(path, fit.Summary);
            using (var doc = JsonDocument.Parse(File.ReadAllText(path)))
            {
                var root = doc.RootElement;
                Assert.Equal(fit.Summary.Law, root.GetProperty("law").GetString());
                Assert.Equal("constrained", root.GetProperty("objective").GetProperty("kind").GetString());
                Assert.Equal(fit.Summary.Optimum.Almr, root.GetProperty("optimum").GetProperty("almr").GetDouble());
                Assert.True(root.GetProperty("optimum").GetProperty("almr_interval").GetProperty("lo").GetDouble() <= fit.Summary.Optimum.Almr);
                Assert.Equal(fit.Summary.CvError!.Value, root.GetProperty("cv_error").GetDouble());
                Assert.Equal(1, root.GetProperty("failed_runs").GetInt32());
                var gp = root.GetProperty("optimum").GetProperty("nonparametric").GetProperty("languages").GetProperty("zh");
                Assert.Equal("matern52", gp.GetProperty("kernel").GetString());
            }
            var back = FitJson.Read(path);
            Assert.Equal(FitJson.Serialize(fit.Summary), FitJson.Serialize(back));
            Assert.Equal(0.2, ((ConstrainedObjective)back.Objective).MaxForgetting);
            Assert.Equal(fit.Summary.Parameters["zh"].Values.Keys, back.Parameters["zh"].Values.Keys);

            File.WriteAllText(path, "{\"law\": 3");
            Assert.Throws<CorruptFileException>(() => FitJson.Read(path));
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void ReportSectionCarriesTheNumbers()
    {
        var sweep = SweepWithCurves();
        var fit = LawFitter.Fit(sweep, new FitOptions { Objective = Objective.Constrained(0.2), Bootstrap = 20 });
        var plan = TransferPlanner.Plan(TransferTests.Request() with { Almr = Math.Round(fit.Summary.Optimum.Almr, 3), ProxyLr = fit.Summary.Optimum.Lr });
        var md = LawReport.Section(fit.Summary, ["plots/objective_heatmap.png", "plots/objective_heatmap.svg"], plan);
        var ci = System.Globalization.CultureInfo.InvariantCulture;
        Assert.Contains("## Optimal ALMR and learning rate", md);
        Assert.Contains($"| ALMR r* | {fit.Summary.Optimum.Almr.ToString("0.####", ci)} |", md);
        Assert.Contains("critical ALMR (forgetting ≤ 0.2)", md);
        Assert.Contains("**chosen**", md);
        Assert.Contains("the Gaussian process (matern52 kernel)", md);
        Assert.Contains("1 failed and left out", md);
        Assert.Contains("![objective heatmap](plots/objective_heatmap.png)", md);
        Assert.DoesNotContain("objective_heatmap.svg", md);
        Assert.Contains("## Full-size run plan", md);
        Assert.Contains("`/data/en_replay_text_document` (original)", md);
    }
}
