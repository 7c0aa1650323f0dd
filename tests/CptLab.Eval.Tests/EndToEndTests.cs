using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Tokenization;
using CptLab.Eval.Backends;
using CptLab.Eval.Results;
using CptLab.Eval.Tasks;
using CptLab.Model;
using CptLab.TestKit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Eval.Tests;

/// <summary>
/// The whole wiring on real CMMLU files: a tiny model trained by a few AdamW steps to memorise the answers of 12
/// agronomy questions, saved as a model folder, loaded by the in-process backend and evaluated through the task file,
/// scores 100% on them and near chance on anatomy; a second evaluation gives identical results.json numbers.
/// </summary>
public class EndToEndTests
{
    [Fact]
    public void Memorised_subset_scores_100_percent_other_subject_near_chance_and_reruns_are_identical()
    {
        var registry = new TaskRegistry(TaskRegistry.DefaultFolder);
        var spec = registry.Select("cmmlu").Tasks[0];
        var learn = TaskData.Load(spec, RepoPaths.SharedData, numFewshot: 0, limit: 12, subjects: ["agronomy"]).Single();
        var other = TaskData.Load(spec, RepoPaths.SharedData, numFewshot: 0, limit: 40, subjects: ["anatomy"]).Single();

        var dir = Temp.Dir();
        var bpe = BpeTrainer.Train(learn.Docs.Concat(other.Docs).Select(d => d.Prompt + " A B C D"), new BpeTrainerOptions { VocabSize = 256 + 300 + Llama3Format.SpecialTokenCount });
        bpe.Save(Path.Combine(dir, "tokenizer.json"));
        var tok = TextTokenizer.Load(dir);
        TorchRuntime.Initialise();
        var config = Flavors.Get("debug") with { VocabSize = tok.VocabSize, MaxPositionEmbeddings = 1024, BosTokenId = tok.BosId, EosTokenIds = [tok.EosId] };
        using (var model = new LlamaForCausalLM(config, ScalarType.Float32))
        {
            model.InitWeights(3);
            var lm = new LocalModel(model, tok, "training");
            var pairs = learn.Docs.Select(d => lm.EncodePair(d.Prompt, " " + d.Choices[d.Gold])).ToArray();
            Train(model, pairs, steps: 150);
            HfCheckpoint.Save(model, dir);
        }

        var options = new EvalOptions { DataDir = RepoPaths.SharedData, NumFewshot = 0 };
        EvalRun Evaluate(int limit)
        {
            using var backend = LocalModel.Open(dir, "float32", batchSize: 8);
            var subjects = new Dictionary<string, IReadOnlyCollection<string>> { ["cmmlu"] = ["agronomy", "anatomy"] };
            return Evaluator.Run(backend, [spec], options with { Limit = limit }, subjects: subjects);
        }
        // The limit is per subject: agronomy's first 12 (the memorised ones) and anatomy's first 12.
        var run = Evaluate(12);
        var units = run.Tasks[0].Units.ToDictionary(u => u.Name);
        Assert.Equal(1.0, units["cmmlu_agronomy"].Metrics.Single(m => m.Metric == "acc").Value);
        var chance = units["cmmlu_anatomy"].Metrics.Single(m => m.Metric == "acc").Value;
        Assert.InRange(chance, 0.0, 0.6);
        Assert.Equal(24, run.Samples.Count);
        var agg = run.Tasks[0].Aggregate.Single(m => m.Metric == "acc");
        Assert.Equal((12 * 1.0 + 12 * chance) / 24, agg.Value, 12);

        var again = Evaluate(12);
        static JsonObject Numbers(EvalRun r) { var j = ResultsWriter.ResultsJson(r); j.Remove("wall_seconds"); return j; }
        Assert.Equal(Numbers(run).ToJsonString(), Numbers(again).ToJsonString());
        Assert.Equal(run.Samples.SelectMany(s => s.LogLikelihoods!), again.Samples.SelectMany(s => s.LogLikelihoods!));

        var outDir = Path.Combine(dir, "eval");
        ResultsWriter.Write(run, outDir);
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, ResultsWriter.ResultsFile)))!;
        Assert.Equal(spec.FileHash, results["tasks"]![0]!["file_sha256"]!.GetValue<string>());
        Assert.Equal(64, results["model_config_sha256"]!.GetValue<string>().Length);
        Assert.Equal(24, File.ReadLines(Path.Combine(outDir, ResultsWriter.SamplesFile)).Count());
        Assert.Contains("| cmmlu | 0 | acc | 1.0000 |".Replace("1.0000", agg.Value.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)), File.ReadAllText(Path.Combine(outDir, ResultsWriter.TableFile)));
    }

    /// <summary>AdamW on the continuation tokens' cross-entropy, all questions in one right-padded batch.</summary>
    static void Train(LlamaForCausalLM model, IReadOnlyList<TokenRequest> pairs, int steps)
    {
        model.train();
        using var opt = optim.AdamW(model.parameters(), lr: 3e-3, weight_decay: 0.0);
        int t = pairs.Max(p => p.Context.Count + p.Continuation.Count - 1);
        var ids = new long[pairs.Count * t];
        var rows = new List<long>(); var pos = new List<long>(); var targets = new List<long>();
        for (int b = 0; b < pairs.Count; b++)
        {
            var full = pairs[b].Context.Concat(pairs[b].Continuation).ToArray();
            for (int j = 0; j < full.Length - 1; j++) ids[b * t + j] = full[j];
            for (int k = 0; k < pairs[b].Continuation.Count; k++)
            {
                rows.Add(b); pos.Add(pairs[b].Context.Count - 1 + k); targets.Add(pairs[b].Continuation[k]);
            }
        }
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var logits = model.forward(tensor(ids, [pairs.Count, t], ScalarType.Int64));          // (B, T, V)
            var picked = logits[tensor(rows.ToArray()), tensor(pos.ToArray())];                       // (N, V)
            var loss = F.cross_entropy(picked, tensor(targets.ToArray()));
            opt.zero_grad();
            loss.backward();
            opt.step();
            if (loss.item<float>() < 0.02f) break;
        }
        model.eval();
    }
}
