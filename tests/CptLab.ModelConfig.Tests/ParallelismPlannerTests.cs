using System.Globalization;
using System.Text;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Parallelism;
using Xunit.Abstractions;

namespace CptLab.ModelConfig.Tests;

/// <summary>
/// The parallelism planner against published figures. Sources, all read for this test (none invented):
/// - ZeRO (Rajbhandari et al. 2020, arXiv 1910.02054, §3.1): mixed-precision Adam keeps 16 bytes per parameter
///   (fp16 weights 2, fp16 gradients 2, fp32 master weights, momentum and variance 12).
/// - Megatron-LM docs/user-guide/features/dist_optimizer.md (NVIDIA/Megatron-LM d98e8a6): bf16 parameters with fp32
///   gradients take 18 bytes per parameter, 6 + 12/d with the distributed optimizer over d data-parallel ranks.
/// - Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", arXiv 2205.05198),
///   Table 2: activation bytes per layer s·b·h·(34 + 5·a·s/h); with tensor and sequence parallelism
///   s·b·h·(34/t + 5·a·s/(h·t)); with selective recomputation s·b·h·34/t; full recomputation 2·s·b·h.
/// - Megatron-LM's CI memory measurements on DGX H100 (tests/functional_tests/test_cases/gpt/gpt3_7b_tp1_pp4_memory_speed
///   and gpt3_7b_tp4_pp1_memory_speed, golden_values_dev_dgx_h100.json, recipe tests/test_utils/recipes/h100/gpt.yaml:
///   1 node, 8 GPUs): torch.cuda memory allocated after a step and its peak, logged by the last rank.
/// - NeMo's H100 recommended configs (NVIDIA-NeMo/NeMo 8cfedd7, scripts/performance/recommended_model_configs/
///   model_configs_h100.csv): pre-training Llama-3-70B bf16 on 64 GPUs, sequence 8192: TP 4, PP 4, CP 2, VP 5,
///   micro-batch 1, global batch 128; Llama-3-8B bf16 on 8 GPUs: TP 1, PP 1, CP 2, micro-batch 1, global batch 128.
///   The NeMo recipes nemo/collections/llm/recipes/llama3_70b.py (TP 4, PP 4, VP 5, CP 2, SP) and the 70B fine-tuning
///   recipe (TP 8, PP 4) agree.
/// Not found: a published per-GPU memory figure measured for Llama-3-8B or -70B themselves; the Megatron CI runs are the
/// nearest measured figures (a 7B with Llama-3-8B's width, depth, GQA and sequence, but GeLU, LayerNorm, biases, dropout).
/// </summary>
public class ParallelismPlannerTests(ITestOutputHelper output)
{
    static readonly LlamaConfig L8 = Flavors.Get("Llama-3-8B");
    static readonly LlamaConfig L70 = Flavors.Get("Llama-3-70B");
    const double GB = 1e9;

    static ClusterSpec H100(int gpus) => new(gpus, GpuMemoryGiB: 80);

    // ---------------------------------------------------------------- static memory: bytes per parameter

    [Theory]
    [InlineData("Llama-3-8B", 1)]
    [InlineData("Llama-3-8B", 8)]
    [InlineData("Llama-3-70B", 64)]
    public void Weights_gradients_and_optimizer_are_Megatron_bytes_per_parameter(string flavor, int dp)
    {
        var model = Flavors.Get(flavor);
        var shape = TransformerShape.FromLlama(model);
        // TP 1, PP 1: one stage holds every parameter; 128,256 is a multiple of 128, so no vocabulary padding.
        var layout = new Layout(1, 1, dp, 1, null, false, DistributedOptimizer: true, "none", 1, 1);
        var stage = Assert.Single(MemoryModel.Stages(shape, layout, 8192));
        double parameters = ModelMath.ParameterCount(model); // counted independently of the memory model
        double staticBytes = stage.Weights + stage.Gradients + stage.Optimizer;
        Assert.Equal(6 + 12.0 / dp, staticBytes / parameters, 9); // dist_optimizer.md: 6 + 12/d
        var plain = Assert.Single(MemoryModel.Stages(shape, layout with { DistributedOptimizer = false }, 8192));
        Assert.Equal(18, (plain.Weights + plain.Gradients + plain.Optimizer) / parameters, 9); // 16 (ZeRO) + 2: fp32 grads
        Assert.Equal(12, plain.Optimizer / parameters, 9); // ZeRO's K = 12
    }

