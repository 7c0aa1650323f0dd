using System.Globalization;
using CptLab.Core;
using CptLab.Laws.Registry;
using CptLab.Sweep;
using Xunit.Abstractions;

namespace CptLab.Sweep.Tests;

/// <summary>A sweep folder read as a law table: each finished run's cell and losses, checked against the known surface.</summary>
[Collection(SweepCollection.Name)]
public class SweepLawTableTests(SweepFixture fx, ITestOutputHelper output)
{
    [Fact]
    public void Finished_runs_become_rows_with_the_surface_losses_and_failed_runs_are_left_out()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(3, 3)));
        var dir = Path.Combine(fx.NewDir("sweepdir-"), "sweep");
        var exec = new FakeExecutor(noise: 0);
        var failed = SweepRunner.RunId(spec.Almrs[1], spec.Lrs[2], 0);
        exec.Script[failed] = new Queue<ExecKind>([ExecKind.Failed]);
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec });

        var (table, leftOut) = SweepLawTable.Read(dir);
        Assert.Equal(8, table.Rows.Count);
        Assert.Equal($"run {failed}: failed (error: scripted failure)", Assert.Single(leftOut));
        foreach (var c in new[] { "almr", "lr", "log10_lr", "tokens", "seed", "loss", "target_loss", "original_loss", "loss_zh", "loss_en",
                                  "forgetting", "objective", "source_loss_zh-web", "source_bpb_en-web" })
            Assert.True(table.Has(c), $"no column {c}; columns: {string.Join(", ", table.Columns)}");

        var (almr, lr, x) = (table.Numbers("almr", ""), table.Numbers("lr", ""), table.Numbers("log10_lr", ""));
        var (zh, en, loss) = (table.Numbers("loss_zh", ""), table.Numbers("loss_en", ""), table.Numbers("loss", ""));
        var (forgetting, objective) = (table.Numbers("forgetting", ""), table.Numbers("objective", ""));
        var tokens = table.Numbers("tokens", "");
        using var store = SweepStore.Open(dir, create: false);
        for (var i = 0; i < table.Rows.Count; i++)
        {
            var id = SweepRunner.RunId(almr[i], lr[i], 0);
            Assert.Equal($"run {id}", table.Rows[i].Where);
            Assert.NotEqual(failed, id);
            Assert.Equal(Math.Log10(lr[i]), x[i], 12);
            // The fake run's final loss is the surface's, exactly (noise 0): the reference is computed here from the surface.
            Assert.Equal(Math.Exp(Surface.LogZh(almr[i], x[i])), zh[i], 12);
            Assert.Equal(Math.Exp(Surface.LogEn(almr[i], x[i])), en[i], 12);
            Assert.Equal(zh[i], loss[i]); // the target language is zh
            Assert.Equal(en[i] - Surface.EnBase, forgetting[i], 12);
            Assert.Equal(zh[i] + 2 * (en[i] - Surface.EnBase), objective[i], 12); // the spec's weighted objective, 1·target + 2·forgetting
            Assert.Equal(store.Run(id)!.Tokens!.Value, (long)tokens[i]);
        }
        // The language's loss is the token-weighted mean of its one source's: equal up to rounding.
        var source = table.Numbers("source_loss_zh-web", "");
        for (var i = 0; i < zh.Length; i++) Assert.Equal(zh[i], source[i], 12);
    }

    /// <summary>`cptlab laws fit --data SWEEP_DIR`: the sweep's finished runs are the points; the left-out run is named.</summary>
    [Fact]
    public void Laws_fit_reads_a_sweep_folder()
    {
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(4, 2)));
        var dir = Path.Combine(fx.NewDir("sweepdir-"), "sweep");
        var exec = new FakeExecutor(noise: 0);
        var failed = SweepRunner.RunId(spec.Almrs[0], spec.Lrs[1], 0);
        exec.Script[failed] = new Queue<ExecKind>([ExecKind.Failed]);
        SweepRunner.Run(spec, dir, new RunnerOptions { Executor = exec });
        var json = Path.Combine(fx.NewDir("fit-"), "fit.json");

        var (code, stdout, stderr) = CliHost.Run(["laws", "fit", "--data", dir, "--law", "data_mixing_law", "--input", "r=almr", "--out", json]);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        Assert.Contains("7 points; inputs r=almr; loss column 'loss'", stdout);
        Assert.Contains($"left out: run {failed}: failed", stdout);
        var fit = LawFitJson.Read(json);
        Assert.Equal(7, fit.Points);
        Assert.Equal(Path.GetFullPath(dir), fit.Source);

        // One LR of the sweep: its four ALMRs (the failed run is at the other LR).
        var lr0 = spec.Lrs[0].ToString("R", CultureInfo.InvariantCulture);
        (code, stdout, stderr) = CliHost.Run(["laws", "fit", "--data", dir, "--law", "data_mixing_law", "--input", "r=almr", "--where", "lr=" + lr0]);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        Assert.Contains($"(rows with lr = {lr0}), 4 points", stdout);

        // A column the table lacks is named with the ones it has.
        (code, _, stderr) = CliHost.Run(["laws", "fit", "--data", dir, "--law", "data_mixing_law", "--input", "r=share"]);
        Assert.Equal(1, code);
        Assert.Contains("no column 'share' for input r", stderr);
        Assert.Contains("almr, lr, log10_lr, tokens, seed, loss", stderr);
    }
}
