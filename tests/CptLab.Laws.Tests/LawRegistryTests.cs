using CptLab.Laws.Registry;

namespace CptLab.Laws.Tests;

public class LawRegistryTests
{
    public static TheoryData<string> Fittable() => new(LawRegistry.All.Where(l => l.Fittable).Select(l => l.Name));

    /// <summary>Each analytic gradient against central differences computed here (step 1e-6 relative), at the entry's example point.</summary>
    [Theory]
    [MemberData(nameof(Fittable))]
    public void Analytic_gradient_matches_central_differences(string name)
    {
        var law = LawRegistry.Get(name);
        Assert.NotNull(law.Gradient);
        var theta = law.Example!.ToArray();
        var x = law.ExampleInput!.ToArray();
        var g = new double[theta.Length];
        law.Gradient!(x, theta, g);
        for (var j = 0; j < theta.Length; j++)
        {
            var h = 1e-6 * Math.Max(Math.Abs(theta[j]), 1e-2);
            var (up, down) = ((double[])theta.Clone(), (double[])theta.Clone());
            up[j] += h;
            down[j] -= h;
            var numeric = (law.Value!(x, up) - law.Value(x, down)) / (2 * h);
            Assert.True(Math.Abs(g[j] - numeric) <= 1e-6 * Math.Max(1, Math.Abs(numeric)), $"{name} ∂/∂{law.Parameters[j].Name}: analytic {g[j]}, numeric {numeric}");
        }
    }

    [Fact]
    public void Registry_lists_every_family_and_returns_the_sweep_families()
    {
        foreach (var n in new[] { "chinchilla", "chinchilla_lse", "dcpt", "data_mixing_law", "lr_power", "lr_quadratic", "token_law",
                                  "response_surface_linear", "response_surface_quadratic", "mixing_law" })
            Assert.NotNull(LawRegistry.Find(n));
        foreach (var kind in Enum.GetValues<LawKind>())
            Assert.Equal(kind, LawRegistry.SweepFamily(LawFamily.Name(kind)).Kind);
        Assert.False(LawRegistry.Get("mixing_law").Fittable);
        var e = Assert.Throws<CptLab.Core.CptLabException>(() => LawRegistry.Get("nope"));
        Assert.Contains("chinchilla", e.Message);
    }

    /// <summary>
    /// Ye et al.'s continual pre-training relation (their notebook continue_training.ipynb): Pile loss − c =
    /// exp(k·r + b), (k, b) = (−3.7397, −1.6938), r the Pile proportion, critical proportion 0.2862 where it meets
    /// the loss before continual pre-training. c = 2.8103408 and that loss 2.8733676 are what the notebook's own
    /// procedure gives on its data (reducible 0.0630268); the reference r* comes from the generating law in closed form.
    /// Their design: Pile proportions 0.125, 0.25, 0.375, 0.5.
    /// </summary>
    [Fact]
    public void Data_mixing_law_reproduces_the_critical_proportion_noise_free()
    {
        const double c = 2.810340812703942, k = -3.7397, b = -1.6938, original = 2.8733675921404798;
        var truth = (Math.Log(original - c) - b) / k;
        Assert.Equal(0.2862, truth, 1e-4); // the published critical proportion
        double[] r = [0.125, 0.25, 0.375, 0.5];
        var table = LawTable.FromColumns("Ye et al. CPT case", new Dictionary<string, double[]>
        {
            ["r"] = r, ["loss"] = r.Select(v => c + Math.Exp(k * v + b)).ToArray(),
        });
        var fit = LawTableFitter.Fit(table, LawRegistry.Get("data_mixing_law"), new LawFitOptions { HuberDelta = 1e-3 });
        var critical = fit.InputAt("r", original, 0, 1);
        Assert.NotNull(critical);
        Assert.Equal(truth, critical!.Value, 1e-6);
        Assert.Equal(k, fit["t"], 1e-4);
    }

