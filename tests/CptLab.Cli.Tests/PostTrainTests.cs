using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.TestKit;
using CptLab.Training;

namespace CptLab.Cli.Tests;

/// <summary>
/// The post-training path as a user runs it, on the real GSM8K sets `cptlab data post-train-sets` builds: a base model
/// folder (a BPE tokenizer trained here, Llama-3's chat template) → `cptlab sft` killed with SIGKILL and resumed →
/// `cptlab dpo` from its final/ killed and resumed — each ending bitwise equal to an uninterrupted run, DPO reusing
/// its stored reference log-probs, and the final folders servable with their template.
/// </summary>
public class PostTrainTests
{
    [Fact]
    public void Sft_then_dpo_on_gsm8k_survive_kill_9_and_end_as_servable_model_folders()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-post-").FullName;
        var gsm8k = Path.Combine(RepoPaths.SharedData, "gsm8k", "train.jsonl");
        var output = new StringBuilder();
        Assert.True(CliProcess.Start(output, "data", "post-train-sets", "--out", Path.Combine(dir, "sets"), "--gsm8k", gsm8k, "--no-translation")
            .WaitForExitOrKill(TimeSpan.FromMinutes(2)) == 0, output.ToString());
        // A slice of each set keeps the test short; the records are the builder's, unchanged.
        string Slice(string name, int lines)
        {
            var path = Path.Combine(dir, name);
            File.WriteAllLines(path, File.ReadLines(Path.Combine(dir, "sets", name)).Take(lines));
            return path;
        }
        var sft = Slice("gsm8k_sft.jsonl", 48);
        var sftVal = Slice("gsm8k_sft.val.jsonl", 8);
        var dpo = Slice("gsm8k_dpo.jsonl", 24);
        File.AppendAllText(sft, "{\"messages\": [{\"role\": \"user\", \"content\": \"no answer\"}]}\n"); // rejected: no final assistant turn

        var baseDir = Path.Combine(dir, "base");
        var tokenizerJson = Path.Combine(dir, "tokenizer.json");
        BpeTrainer.Train(File.ReadLines(gsm8k).Take(2000), new BpeTrainerOptions { VocabSize = 1024 }).Save(tokenizerJson);
        ModelFactory.InitAndSave(Flavors.Get("debug") with { VocabSize = 1024, MaxPositionEmbeddings = 256 }, baseDir, seed: 5,
            contents: ModelFolderContents.For(tokenizerJson, null, 256));