    [Fact]
    public void Parameter_counts_are_the_published_sizes()
    {
        // Meta's model cards: 8.03B and 70.6B parameters.
        Assert.Equal(8.03e9, ModelMath.ParameterCount(L8), 0.01e9);
        Assert.Equal(70.55e9, ModelMath.ParameterCount(L70), 0.01e9);
    }

    // ---------------------------------------------------------------- activations: Korthikanti et al. Table 2

    // GPT-3 175B (the paper's Table 3): h 12288, a 96, s 2048; GeLU MLP 4h, dropout 0.1, no GQA.
    static readonly TransformerShape Gpt175B = new(96, 12288, 4 * 12288, GatedMlp: false, 96, 96, 128, 51200,
        TiedEmbeddings: true, Biases: true, LayerNorm: true, Dropout: true);

    [Theory]
    [InlineData(1, false, "none")]
    [InlineData(8, false, "none")]
    [InlineData(8, true, "none")]
    [InlineData(8, true, "selective")]
    public void Layer_activations_follow_Korthikanti_table_2(int t, bool sp, string recompute)
    {
        int s = 2048, a = 96, h = 12288;
        var layout = new Layout(t, 1, 1, 1, null, sp, true, recompute, 1, 1);
        double perToken = MemoryModel.LayerBytesPerToken(Gpt175B, layout, s, flashAttention: false);
        double scores = recompute == "selective" ? 0 : 5.0 * a * s / h;
        double expected = h * (sp ? (34 + scores) / t : 10 + (24 + scores) / t); // s·b·h·(…) per token: b = s = 1
        Assert.Equal(expected, perToken, 6);
    }

    [Fact]
    public void Llama_layer_activations_adapt_the_formula_to_GQA_and_SwiGLU()
    {
        // Per token, bytes, Llama-3-8B (h 4096, q 4096, kv 8·128 = 1024, f 14336), TP 1, flash attention:
        // two norms' input and output 8h = 32768; Q 2q + K, V 4kv + attention output 2q = 8192 + 4096 + 8192;
        // SwiGLU gate and up 4f + product 2f = 86016. Total 139264 = 34h (by coincidence Korthikanti's 34).
        var layout = new Layout(1, 1, 1, 1, null, false, true, "none", 1, 1);
        Assert.Equal(139264, MemoryModel.LayerBytesPerToken(TransformerShape.FromLlama(L8), layout, 8192, true));
        // 70B at TP 8 with sequence parallelism: (8·8192 + 4·8192 + 4·1024 + 6·28672) / 8 = 274432 / 8 = 34304.
        Assert.Equal(34304, MemoryModel.LayerBytesPerToken(TransformerShape.FromLlama(L70), layout with { TensorParallel = 8, SequenceParallel = true }, 8192, true));
    }

    [Fact]
    public void Full_recompute_keeps_layer_inputs_and_one_layer()
    {
        var shape = TransformerShape.FromLlama(L8);
        var none = new Layout(1, 1, 8, 1, null, false, true, "none", 1, 1);
        var full = none with { Recompute = "full" };
        double a0 = Assert.Single(MemoryModel.Stages(shape, none, 8192)).Activations;
        double a1 = Assert.Single(MemoryModel.Stages(shape, full, 8192)).Activations;
        double logitsAndIds = 8192 * (4.0 * 128256 + 2 * 4096) + 8192 * 8;
        Assert.Equal(32 * 139264.0 * 8192 + logitsAndIds, a0, 0);
        Assert.Equal(32 * 2 * 4096.0 * 8192 + 139264.0 * 8192 + logitsAndIds, a1, 0); // Table 2: 2sbh per layer
    }

    // ---------------------------------------------------------------- measured: Megatron-LM CI on DGX H100

