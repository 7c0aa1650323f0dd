using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Eval.Results;
using CptLab.Eval.Tasks;
using CptLab.TestKit;

namespace CptLab.Eval.Tests;

/// <summary>`eval rescore`: a run's own samples.jsonl rescored gives its results.json numbers; hand-written GSM8K predictions score what the filters give.</summary>
public class RescoreTests
{
    static readonly TaskRegistry Registry = new(TaskRegistry.DefaultFolder);

    static JsonNode Numbers(EvalRun run)
    {
        var json = ResultsWriter.ResultsJson(run);
        foreach (var t in json["tasks"]!.AsArray()) t!.AsObject().Remove("file");
        foreach (var k in new[] { "model", "model_config_sha256", "dtype", "wall_seconds" }) json.Remove(k);
        return json;
    }

    [Fact]
    public void Rescoring_a_runs_samples_reproduces_its_results_for_multiple_choice_and_rolling()
    {
        using var model = TinyModels.Random(TinyModels.Llama3Tokenizer.VocabSize, seed: 5, context: 64);
        var backend = new Backends.LocalModel(model, TinyModels.Llama3Tokenizer, "tiny");
        var dir = Temp.Dir();

        var cmmlu = Registry.Select("cmmlu").Tasks[0];
        var subjects = new Dictionary<string, IReadOnlyCollection<string>> { ["cmmlu"] = ["agronomy", "anatomy"] };
        var options = new EvalOptions { DataDir = RepoPaths.SharedData, Limit = 4, NumFewshot = 1 };
        var run = Evaluator.Run(backend, [cmmlu], options, subjects: subjects);
        ResultsWriter.Write(run, Path.Combine(dir, "mc"));
        var again = Rescore.Run(cmmlu, Path.Combine(dir, "mc", ResultsWriter.SamplesFile), options, subjects["cmmlu"]);
        Assert.Equal(Numbers(run).ToJsonString(), Numbers(again).ToJsonString());
        Assert.Equal(8, again.Samples.Count);

        // loglikelihood_rolling on a small text file (longer documents than the 64-token context).
        var data = Path.Combine(dir, "data", "text");
        Directory.CreateDirectory(data);
        File.WriteAllLines(Path.Combine(data, "docs.jsonl"), new[] { "Short text.", string.Concat(Enumerable.Repeat("A line of text that repeats; ", 20)), "中文的文本也要算字节。" }
            .Select(t => JsonSerializer.Serialize(new { text = t })));
        var yaml = Path.Combine(dir, "bpb_t.yaml");
        File.WriteAllText(yaml, File.ReadAllText(Path.Combine(TaskRegistry.DefaultFolder, "bpb_en.yaml")).Replace("task: bpb_en", "task: bpb_t")
            .Replace("dataset_path: brown", "dataset_path: text").Replace("\"brown.jsonl\"", "\"docs.jsonl\"").Replace("held_out_fraction: 0.02\n", ""));
        var bpb = TaskSpec.Load(yaml);
        var textOptions = new EvalOptions { DataDir = Path.Combine(dir, "data") };
        var rolled = Evaluator.Run(backend, [bpb], textOptions);
        ResultsWriter.Write(rolled, Path.Combine(dir, "bpb"));
        var rescored = Rescore.Run(bpb, Path.Combine(dir, "bpb", ResultsWriter.SamplesFile), textOptions);
        Assert.Equal(Numbers(rolled).ToJsonString(), Numbers(rescored).ToJsonString());
        // Every sample but the token count (not in a prediction unless given) is the run's own.
        ResultsWriter.Write(rescored, Path.Combine(dir, "bpb-rescored"));
        static string[] WithoutTokens(string path) => File.ReadLines(path).Select(l => { var o = JsonNode.Parse(l)!.AsObject(); o.Remove("tokens"); return o.ToJsonString(); }).ToArray();
        Assert.Equal(WithoutTokens(Path.Combine(dir, "bpb", ResultsWriter.SamplesFile)), WithoutTokens(Path.Combine(dir, "bpb-rescored", ResultsWriter.SamplesFile)));
        Assert.True(rolled.Samples[1].Counts!["tokens"] > 64, "the second document should need more than one window");
    }

    [Fact]
    public void Hand_written_gsm8k_predictions_score_what_the_filters_give()
    {
        var gsm8k = Registry.Select("gsm8k").Tasks[0];
        var dir = Temp.Dir();
        var file = Path.Combine(dir, "predictions.jsonl");
        // The first three test answers are 18, 3 and 70000.
        File.WriteAllLines(file,
        [
            JsonSerializer.Serialize(new { doc_id = 0, resps = new[] { new[] { "16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n#### 18" } } }), // lm-eval's form
            JsonSerializer.Serialize(new { doc = 1, generation = "It takes 2 blue and 2 / 2 = 1 white, so 3" }),            // no "#### ": strict fails, flexible takes the last number
            JsonSerializer.Serialize(new { doc = 2, generation = "He made $70,000.\n#### $70,000" }),                        // strict fails: its regex wants a digit after "#### "
            JsonSerializer.Serialize(new { doc = 3, generation = "#### 12 apples" }),
        ]);
        var run = Rescore.Run(gsm8k, file, new EvalOptions { DataDir = RepoPaths.SharedData, Limit = 3 });
        var s = run.Samples;
        Assert.Equal(["18", "[invalid]", "[invalid]"], s.Select(x => x.Filtered!["strict-match"]));
        Assert.Equal(["18", "3", "$70,000"], s.Select(x => x.Filtered!["flexible-extract"]));
        // exact_match after regexes_to_ignore (",", "\$", "(?s).*#### ", "\.$") on both sides: "$70,000" → "70000".
        Assert.Equal([1.0, 0, 0], s.Select(x => x.Scores["exact_match,strict-match"]));
        Assert.Equal([1.0, 1, 1], s.Select(x => x.Scores["exact_match,flexible-extract"]));
        var m = run.Tasks[0].Units[0].Metrics.ToDictionary(x => x.Metric, x => x.Value);
        Assert.Equal(1.0 / 3, m["exact_match,strict-match"], 12);
        Assert.Equal(1.0, m["exact_match,flexible-extract"], 12);

        // A document without a prediction is named.
        File.WriteAllLines(file, [JsonSerializer.Serialize(new { doc = 0, generation = "#### 18" })]);
        var e = Assert.Throws<CptLabException>(() => Rescore.Run(gsm8k, file, new EvalOptions { DataDir = RepoPaths.SharedData, Limit = 3 }));
        Assert.Contains("document 1", e.Message);
    }
}