        var sftConfig = Path.Combine(dir, "sft.yaml");
        File.WriteAllText(sftConfig, $"""
            model: {"{"}init_from: {baseDir}, dtype: float32{"}"}
            data: {"{"}seq_len: 256{"}"}
            sft:
              train: {sft}
              validation: {sftVal}
              epochs: 0
            optimizer: {"{"}lr: 3e-3{"}"}
            schedule: {"{"}kind: constant{"}"}
            batch: {"{"}micro_batch_size: 2, global_batch_tokens: 1024{"}"}
            budget_tokens: 61440
            eval: {"{"}every_steps: 30{"}"}
            checkpoint: {"{"}every_steps: 10, keep_last: 2{"}"}
            threads: 1
            measure_peak_flops: false
            """);
        var sftRun = KillAndResume("sft", sftConfig, dir, stepsBeforeKill: 20);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(sftRun, "data_summary.json")))!;
        Assert.Equal(49 + 8, summary["read"]!["read"]!.GetValue<long>());
        Assert.Equal(1, summary["read"]!["rejected"]!["no_final_assistant"]!.GetValue<long>());
        Assert.Contains("no_final_assistant", File.ReadAllText(Path.Combine(sftRun, "rejects.jsonl")));
        var losses = File.ReadLines(Path.Combine(sftRun, Trainer.MetricsFileName)).Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] is not null).Select(n => n["loss"]!.GetValue<double>()).ToList();
        Assert.True(losses[^1] < losses[0] - 1, $"SFT loss {losses[0]:F3} → {losses[^1]:F3}");

        var final = Path.Combine(sftRun, Trainer.FinalDir);
        var tokenizer = TextTokenizer.Load(final);
        var generation = JsonNode.Parse(File.ReadAllText(Path.Combine(final, "generation_config.json")))!;
        var eos = generation["eos_token_id"] is JsonArray a ? a.Select(x => x!.GetValue<int>()).ToList() : [generation["eos_token_id"]!.GetValue<int>()];
        Assert.Contains(tokenizer.EotId!.Value, eos);
        Assert.Equal(TokenizerFiles.Llama3InstructChatTemplate, ChatTemplate.ForModel(final).Jinja.Source); // the template it was trained with

        var dpoConfig = Path.Combine(dir, "dpo.yaml");
        File.WriteAllText(dpoConfig, $"""
            model: {"{"}init_from: {final}, dtype: float32{"}"}
            data: {"{"}seq_len: 256{"}"}
            dpo: {"{"}train: {dpo}, validation_fraction: 0.2, loss: sigmoid, beta: 0.1, epochs: 3{"}"}
            optimizer: {"{"}lr: 1e-3{"}"}
            batch: {"{"}micro_batch_size: 4, global_batch_tokens: 1024{"}"}
            checkpoint: {"{"}every_steps: 2, keep_last: 2{"}"}
            threads: 1
            measure_peak_flops: false
            """);
        var dpoRun = KillAndResume("dpo", dpoConfig, dir, stepsBeforeKill: 6);
        var step = JsonNode.Parse(File.ReadLines(Path.Combine(dpoRun, Trainer.MetricsFileName)).First())!;
        foreach (var name in new[] { "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected" })
            Assert.NotNull(step[name]);
        Assert.Equal(Math.Log(2), step["loss"]!.GetValue<double>(), 4);
        Assert.True(File.Exists(Path.Combine(dpoRun, "reference_logps.json")));
    }

    /// <summary>Runs `cptlab VERB` straight, and again killed with SIGKILL after a checkpoint past <paramref name="stepsBeforeKill"/> then resumed; the final weights must be equal.</summary>
    static string KillAndResume(string verb, string config, string dir, int stepsBeforeKill)
    {
        var output = new StringBuilder();
        var straight = Path.Combine(dir, verb + "-straight");
        Assert.True(CliProcess.Start(output, verb, "--config", config, "--out", straight).WaitForExitOrKill(TimeSpan.FromMinutes(4)) == 0, output.ToString());
        var killed = Path.Combine(dir, verb + "-killed");
        using (var child = CliProcess.Start(verb, "--config", config, "--out", killed))
        {
            var checkpoints = Path.Combine(killed, Trainer.CheckpointsDir);
            var sw = Stopwatch.StartNew();
            while ((TrainingCheckpoint.List(checkpoints) is var list && (list.Count == 0 || list[^1].Step < stepsBeforeKill)) && !child.HasExited && sw.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(20);
            Assert.False(child.HasExited, $"`cptlab {verb}` finished before it could be killed");
            child.Kill(entireProcessTree: true); // SIGKILL: no clean-up runs
            child.WaitForExit();
        }
        output.Clear();
        Assert.True(CliProcess.Start(output, verb, "--resume", killed).WaitForExitOrKill(TimeSpan.FromMinutes(4)) == 0, output.ToString());
        if (verb == "dpo") Assert.Contains("not recomputed", output.ToString());
        Assert.True(File.ReadAllBytes(Path.Combine(straight, Trainer.FinalDir, HfCheckpoint.SingleFile)).AsSpan()
            .SequenceEqual(File.ReadAllBytes(Path.Combine(killed, Trainer.FinalDir, HfCheckpoint.SingleFile))), $"`cptlab {verb}`: final weights differ after kill -9 and resume");
        return straight;
    }
}