    // gpt3_7b_*_memory_speed: 32 layers, h 4096, 32 heads, 8 query groups, ffn 4h (GeLU), untied, vocab 131073,
    // LayerNorm, biases, dropout 0.1, Transformer Engine (fused attention), bf16, distributed optimizer, seq 8192.
    static readonly TransformerShape MegatronCi7B = new(32, 4096, 16384, GatedMlp: false, 32, 8, 128, 131073,
        TiedEmbeddings: false, Biases: true, LayerNorm: true, Dropout: true);

    [Theory]
    // TP 1, PP 4, 1 layer per virtual stage (v = 8), micro-batch 1, global batch 8 on 8 GPUs: DP 2, 4 micro-batches.
    [InlineData(1, 4, 8, 1, 24_808_996_864.0, 60_720_852_992.0)]
    // TP 4, PP 1, micro-batch 2, global batch 8: DP 2, 2 micro-batches; no sequence parallelism.
    [InlineData(4, 1, 0, 2, 20_663_519_232.0, 57_143_791_616.0)]
    public void Matches_Megatron_CI_memory_measured_on_H100(int tp, int pp, int vp, int mbs, double allocated, double peak)
    {
        int dp = 8 / (tp * pp), m = 8 / (mbs * dp);
        var layout = new Layout(tp, pp, dp, 1, vp == 0 ? null : vp, SequenceParallel: false, true, "none", mbs, m);
        // The figures are logged by the last rank (Megatron's tensorboard writer is rank world_size − 1): the last stage.
        var last = MemoryModel.Stages(MegatronCi7B, layout, 8192)[^1];
        double staticBytes = last.Weights + last.Gradients + last.Optimizer;
        output.WriteLine($"TP {tp} PP {pp}: static {staticBytes / GB:0.00} GB vs allocated {allocated / GB:0.00}; peak {last.Total / GB:0.00} GB vs {peak / GB:0.00}");
        // Stated margin: within 10% of both the steady allocation and the peak.
        Assert.InRange(staticBytes / allocated, 0.90, 1.10);
        Assert.InRange(last.Total / peak, 0.90, 1.10);
    }

    // ---------------------------------------------------------------- published recipes run, so they must fit

    [Theory]
    [InlineData("Llama-3-70B", 64, 4, 4, 2, 5, 128)]
    [InlineData("Llama-3-8B", 8, 1, 1, 2, 0, 128)]
    public void NeMo_H100_recipes_fit_in_80GB_before_the_margin(string flavor, int gpus, int tp, int pp, int cp, int vp, int gbs)
    {
        var shape = TransformerShape.FromLlama(Flavors.Get(flavor));
        int dp = gpus / (tp * pp * cp);
        var layout = new Layout(tp, pp, dp, cp, vp == 0 ? null : vp, tp > 1, true, "none", 1, gbs / dp);
        double peak = MemoryModel.Stages(shape, layout, 8192).Max(s => s.Total) / MemoryModel.GiB;
        output.WriteLine($"{flavor} NeMo layout: {peak:0.0} GiB before the margin");
        Assert.InRange(peak, 30, 81559.0 / 1024); // an H100-80GB reports 81,559 MiB
    }

    // ---------------------------------------------------------------- the planner's choices

    public static TheoryData<int> Clusters => [8, 16, 64, 256, 512];