    /// <summary>
    /// Noise-free Chinchilla points fitted with residuals on L (--loss linear) and on log L: both recover Epoch AI's
    /// parameters; the linear fit's residual RMS is in units of L, so it differs from the log fit's by about the loss level.
    /// </summary>
    [Theory]
    [InlineData(LossSpace.Log)]
    [InlineData(LossSpace.Linear)]
    public void Both_loss_spaces_recover_the_generating_law(LossSpace space)
    {
        var fit = LawTableFitter.Fit(LawFixtures.Chinchilla(0, 1), LawRegistry.Get("chinchilla"), new LawFitOptions { HuberDelta = 1e-3, Loss = space });
        Assert.Equal(space == LossSpace.Log ? "log" : "linear", fit.LossSpace);
        for (var j = 0; j < LawFixtures.Epoch.Length; j++)
            Assert.True(Math.Abs(fit.Parameters[j].Value / LawFixtures.Epoch[j] - 1) < 1e-4, $"{space} {fit.Parameters[j].Name}: {fit.Parameters[j].Value} vs {LawFixtures.Epoch[j]}");
        Assert.Equal(["levenberg_marquardt", "irls_huber", "bfgs"], fit.Stages.Select(s => s.Name));
        Assert.True(fit.Stages[0].Converged && fit.Stages[1].Converged);
    }

    /// <summary>fit.json written and read back: the same numbers, and the law found again so the fit predicts.</summary>
    [Fact]
    public void Fit_json_round_trips_and_predicts()
    {
        var fit = LawTableFitter.Fit(LawFixtures.Chinchilla(0.007, 2), LawRegistry.Get("chinchilla"), new LawFitOptions { Bootstrap = 8, Seed = 3 });
        var path = Path.Combine(Directory.CreateTempSubdirectory("cptlab-lawfit-").FullName, "fit.json");
        LawFitJson.Write(path, fit);
        var back = LawFitJson.Read(path);
        Assert.Equal(fit.Parameters, back.Parameters);
        Assert.Equal(fit.Stages, back.Stages);
        Assert.Equal(fit.HuberDelta, back.HuberDelta);
        Assert.Equal(fit.Bootstrap, back.Bootstrap);
        Assert.Equal(fit.Points, back.Points);
        Assert.Equal(fit.Predict(1e9, 2e10), back.Predict(1e9, 2e10));
        Assert.All(back.Parameters, p => Assert.True(p.Lower <= p.Value && p.Value <= p.Upper, $"{p.Name} {p.Value} outside [{p.Lower}, {p.Upper}]"));
        File.WriteAllText(path, "{\"law\": ");
        Assert.Contains("fit.json", Assert.Throws<CptLab.Core.CorruptFileException>(() => LawFitJson.Read(path)).Message);
    }

    [Fact]
    public void Catalog_lists_every_law_with_inputs_and_bounds()
    {
        var text = LawCatalog.Format(LawRegistry.All);
        foreach (var law in LawRegistry.All)
        {
            Assert.Contains(law.Name + (law.Fittable ? "\n" : "  (sweep family"), text);
            Assert.Contains(law.Formula, text);
        }
        Assert.Matches(@"alpha\s+\[0, 5\]\s+model-size exponent", text);
        Assert.Matches(@"epsilon\s+\[1e-06, 1\]", text);
        Assert.Matches(@"\n    a\s+\(-∞, ∞\)\s+log A", text);
        Assert.Contains("d (training tokens D, > 0)", text);
    }

    [Fact]
    public void Where_selects_rows_by_number_or_text_and_names_the_values_when_none_match()
    {
        var table = new LawTable("t.csv", ["lr", "name", "loss"],
        [
            new LawTableRow("line 2", ["0.0001", "a", "3.0"]),
            new LawTableRow("line 3", ["3e-4", "b", "2.9"]),
            new LawTableRow("line 4", ["1E-04", "b", "2.8"]),
        ]);
        var one = table.Where("lr", "1e-4");
        Assert.Equal(["line 2", "line 4"], one.Rows.Select(r => r.Where));
        Assert.Equal("t.csv (rows with lr = 1e-4)", one.Source);
        Assert.Equal(["line 4"], one.Where("name", "b").Rows.Select(r => r.Where));
        var none = Assert.Throws<CptLab.Core.CptLabException>(() => table.Where("lr", "2e-4"));
        Assert.Equal("t.csv: no row has lr = 2e-4; the column's values are: 0.0001, 3e-4, 1E-04", none.Message);
        Assert.Contains("no column 'almr'", Assert.Throws<CptLab.Core.CptLabException>(() => table.Where("almr", "0")).Message);
    }
}
