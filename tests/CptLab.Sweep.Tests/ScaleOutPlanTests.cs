using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Cleaning;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Model.Parallelism;
using CptLab.Sweep.ScaleOut;
using CptLab.TestKit;
using CptLab.Training;
using Xunit.Abstractions;

namespace CptLab.Sweep.Tests;

/// <summary>
/// `sweep plan` for a cluster: a sweep whose shards are in Meta's Llama-3 token ids, planned for Llama-3-70B on 256
/// H100-80GB, and the plan folder read as a Megatron-LM user would: the blend Megatron-LM's sampler makes of the weights,
/// the flags, the launchers run with --dry-run by bash. And the refusals: shards in another tokenizer's ids.
/// </summary>
[Collection(SweepCollection.Name)]
public class ScaleOutPlanTests(SweepFixture fx, ITestOutputHelper output)
{
    const long Budget = 100_000_000_000;
    const int SeqLen = 8192, GlobalBatch = 512;

    [Fact]
    public void A_70B_plan_on_256_gpus_is_a_folder_megatron_lm_can_run_as_written()
    {
        var (sweep, target) = Llama3Sweep();
        var outDir = Path.Combine(fx.NewDir("plan-"), "plan");
        var result = SweepPlan.Run(sweep, new PlanOptions
        {
            Target = target, Tokens = Budget, SeqLen = SeqLen, GlobalBatchSize = GlobalBatch, DecayStyle = "WSD",
            Cluster = new ClusterSpec(256, 80), OutDir = outDir,
        });
        output.WriteLine(result.Description);
        var cfg = TrainConfig.Load(result.TrainConfigPath);
        var args = result.Megatron.Args;
        string After(string flag) => string.Join(' ', args.Single(a => a.Flag == flag).Values.Select(v => v.Text));

        // The layout is of the kind Megatron-LM and NeMo use for 70B: TP 8 within a node, a pipeline.
        var p = result.Parallelism!;
        Assert.Equal(8, p.TensorParallel);
        Assert.True(p.PipelineParallel >= 2);
        Assert.Equal(256, p.TensorParallel * p.PipelineParallel * p.ContextParallel * p.DataParallel);
        Assert.Equal("8", After("--tensor-model-parallel-size"));
        Assert.Equal(I(p.PipelineParallel), After("--pipeline-model-parallel-size"));

        // The architecture is the target's config.json.
        Assert.Equal("80", After("--num-layers"));
        Assert.Equal("8192", After("--hidden-size"));
        Assert.Equal("28672", After("--ffn-hidden-size"));
        Assert.Equal("8", After("--num-query-groups"));
        Assert.Equal("500000", After("--rotary-base"));
        Assert.Equal("HuggingFaceTokenizer", After("--tokenizer-type"));

        // The schedule is the trainer's: the WSD decay Megatron-LM needs, as long as the trainer's decay (measured on its LR curve).
        var schedule = new LrSchedule(cfg.Schedule, cfg.Lr, cfg.TotalSteps, cfg.WarmupSteps, cfg.MinLrRatio, cfg.DecayFraction, cfg.Anneal, cfg.WarmupInitLr);
        var lastAtPeak = Enumerable.Range(0, (int)cfg.TotalSteps).Last(s => schedule.At(s) >= cfg.Lr * (1 - 1e-12));
        Assert.Equal("WSD", After("--lr-decay-style"));
        Assert.Equal(cfg.TotalSteps - lastAtPeak - 1, long.Parse(After("--lr-wsd-decay-iters"), CultureInfo.InvariantCulture), 1.0);
        Assert.Equal(I(cfg.TotalSteps), After("--train-iters"));
        Assert.Equal((Budget + (long)SeqLen * GlobalBatch - 1) / ((long)SeqLen * GlobalBatch), cfg.TotalSteps);
        // The proxies' optimizer, not Megatron-LM's defaults; continuing the converted base, resuming the run's own checkpoints.
        Assert.Equal(cfg.WeightDecay, D(After("--weight-decay")));
        Assert.Equal(cfg.Beta2, D(After("--adam-beta2")));
        Assert.Equal(cfg.Eps, D(After("--adam-eps")));
        Assert.Equal(cfg.GradClip, D(After("--clip-grad")));
        Assert.Equal(cfg.Lr, D(After("--lr")));
        Assert.Contains(args, a => a.Flag == "--bf16");
        Assert.Equal("$MEGATRON_BASE", After("--pretrained-checkpoint"));
        // A checkpoint at least every two hours of the estimated throughput: a lost node costs hours, not days.
        Assert.InRange(long.Parse(After("--save-interval"), CultureInfo.InvariantCulture), 1, p.TokensPerSecond * 7200 / ((double)SeqLen * GlobalBatch));
        Assert.Equal("$CKPT_DIR", After("--load"));
        Assert.Equal("$CKPT_DIR", After("--save"));

        // Data: Megatron-LM's BlendedDataset picks, for each of the run's samples, the source furthest behind its weight
        // (build_blending_indices in megatron/core/datasets/helpers.cpp, re-derived here). Every sample is seq_len tokens,
        // so the Chinese tokens the run reads are the ALMR of the budget within one sequence.
        var train = args.Single(a => a.Flag == "--train-data-path").Values;
        var weights = Enumerable.Range(0, train.Count / 2).Select(i => D(train[2 * i].Text)).ToArray();
        var prefixes = Enumerable.Range(0, train.Count / 2).Select(i => train[2 * i + 1].Text).ToArray();
        var samples = MegatronBlend(weights, cfg.TotalSteps * GlobalBatch);
        var blend = BlendManifest.Load(cfg.Data!);
        var zhSamples = prefixes.Select((prefix, i) => (prefix, i))
            .Where(t => blend.Sources.Single(s => "$DATA_DIR/" + s.TrainPrefix == t.prefix).Group == SourceGroup.Additional).Sum(t => samples[t.i]);
        var totalTokens = (double)cfg.TotalSteps * GlobalBatch * SeqLen;
        output.WriteLine($"zh samples {zhSamples} of {cfg.TotalSteps * GlobalBatch}: token share {zhSamples * SeqLen / totalTokens:0.000000} vs ALMR {result.Plan.Almr:0.000000}");
        Assert.True(Math.Abs(zhSamples * (double)SeqLen - result.Plan.Almr * totalTokens) <= SeqLen,
            $"Megatron-LM would give the additional language {zhSamples * (double)SeqLen:N0} tokens, the plan {result.Plan.Almr * totalTokens:N0}");
        // blend.json, the launcher and plan.json agree on every source's share, exactly.
        foreach (var s in blend.Sources.Where(s => s.Share > 0))
        {
            Assert.Equal(s.Share, weights[Array.IndexOf(prefixes, "$DATA_DIR/" + s.TrainPrefix)]);
            Assert.Equal(s.Share, result.Plan.Blend.Single(b => b.PathPrefix.EndsWith(s.TrainPrefix, StringComparison.Ordinal)).Weight, 1e-12);
        }
        Assert.Equal(blend.Sources.Count(s => s.Share > 0), args.Single(a => a.Flag == "--valid-data-path").Values.Count / 2);

        // No path of the planning machine is in a script; every script parses.
        var scripts = new[] { MegatronLauncher.EnvFile, MegatronLauncher.ArgsFile, MegatronLauncher.ConvertInFile, MegatronLauncher.TrainFile, MegatronLauncher.SbatchFile, MegatronLauncher.ConvertOutFile };
        foreach (var name in scripts.Append(MegatronLauncher.RunConfigFile))
        {
            var text = File.ReadAllText(Path.Combine(outDir, name));
            foreach (var local in new[] { outDir, fx.Root, sweep, target })
                Assert.False(text.Contains(local, StringComparison.Ordinal), $"{name} names {local}, a path of the planning machine");
        }
        foreach (var name in scripts) Assert.Equal(0, Bash(outDir, ["-n", name], []).Code);
        var py = Run("python3", outDir, ["-c", $"import ast,sys; ast.parse(open('{MegatronLauncher.RunConfigFile}').read())"], []);
        Assert.True(py.Code == 0, py.Stderr);

        // The launchers as a cluster user runs them first: --dry-run prints the resolved command.
        var env = new Dictionary<string, string>
        {
            ["MEGATRON_LM"] = "/opt/megatron-lm", ["MEGATRON_BRIDGE"] = "/opt/megatron-bridge", ["HF_BASE"] = "/models/llama-3-70b",
            ["DATA_DIR"] = "/shards", ["WORK_DIR"] = "/scratch/cpt", ["NNODES"] = "32", ["MASTER_ADDR"] = "node001",
        };
        var dry = Bash(outDir, [MegatronLauncher.TrainFile, "--dry-run"], env);
        output.WriteLine(dry.Stdout);
        Assert.True(dry.Code == 0, dry.Stderr);
        Assert.StartsWith("torchrun --nnodes 32 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint node001:29500 ", dry.Stdout);
        Assert.Contains(" /opt/megatron-lm/pretrain_gpt.py ", dry.Stdout);
        Assert.Contains($" --train-data-path {train[0].Text} /shards/{blend.Sources.First(s => s.Share > 0).TrainPrefix} ", dry.Stdout);
        Assert.Contains(" --pretrained-checkpoint /scratch/cpt/base_megatron ", dry.Stdout);
        Assert.Contains(" --tokenizer-model /models/llama-3-70b ", dry.Stdout);
        Assert.Contains("shard files missing", dry.Stderr);
        // A world that is not the planned one is refused before anything starts; so is a missing variable.
        var wrongWorld = Bash(outDir, [MegatronLauncher.TrainFile, "--dry-run"], new(env) { ["NNODES"] = "1" });
        Assert.Equal(2, wrongWorld.Code);
        Assert.Contains("planned for 256", wrongWorld.Stderr);
        var noMegatron = Bash(outDir, [MegatronLauncher.TrainFile, "--dry-run"], new(env) { ["MEGATRON_LM"] = "" });
        Assert.Equal(2, noMegatron.Code);
        Assert.Contains("set MEGATRON_LM", noMegatron.Stderr);
        var convertIn = Bash(outDir, [MegatronLauncher.ConvertInFile, "--dry-run"], env);
        Assert.Equal("/opt/megatron-bridge/scripts/conversion/convert.sh import --executor local --device cpu --hf-model /models/llama-3-70b --megatron-path /scratch/cpt/base_megatron --torch-dtype bfloat16 \n", convertIn.Stdout);
        var convertOut = Bash(outDir, [MegatronLauncher.ConvertOutFile, "--dry-run"], env);
        Assert.Contains("make_run_config.py /scratch/cpt/checkpoints/iter_0000000 /models/llama-3-70b", convertOut.Stdout);
        Assert.Contains("convert.sh export --executor local --device cpu --hf-model /models/llama-3-70b --megatron-path /scratch/cpt/checkpoints/iter_0000000 --hf-path /scratch/cpt/hf_final", convertOut.Stdout);
        Assert.Contains("#SBATCH --nodes=32\n", File.ReadAllText(Path.Combine(outDir, MegatronLauncher.SbatchFile)));
        Assert.Contains("CUDA_DEVICE_MAX_CONNECTIONS", File.ReadAllText(Path.Combine(outDir, MegatronLauncher.EnvFile)));
        var readme = File.ReadAllText(Path.Combine(outDir, MegatronLauncher.ReadmeFile));
        Assert.True(readme.IndexOf("./convert_in.sh", StringComparison.Ordinal) < readme.IndexOf("./train.sh", StringComparison.Ordinal)
                    && readme.IndexOf("./train.sh", StringComparison.Ordinal) < readme.IndexOf("./convert_out.sh", StringComparison.Ordinal));

        var bare = SweepPlan.Run(sweep, new PlanOptions { Target = target, Tokens = Budget, Cluster = new ClusterSpec(256, 80), OutDir = Path.Combine(fx.NewDir("plan-bare-"), "plan") });
        // With the proxies' own geometry (32-token sequences, 4 per step) the plan is made, and says how small that step is.
        Assert.Contains(bare.Plan.Assumptions, a => a.Contains("are the proxies' own") && a.Contains("pass --seq-len and --global-batch"));

        // The verb does the same from the command line and prints the layout.
        var (code, stdout, stderr) = CliHost.Run(["sweep", "plan", "--dir", sweep, "--target", target, "--tokens", "100B", "--seq-len", "8192",
            "--global-batch", "512", "--gpus", "256", "--out", Path.Combine(fx.NewDir("plan-cli-"), "plan")]);
        Assert.True(code == 0, stderr);
        Assert.Contains("tensor 8 · pipeline", stdout);
        Assert.Contains("convert_in.sh", stdout);
    }