    [Theory]
    [MemberData(nameof(Clusters))]
    public void Llama3_8B_gets_a_recipe_like_layout(int gpus)
    {
        var plan = ParallelismPlanner.Plan(L8, H100(gpus), 8192, 512, 100_000_000_000);
        Assert.InRange(plan.TensorParallel, 1, 2); // NeMo / Megatron 8B: TP 1–2, no pipeline
        Assert.Equal(1, plan.PipelineParallel);
        Assert.Equal("none", plan.Recompute);
        CheckGeometry(plan, gpus, 512);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(256)]
    [InlineData(512)]
    public void Llama3_70B_gets_TP8_and_a_pipeline(int gpus)
    {
        var plan = ParallelismPlanner.Plan(L70, H100(gpus), 8192, 512, 100_000_000_000);
        Assert.Equal(8, plan.TensorParallel);
        Assert.True(plan.PipelineParallel >= 2, $"PP {plan.PipelineParallel}");
        Assert.True(plan.SequenceParallel);
        Assert.True(plan.DistributedOptimizer);
        CheckGeometry(plan, gpus, 512);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void Llama3_70B_on_one_or_two_nodes_is_refused_with_the_smallest_cluster(int gpus)
    {
        var e = Assert.Throws<CptLabException>(() => ParallelismPlanner.Plan(L70, H100(gpus), 8192, 512, 100_000_000_000));
        Assert.Contains("too small", e.Message);
        Assert.Contains("GiB per GPU, 80 GiB available", e.Message);
        Assert.Contains("smallest cluster of 80-GiB GPUs that fits is 32 GPUs", e.Message);
        // …and it is: 32 GPUs plan, 24 do not.
        Assert.Throws<CptLabException>(() => ParallelismPlanner.Plan(L70, H100(24), 8192, 96, 1_000_000));
        var at32 = ParallelismPlanner.Plan(L70, H100(32), 8192, 512, 1_000_000);
        Assert.Equal(8, at32.TensorParallel);
    }

    [Fact]
    public void Llama3_70B_on_one_GPU_is_refused()
    {
        var e = Assert.Throws<CptLabException>(() => ParallelismPlanner.Plan(L70, new ClusterSpec(1, 80, GpusPerNode: 8), 8192, 8, 1_000_000));
        Assert.Contains("1 GPUs of 80 GiB are too small for a 70.6B-parameter model", e.Message);
        // The leanest layout on one GPU is TP 1 · PP 1 with full recompute: 18 bytes per parameter alone is 1,183 GiB.
        Assert.Contains("TP 1 · PP 1 · CP 1, recompute full", e.Message);
        Assert.Contains("is 32 GPUs", e.Message);
    }

    static void CheckGeometry(ParallelismPlan plan, int gpus, int gbs)
    {
        Assert.Equal(gpus, plan.DataParallel * plan.TensorParallel * plan.PipelineParallel * plan.ContextParallel);
        Assert.Equal(0, gbs % (plan.MicroBatchSize * plan.DataParallel));
        Assert.Equal(gbs, plan.GradientAccumulationSteps * plan.MicroBatchSize * plan.DataParallel);
        Assert.True(plan.PerGpu.TotalGiB <= 80, $"{plan.PerGpu.TotalGiB} GiB");
        Assert.Equal(plan.TensorParallel > 1, plan.SequenceParallel);
        Assert.NotEmpty(plan.Reasons);
    }

    // ---------------------------------------------------------------- throughput and time

    [Fact]
    public void Throughput_is_peak_times_MFU_over_FLOPs_with_the_bubble()
    {
        // Training FLOPs per token, computed here from the shapes: 6 × matmul weights + 12 · L · a · d · s (PaLM).
        double matmul70 = 80 * (8192.0 * (8192 + 2 * 1024) + 8192.0 * 8192 + 3 * 8192.0 * 28672) + 128256.0 * 8192;
        double flops70 = 6 * matmul70 + 12.0 * 80 * 64 * 128 * 8192;
        var plan = ParallelismPlanner.Plan(L70, H100(256), 8192, 512, 100_000_000_000);
        int v = plan.VirtualPipelineStages ?? 1;
        double bubble = (plan.PipelineParallel - 1.0) / (v * plan.GradientAccumulationSteps);
        double expected = 256 * 989e12 * 0.40 / flops70 / (1 + bubble);
        Assert.Equal(expected, plan.TokensPerSecond, expected * 1e-9);
        Assert.Equal(1e11 / expected, plan.WallTime.TotalSeconds, 1e-3);
        // A sanity figure: 481 GFLOP per token, so about 210k tokens/s on 256 H100s at 40% MFU: 100B tokens in 5.5 days.
        Assert.InRange(flops70, 4.80e11, 4.83e11);
        Assert.InRange(plan.TokensPerSecond, 200_000, 220_000);
    }

    // ---------------------------------------------------------------- inputs and output

    [Theory]
    [InlineData(0, 8, 512, "positive GPU count")]
    [InlineData(12, 8, 512, "not a whole number of 8-GPU nodes")]
    [InlineData(64, 8, 0, "global batch 0 must be positive")]
    // 1,024 GPUs and a batch of 1 would need DP 1, i.e. TP·PP·CP = 1,024 > 8 · 32 · 2 (CP keeps ≥ 4,096 tokens per rank).
    [InlineData(1024, 8, 1, "must be a multiple of micro-batch · data parallel")]
    public void Bad_input_is_a_user_error(int gpus, int perNode, int gbs, string message)
    {
        var e = Assert.Throws<CptLabException>(() => ParallelismPlanner.Plan(L8, new ClusterSpec(gpus, 80, perNode), 8192, gbs, 1_000_000));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Describe_prints_the_memory_table_and_the_reasons()
    {
        var plan = ParallelismPlanner.Plan(L70, H100(256), 8192, 512, 100_000_000_000);
        string text = ParallelismPlanner.Describe(plan);
        output.WriteLine(text);
        var m = plan.PerGpu;
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"weights (bf16)                               {m.WeightsGiB,7:0.0}"), text);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"total                                        {m.TotalGiB,7:0.0} of 80"), text);
        Assert.Contains("tensor 8 · pipeline", text);
        Assert.Contains("distributed optimizer (ZeRO-1)", text);
        Assert.Equal(m.WeightsGiB + m.GradientsGiB + m.OptimizerGiB + m.ActivationsGiB + m.OverheadGiB, m.TotalGiB, 9);
        Assert.Equal(2 * m.WeightsGiB, m.GradientsGiB, 9); // fp32 main grads are twice the bf16 weights
    }

    // ---------------------------------------------------------------- the table in docs/parallelism.md

    [Fact]
    public void Docs_table_is_what_the_planner_prints()
    {
        string table = DocsTable();
        output.WriteLine(table);
        string docs = File.ReadAllText(Path.Combine(RepoRoot(), "docs", "parallelism.md")).ReplaceLineEndings("\n");
        Assert.True(docs.Contains(table), "docs/parallelism.md's table is stale; replace it with:\n" + table);
    }

    /// <summary>Llama-3-8B and -70B on 8…512 H100-80GB, sequence 8192, global batch 512, 100B tokens, MFU 40%.</summary>
    internal static string DocsTable()
    {
        var sb = new StringBuilder();
        sb.Append("| model | GPUs | TP | PP | VP | CP | DP | SP | recompute | micro-batch | weights | grads | optimizer | activations | overhead | total GiB | tokens/s | 100B tokens |\n");
        sb.Append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        foreach (var (name, model) in new[] { ("Llama-3-8B", L8), ("Llama-3-70B", L70) })
        foreach (int gpus in new[] { 8, 16, 64, 256, 512 })
        {
            ParallelismPlan p;
            try { p = ParallelismPlanner.Plan(model, H100(gpus), 8192, 512, 100_000_000_000); }
            catch (CptLabException e)
            {
                string smallest = System.Text.RegularExpressions.Regex.Match(e.Message, @"fits is (\d+) GPUs").Groups[1].Value;
                sb.Append(string.Create(CultureInfo.InvariantCulture, $"| {name} | {gpus} | refused: does not fit; the smallest cluster that does is {smallest} GPUs |||||||||||||||||\n"));
                continue;
            }
            var m = p.PerGpu;
            sb.Append(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {gpus} | {p.TensorParallel} | {p.PipelineParallel} | {(p.VirtualPipelineStages is { } v ? v.ToString(CultureInfo.InvariantCulture) : "–")} | {p.ContextParallel} | {p.DataParallel} | {(p.SequenceParallel ? "on" : "off")} | {p.Recompute} | {p.MicroBatchSize} | {m.WeightsGiB:0.0} | {m.GradientsGiB:0.0} | {m.OptimizerGiB:0.0} | {m.ActivationsGiB:0.0} | {m.OverheadGiB:0.0} | {m.TotalGiB:0.0} | {p.TokensPerSecond:N0} | {Days(p.WallTime)} |\n"));
        }
        return sb.ToString();
    }

    static string Days(TimeSpan t) => string.Create(CultureInfo.InvariantCulture, $"{t.TotalDays:0.0} days");

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CptLab.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no CptLab.slnx above {AppContext.BaseDirectory}");
    }
}
