using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CptLab.Core;
using CptLab.Demo;
using CptLab.Eval.Results;
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

    /// <summary>Text as the report's tables and quotes show it: one line, pipes escaped.</summary>
    static string Shown(string text) => text.Replace("\r", "").Replace("\n", "⏎").Replace("|", "\\|");

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "fetch-corpora.sh"))) return dir.FullName;
        throw new InvalidOperationException("not inside a CptLab checkout");
    }

    /// <summary>Starts `cptlab demo --quick` (the CLI beside this assembly) and kills it after base-small's checkpoint at step 100.</summary>
    static void KillDuringBaseSmall(DemoOptions o)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "cptlab.dll"), "demo", "--quick", "--out", o.OutDir, "--corpora", o.CorporaDir,
                     "--debian", o.DebianDir, "--shared-data", o.SharedDataDir })
            psi.ArgumentList.Add(a);
        var lines = new List<string>();
        using var proc = Process.Start(psi)!;
        var killed = new ManualResetEventSlim();
        bool inBase = false;
        proc.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (lines) lines.Add(e.Data);
            if (e.Data.Contains("▶ base-small", StringComparison.Ordinal)) inBase = true;
            if (inBase && e.Data.Contains("checkpoint step 100", StringComparison.Ordinal))
            {
                proc.Kill(entireProcessTree: true);
                killed.Set();
            }
        };
        proc.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        proc.BeginOutputReadLine();
        proc.BeginErrorReadLine();
        if (!proc.WaitForExit(TimeSpan.FromMinutes(5))) { proc.Kill(entireProcessTree: true); Assert.Fail("the demo child ran 5 minutes without reaching base-small's checkpoint"); }
        lock (lines) Assert.True(killed.IsSet, $"the demo child exited {proc.ExitCode} before base-small's checkpoint at step 100:\n" + string.Join("\n", lines.TakeLast(30)));
    }

    [Fact]
    public void Quick_demo_runs_end_to_end_and_its_report_matches_the_records()
    {
        var root = RepoRoot();
        var outDir = Directory.CreateTempSubdirectory("cptlab-demo-").FullName;
        var options = new DemoOptions
        {
            // CPTLAB_CORPORA: where scripts/fetch-corpora.sh put them when not in the checkout's .cache/corpora.
            OutDir = outDir, Quick = true, CorporaDir = Environment.GetEnvironmentVariable("CPTLAB_CORPORA") ?? Path.Combine(root, ".cache", "corpora"),
            FetchScript = Path.Combine(root, "scripts", "fetch-corpora.sh"),
            SharedDataDir = Path.GetFullPath(Path.Combine(root, "..", "shared", "data")),
            DebianDir = Environment.GetEnvironmentVariable("CPTLAB_DEBIAN") ?? Path.Combine(root, ".cache", "debian-pkgs"),
            FetchDebianScript = Path.Combine(root, "scripts", "fetch-debian-corpora.sh"),
        };
        var sw = Stopwatch.StartNew();

        // 0. A stage killed mid-way resumes: `cptlab demo --quick` as a child process, killed (SIGKILL) once the small
        // base's pre-training has written its second checkpoint; the run below then picks that training up from it.
        KillDuringBaseSmall(options);
        using (var killed = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, DemoPipeline.StagesFile))))
        {
            var st = killed.RootElement.GetProperty("stages");
            Assert.True(st.GetProperty("prepare").GetProperty("done").GetBoolean());
            Assert.False(st.TryGetProperty("base-small", out var bs) && bs.GetProperty("done").GetBoolean(), "base-small finished before the kill");
        }
        var ui = new SilentUi();
        var results = DemoPipeline.Run(options, ui, CancellationToken.None);
        var firstRun = sw.Elapsed;
        Assert.Contains("done prepare True", ui.Lines);
        var resumed = ui.Lines.SingleOrDefault(l => l.StartsWith("resumed from", StringComparison.Ordinal) && l.Contains("base-small", StringComparison.Ordinal));
        Assert.True(resumed is not null, "base-small did not resume from its checkpoint:\n" + string.Join("\n", ui.Lines.Take(40)));
        Assert.Matches(@"at step (1[05]0) ", resumed);
        // The resumed run's metrics continue the killed one's: each step once, none missing.
        var baseSteps = File.ReadLines(Path.Combine(outDir, "base-small", "run", Trainer.MetricsFileName)).Select(l => JsonNode.Parse(l)!)
            .Where(n => n["loss"] is not null && n["val"] is null).Select(n => n["step"]!.GetValue<long>()).ToList();
        Assert.Equal(Enumerable.Range(1, baseSteps.Count).Select(i => (long)i), baseSteps);

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
        var chosen = results.Models.Single(m => m.Name == "chosen" && m.Seed == 1);
        var naive = results.Models.Single(m => m.Name == "naive" && m.Seed == 1);
        Assert.Equal(5, results.Models.Count); // base-large, and chosen + naive for seeds 1 and 2
        foreach (var m in results.Models)
            Assert.Contains($"| {m.TargetLoss.ToString("F4", Inv)} | {m.OriginalLoss.ToString("F4", Inv)} | {m.TargetBpb.ToString("F4", Inv)} | {m.OriginalBpb.ToString("F4", Inv)} |", report);
        using (var data = BlendTrainingData.Open(Path.Combine(p.CptChosen, "blend.json"), 64, 64))
        {
            // In float32, as the demo scores every model on every machine ("auto" would choose bf16 where it is faster).
            var again = ModelEvaluation.Evaluate(p.CptChosen + "/run/final", data.Validation, 16, "float32");
            var en = (again["brown"].Loss * again["brown"].Tokens + again["en-docs"].Loss * again["en-docs"].Tokens) / (again["brown"].Tokens + again["en-docs"].Tokens);
            Assert.Equal(chosen.OriginalLoss, en, 5);
            Assert.Equal(chosen.TargetLoss, again["zh-docs"].Loss, 5);
            Assert.Equal(chosen.ClassicalLoss!.Value, again["poetry"].Loss, 5);
        }
        // The verdict follows from the numbers, whichever way they fell.
        // Over the seeds: each seed's row and gain, and the verdict by the stated rule, recomputed here from demo.json's objectives.
        var gains = new List<double>();
        foreach (var seed in new[] { 1, 2 })
        {
            var c = results.Models.Single(m => m.Name == "chosen" && m.Seed == seed);
            var n = results.Models.Single(m => m.Name == "naive" && m.Seed == seed);
            gains.Add(n.Objective - c.Objective);
            Assert.Contains($"| {seed} | {c.Objective.ToString("F4", Inv)} | {n.Objective.ToString("F4", Inv)} | {(n.Objective - c.Objective).ToString("+0.0000;-0.0000", Inv)} |", report);
        }
        Assert.NotEqual(results.Models.Single(m => m.Name == "chosen" && m.Seed == 2).TargetLoss, chosen.TargetLoss); // the seed did change the run
        double Range(string name) { var o = results.Models.Where(m => m.Name == name).Select(m => m.Objective).ToList(); return o.Max() - o.Min(); }
        double spread = Math.Max(Range("chosen"), Range("naive")), meanGain = gains.Average();
        string verdict = gains.All(g => g > 0) && meanGain > spread ? "**the chosen setup beat the naive one beyond the seed spread**"
            : gains.All(g => g < 0) && -meanGain > spread ? "**the chosen setup lost to the naive one beyond the seed spread**" : "**within noise**";
        Assert.Contains(verdict, report);
        Assert.Contains($"seed spread {spread.ToString("F4", Inv)}", report);
        // Continual pre-training did teach Chinese: both runs far below the English-only base.
        var baseLarge = results.Models.Single(m => m.Name == "base-large");
        Assert.True(chosen.TargetLoss < baseLarge.TargetLoss - 1, $"chosen zh {chosen.TargetLoss:F3} vs base {baseLarge.TargetLoss:F3}");

        // 4. Wall times are stages.json's (the report stage is still running while the report is written).
        using var stagesDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, DemoPipeline.StagesFile)));
        foreach (var stage in stagesDoc.RootElement.GetProperty("stages").EnumerateObject().Where(s => s.Name != "report"))
            Assert.Matches(new Regex($@"\| {Regex.Escape(stage.Name)} \| .* \| {stage.Value.GetProperty("seconds").GetDouble().ToString("F0", Inv)} \|"), report);

        // 5. The benchmark table is each model's results.json, read here straight from the JSON.
        var harness = new[] { "base-large", "cpt-naive", "cpt-chosen", "sft", "dpo" };
        foreach (var model in harness)
        {
            var file = Path.Combine(p.Eval, model, "results.json");
            Assert.True(File.Exists(file), $"no {file}");
            var cells = new List<string>();
            foreach (var task in JsonNode.Parse(File.ReadAllText(file))!["tasks"]!.AsArray())
            {
                var metrics = task!["aggregate"]!.AsArray().Count > 0 ? task["aggregate"]!.AsArray() : task["units"]![0]!["metrics"]!.AsArray();
                var m = metrics[0]!;
                var value = m["value"] is JsonValue v ? v.GetValue<double>().ToString("0.0000", Inv) : "–";
                cells.Add(value + (m["stderr"] is JsonValue e ? " ± " + e.GetValue<double>().ToString("0.0000", Inv) : ""));
            }
            Assert.Equal(14, cells.Count); // bpb_en, bpb_en_docs, bpb_zh, bpb_zh_docs, cmmlu, the six EmoBench tasks, eq_bench, gsm8k, humaneval
            Assert.Contains($"| {model} | {string.Join(" | ", cells)} |", report);
        }
        var tasks = JsonNode.Parse(File.ReadAllText(Path.Combine(p.Eval, "dpo", "results.json")))!["tasks"]!.AsArray().Select(t => t!["task"]!.GetValue<string>()).ToList();
        foreach (var task in new[] { "bpb_en", "bpb_en_docs", "bpb_zh", "bpb_zh_docs", "cmmlu", "emobench_ea_zh", "emobench_eu_emotion_en", "eq_bench", "gsm8k", "humaneval" }) Assert.Contains(task, tasks);
        // HumanEval's programs really ran in the sandbox: every sample has an execution result.
        var humaneval = File.ReadLines(Path.Combine(p.Eval, "dpo", "samples.jsonl")).Select(l => JsonNode.Parse(l)!).Where(n => n["task"]!.GetValue<string>() == "humaneval").ToList();
        Assert.NotEmpty(humaneval);
        // The deltas CPT → SFT → DPO are B − A of the two results.json (through `cptlab eval compare`'s function).
        foreach (var (a, b) in new[] { ("cpt-chosen", "sft"), ("sft", "dpo") })
        {
            var rows = RunComparison.Compare(Path.Combine(p.Eval, a, "results.json"), Path.Combine(p.Eval, b, "results.json"));
            var cmmlu = rows.Single(r => r.Task == "cmmlu" && r.Unit == RunComparison.Aggregate && r.Metric == "acc");
            Assert.Equal(cmmlu.B - cmmlu.A, cmmlu.Delta, 12);
            Assert.Contains($"| {a} → {b} | cmmlu | acc | {RunComparison.Format(cmmlu.A)} | {RunComparison.Format(cmmlu.B)} |", report);
        }

        // 6. The post-training rows are the trainer's metrics.jsonl: DPO's last held-out evaluation and last step.
        var dpoLines = File.ReadLines(Path.Combine(p.DpoRun, Trainer.MetricsFileName)).Select(l => JsonNode.Parse(l)!).ToList();
        var lastVal = dpoLines.Last(n => n["val"] is JsonObject)!;
        var dpoVal = lastVal["val"]!["dpo"]!;
        string F(JsonNode? n) => n!.GetValue<double>().ToString("0.0000", Inv);
        Assert.Contains($"| dpo | last held-out evaluation (dpo) | {lastVal["step"]} | {F(dpoVal["loss"])} | {F(dpoVal["rewards/accuracies"])} | {F(dpoVal["rewards/margins"])} |", report);
        var lastStep = dpoLines.Last(n => n["loss"] is not null && n["val"] is null)!;
        Assert.Contains($"| dpo | last training step | {lastStep["step"]} | {F(lastStep["loss"])} | {F(lastStep["rewards/accuracies"])} | {F(lastStep["rewards/margins"])} |", report);
        var sftLast = File.ReadLines(Path.Combine(p.SftRun, Trainer.MetricsFileName)).Select(l => JsonNode.Parse(l)!).Last(n => n["val"] is JsonObject)!;
        Assert.Contains($"| sft | last held-out evaluation (sft) | {sftLast["step"]} | {F(sftLast["val"]!["sft"]!["loss"])} |", report);

        // 7. The GGUF answer came from llama.cpp: recorded as such, with llama.cpp's own system line; the prompt ids are
        // llama.cpp's tokenization of the rendered prompt, equal to CptLab's; and CptLab's own greedy decoding of the
        // DPO folder (float32, the export is f32) gives the same tokens, so the answer is that model's.
        var answer = JsonNode.Parse(File.ReadAllText(Path.Combine(p.Gguf, DemoPostStages.AnswerFile)))!;
        Assert.Equal(DemoPostStages.EngineLlamaCpp, answer["engine"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(answer["llama_cpp_system_info"]!.GetValue<string>()));
        Assert.StartsWith("libllama", Path.GetFileName(answer["llama_cpp_library"]!.GetValue<string>()));
        Assert.True(new FileInfo(Path.Combine(outDir, answer["gguf"]!.GetValue<string>())).Length == answer["gguf_bytes"]!.GetValue<long>());
        var promptIds = answer["prompt_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        var answerIds = answer["answer_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        var dpoTokenizer = CptLab.Data.Tokenization.TextTokenizer.Load(p.DpoModel);
        var cptlabIds = new List<int>();
        dpoTokenizer.EncodeWithSpecials(answer["prompt_text"]!.GetValue<string>(), cptlabIds);
        Assert.Equal(cptlabIds, promptIds);
        using (var dpoModel = CptLab.Model.HfCheckpoint.Load(p.DpoModel, TorchSharp.torch.ScalarType.Float32))
        {
            // llama.cpp stops at an end-of-generation token or after the tokens that fit the context: one more from CptLab shows which.
            int budget = Math.Min(DemoScale.Quick.Post.ReplyTokens, DemoScale.Quick.SeqLen - promptIds.Length);
            Assert.Equal(budget, answer["max_new_tokens"]!.GetValue<int>());
            Assert.InRange(answerIds.Length, 0, budget);
            int steps = Math.Min(answerIds.Length + 1, budget);
            var ours = CptLab.Model.Generation.Generate(dpoModel, new CptLab.Model.GenerationRequest(promptIds, steps, CptLab.Model.SamplingOptions.Greedy)).Select(t => t.Id).ToArray();
            Assert.Equal(answerIds, ours.Take(answerIds.Length));
            if (answerIds.Length < budget)
                Assert.Contains(ours[answerIds.Length], new[] { dpoTokenizer.EosId, dpoTokenizer.EotId ?? -1 });
        }
        Assert.Contains(Shown(answer["answer"]!.GetValue<string>()), report);
        Assert.Contains("loaded by **llama.cpp**", report);

        // 8. The served reply came over HTTP: status 200 from a 127.0.0.1 port, the body is OpenAI's chat completion with
        // that reply, and the server's own request log has the POST.
        var served = JsonNode.Parse(File.ReadAllText(Path.Combine(p.Serve, DemoPostStages.ReplyFile)))!;
        Assert.Equal(200, served["status"]!.GetValue<int>());
        Assert.StartsWith("http://127.0.0.1:", served["url"]!.GetValue<string>());
        var body = JsonNode.Parse(served["response_body"]!.GetValue<string>())!;
        Assert.Equal("chat.completion", body["object"]!.GetValue<string>());
        Assert.Equal(served["reply"]!.GetValue<string>(), body["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Contains(served["server_request_log"]!.AsArray(), l => l!.GetValue<string>().Contains("POST /v1/chat/completions", StringComparison.Ordinal) && l.GetValue<string>().Contains(" 200", StringComparison.Ordinal));
        Assert.Contains("status 200", report);
        Assert.Contains(Shown(served["reply"]!.GetValue<string>()), report);

        // 9. A re-run resumes: every stage is reused except the report, and it is quick.
        sw.Restart();
        var ui2 = new SilentUi();
        DemoPipeline.Run(options, ui2, CancellationToken.None);
        foreach (var stage in stagesDoc.RootElement.GetProperty("stages").EnumerateObject().Where(s => s.Name != "report"))
            Assert.Contains($"done {stage.Name} True", ui2.Lines);
        foreach (var stage in new[] { "sft", "dpo", "evaluate-harness", "gguf", "serve" }) Assert.Contains($"done {stage} True", ui2.Lines);
        Assert.True(sw.Elapsed < firstRun / 3, $"re-run took {sw.Elapsed.TotalSeconds:F0} s after {firstRun.TotalSeconds:F0} s");
    }
}
