using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using CptLab.Core;
using CptLab.Demo;
using CptLab.Laws;
using CptLab.Sweep;
using CptLab.Training;

namespace CptLab.Demo.Tests;

/// <summary>
/// The integration test of `cptlab demo --quick`: the whole method on the real corpora, then the report's
/// numbers checked against the run's own records — the sweep database, fit.json, plan.json, stages.json —
/// and the evaluation checked by scoring one model again.
/// </summary>
public class QuickDemoTests
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    sealed class SilentUi : IDemoUi
    {
        public readonly List<string> Lines = [];
        public void Stage(string name, string description) => Lines.Add($"stage {name}");
        public void StageDone(string name, double seconds, bool reused) => Lines.Add($"done {name} {reused}");
        public void Line(string text) => Lines.Add(text);
        public T Train<T>(string label, long totalSteps, Func<IProgress<TrainProgress>, T> work) => work(new Progress<TrainProgress>());
    }

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "fetch-corpora.sh"))) return dir.FullName;
        throw new InvalidOperationException("not inside a CptLab checkout");
    }

    [Fact]
    public void Quick_demo_runs_end_to_end_and_its_report_matches_the_records()
    {
        var root = RepoRoot();
        var outDir = Directory.CreateTempSubdirectory("cptlab-demo-").FullName;
        var options = new DemoOptions
        {
            OutDir = outDir, Quick = true, CorporaDir = Path.Combine(root, ".cache", "corpora"),
            FetchScript = Path.Combine(root, "scripts", "fetch-corpora.sh"),
            SharedDataDir = Path.GetFullPath(Path.Combine(root, "..", "shared", "data")),
        };
        var ui = new SilentUi();
        var sw = Stopwatch.StartNew();
        var results = DemoPipeline.Run(options, ui, CancellationToken.None);
        var firstRun = sw.Elapsed;

        var report = File.ReadAllText(Path.Combine(outDir, DemoPipeline.ReportFile));
        Assert.True(File.Exists(Path.Combine(outDir, DemoPipeline.HtmlReportFile)));
        var p = new DemoPipeline.Paths(outDir);

        // 1. Every sweep row of the report equals the database.
        using (var store = SweepStore.Open(p.Sweep, create: false))
        {
            var runs = store.Runs();
            Assert.Equal(9, runs.Count);
            Assert.All(runs, r => Assert.Equal(RunStatus.Done, r.Status));
            foreach (var run in runs)
            {
                var lang = store.FinalByLanguage(run.Id);
                var row = $"| {run.Almr.ToString("0.###", Inv)} | {run.Lr.ToString("0.###e0", Inv)} | done | {lang["zh"].ToString("0.0000", Inv)} | {lang["en"].ToString("0.0000", Inv)} |";
                Assert.Contains(row, report);
            }
        }

        // 2. The optimum and its intervals are fit.json's; the transferred setup is plan.json's.
        var fit = FitJson.Read(Path.Combine(p.Sweep, SweepFit.FitFileName));
        Assert.Contains($"ALMR **{fit.Optimum.Almr.ToString("0.###", Inv)}**", report);
        Assert.Contains($"LR **{fit.Optimum.Lr.ToString("0.###e0", Inv)}**", report);
        var plan = SweepPlan.ReadPlan(Path.Combine(p.Plan, SweepPlan.PlanFileName));
        Assert.Equal(fit.Optimum.Almr, plan.Almr, 9);
        Assert.Contains($"ALMR {plan.Almr.ToString("0.###", Inv)}, LR {plan.Lr.ToString("0.###e0", Inv)}", report);
        Assert.True(plan.Lr < fit.Optimum.Lr, "the larger model gets a smaller learning rate");

        // 3. The comparison table is demo.json's, and demo.json's numbers are reproduced by scoring the chosen model again.
        var chosen = results.Models.Single(m => m.Name == "chosen");
        var naive = results.Models.Single(m => m.Name == "naive");
        foreach (var m in results.Models)
            Assert.Contains($"| {m.TargetLoss.ToString("F4", Inv)} | {m.OriginalLoss.ToString("F4", Inv)} | {m.TargetBpb.ToString("F4", Inv)} | {m.OriginalBpb.ToString("F4", Inv)} |", report);
        using (var data = BlendTrainingData.Open(Path.Combine(p.CptChosen, "blend.json"), 64, 64))
        {
            // In float32, as the demo scores every model on every machine ("auto" would choose bf16 where it is faster).
            var again = ModelEvaluation.Evaluate(p.CptChosen + "/run/final", data.Validation, 16, "float32");
            Assert.Equal(chosen.OriginalLoss, again["brown"].Loss, 5);
            var zh = (again["tang"].Loss * again["tang"].Tokens + again["songci"].Loss * again["songci"].Tokens) / (again["tang"].Tokens + again["songci"].Tokens);
            Assert.Equal(chosen.TargetLoss, zh, 5);
        }
        // The verdict follows from the numbers, whichever way they fell.
        Assert.Contains(chosen.Objective < naive.Objective ? "the chosen setup beat the naive one" : "the chosen setup did not beat the naive one", report);
        // Continual pre-training did teach Chinese: both runs far below the English-only base.
        var baseLarge = results.Models.Single(m => m.Name == "base-large");
        Assert.True(chosen.TargetLoss < baseLarge.TargetLoss - 1, $"chosen zh {chosen.TargetLoss:F3} vs base {baseLarge.TargetLoss:F3}");

        // 4. Wall times are stages.json's (the report stage is still running while the report is written).
        using var stagesDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, DemoPipeline.StagesFile)));
        foreach (var stage in stagesDoc.RootElement.GetProperty("stages").EnumerateObject().Where(s => s.Name != "report"))
            Assert.Matches(new Regex($@"\| {Regex.Escape(stage.Name)} \| .* \| {stage.Value.GetProperty("seconds").GetDouble().ToString("F0", Inv)} \|"), report);

        // 5. A re-run resumes: every stage is reused except the report, and it is quick.
        sw.Restart();
        var ui2 = new SilentUi();
        DemoPipeline.Run(options, ui2, CancellationToken.None);
        Assert.Contains("done sweep True", ui2.Lines);
        Assert.Contains("done base-large True", ui2.Lines);
        Assert.True(sw.Elapsed < firstRun / 3, $"re-run took {sw.Elapsed.TotalSeconds:F0} s after {firstRun.TotalSeconds:F0} s");
    }
}