    [Fact]
    public void Shards_in_another_tokenizers_ids_are_refused_with_the_way_to_retokenize()
    {
        // The fixture's shards are in a 600-id BPE: planning Llama-3-70B on them is refused.
        var spec = SweepSpec.Load(fx.WriteSpec(RunnerTests.Grid(5, 5)));
        var sweep = Path.Combine(fx.NewDir("sweepdir-"), "sweep");
        SweepRunner.Run(spec, sweep, new RunnerOptions { Executor = new FakeExecutor() });
        SweepFit.Run(sweep, bootstrap: 0);
        var outDir = Path.Combine(fx.NewDir("plan-"), "plan");
        var e = Assert.Throws<CptLabException>(() => SweepPlan.Run(sweep, new PlanOptions { Target = "Llama-3-70B", Tokens = Budget, OutDir = outDir }));
        output.WriteLine(e.Message);
        Assert.Contains("600-id tokenizer", e.Message);
        Assert.Contains("128,256 ids", e.Message);
        Assert.Contains("cptlab data prepare --tokenizer", e.Message);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), "a refused plan wrote files");

        // A checkpoint folder whose tokenizer has the same 600 ids but was trained on other text: the tokenizers themselves differ.
        var folder = fx.NewDir("other-tokenizer-");
        BpeTrainer.Train(Enumerable.Range(0, 200).Select(i => SyntheticText.English(i + 500, 60)), new BpeTrainerOptions { VocabSize = 600 }).Save(Path.Combine(folder, "tokenizer.json"));
        (Flavors.Get("debug") with { VocabSize = TextTokenizer.Load(folder).VocabSize }).Save(Path.Combine(folder, "config.json"));
        var e2 = Assert.Throws<CptLabException>(() => SweepPlan.Run(sweep, new PlanOptions { Target = folder, Tokens = 1_000_000, OutDir = outDir }));
        output.WriteLine(e2.Message);
        Assert.Contains("is not", e2.Message);
        Assert.Contains("tokenizes differently", e2.Message);

        // The fixture's own tokenizer in a folder passes: a plan is written.
        var same = fx.NewDir("same-tokenizer-");
        File.Copy(Path.Combine(fx.Root, "tokenizer.json"), Path.Combine(same, "tokenizer.json"));
        (Flavors.Get("debug") with { VocabSize = 600, MaxPositionEmbeddings = 128 }).Save(Path.Combine(same, "config.json"));
        Assert.True(File.Exists(SweepPlan.Run(sweep, new PlanOptions { Target = same, Tokens = 1_000_000, OutDir = outDir }).TrainConfigPath));

        // A schedule only Megatron-LM runs is refused: the plan is one train config for both.
        var e3 = Assert.Throws<CptLabException>(() => SweepPlan.Run(sweep, new PlanOptions { Target = same, Tokens = 1_000_000, DecayStyle = "linear", OutDir = outDir }));
        Assert.Contains("cosine, WSD or constant", e3.Message);
    }

    /// <summary>Samples per source of a blend of <paramref name="size"/> samples, as Megatron-LM's build_blending_indices assigns them.</summary>
    static long[] MegatronBlend(double[] weights, long size)
    {
        var sum = weights.Sum();
        var w = weights.Select(x => x / sum).ToArray(); // BlendedDataset normalises the weights first
        var count = new long[w.Length];
        for (long i = 0; i < size; i++)
        {
            var at = Math.Max(i, 1.0);
            var best = 0;
            for (var d = 1; d < w.Length; d++)
                if (w[d] * at - count[d] > w[best] * at - count[best]) best = d;
            count[best]++;
        }
        return count;
    }

    static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
    static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    static (int Code, string Stdout, string Stderr) Bash(string dir, string[] args, Dictionary<string, string> env) => Run("bash", dir, args, env);

    static (int Code, string Stdout, string Stderr) Run(string file, string dir, string[] args, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }

    static readonly Lock _gate = new();
    static (string Sweep, string Target)? _llama3;

    /// <summary>
    /// A fitted 5×5 sweep (known surface, no training) on shards in Meta's Llama-3 ids, and a Llama-3-70B "checkpoint
    /// folder" holding only its config.json and that tokenizer: all a plan reads. Made once per test run.
    /// </summary>
    (string Sweep, string Target) Llama3Sweep()
    {
        lock (_gate)
        {
            if (_llama3 is { } made && Directory.Exists(made.Sweep)) return made;
            var root = fx.NewDir("llama3-");
            var tokenizerPath = Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer.json");
            var corpus = Path.Combine(root, "corpus");
            Directory.CreateDirectory(corpus);
            File.WriteAllText(Path.Combine(corpus, "en.txt"), string.Join("\n\n", Enumerable.Range(0, 240).Select(i => SyntheticText.English(i, 50))));
            File.WriteAllText(Path.Combine(corpus, "zh.txt"), string.Join("\n\n", Enumerable.Range(0, 240).Select(i => SyntheticText.Chinese(i + 10_000, 70))));
            var data = Path.Combine(root, "data");
            var tokenizer = TextTokenizer.Load(tokenizerPath);
            CorpusPreparer.Run(new PrepareOptions
            {
                Sources =
                [
                    new SourceSpec { Name = "en-web", Tag = "en", Files = [Path.Combine(corpus, "en.txt")] },
                    new SourceSpec { Name = "zh-web", Tag = "zh", Files = [Path.Combine(corpus, "zh.txt")] },
                ],
                OutputDir = data, TokenizerPath = tokenizerPath, ValidationFraction = 0.1, Cleaning = new CleaningOptions { NearDedup = false },
            }, tokenizer);
            var baseDir = Path.Combine(root, "base");
            Directory.CreateDirectory(baseDir);
            (Flavors.Get("debug") with { VocabSize = tokenizer.VocabSize, MaxPositionEmbeddings = 128 }).Save(Path.Combine(baseDir, "config.json"));
            var specPath = Path.Combine(root, "sweep.yaml");
            File.WriteAllText(specPath, $"""
                base_checkpoint: {baseDir}
                proxy_parameters: 20000000
                data:
                  dir: {data}
                  seq_len: 32
                  original: [en-web]
                  additional: [zh-web]
                {RunnerTests.Grid(5, 5)}
                """);
            var sweep = Path.Combine(root, "sweep");
            SweepRunner.Run(SweepSpec.Load(specPath), sweep, new RunnerOptions { Executor = new FakeExecutor() });
            SweepFit.Run(sweep, bootstrap: 0);
            var target = Path.Combine(root, "Llama-3-70B");
            Directory.CreateDirectory(target);
            Flavors.Get("Llama-3-70B").Save(Path.Combine(target, "config.json"));
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
                File.Copy(Path.Combine(RepoPaths.Llama3TokenizerDir, f), Path.Combine(target, f));
            _llama3 = (sweep, target);
            return (sweep, target);
        }
    }
}
