using System.Globalization;
using System.Text;
using CptLab.Core;

namespace CptLab.Model.Parallelism;

/// <summary>
/// Chooses a Megatron-LM layout (tensor, pipeline, context and data parallel sizes, sequence parallelism, the
/// distributed optimizer, activation recomputation, micro-batch, virtual pipeline stages) for a model on a cluster,
/// from <see cref="MemoryModel"/>, and estimates its throughput.
///
/// Rules (each one a line in the plan's reasons):
/// - TP ≤ GPUs per node (tensor parallelism all-reduces twice per layer, forward and backward: it needs NVLink) and
///   TP divides the attention heads and the query groups. Sequence parallelism is on whenever TP > 1.
/// - PP divides the layer count (even stages; Megatron's uneven --decoder-first/last-pipeline-num-layers are not used).
/// - CP (context parallelism) splits the sequence; the sequence must be a multiple of 2·CP (Megatron's load balancing)
///   and each rank keeps at least <see cref="MinTokensPerContextRank"/> tokens (shorter chunks leave the attention
///   kernels and the K/V exchange latency-bound), so CP is a lever for long sequences: at most 2 at 8,192.
/// - DP = GPUs / (TP·PP·CP); the global batch must be a multiple of micro-batch · DP.
/// - The distributed optimizer (ZeRO-1 over DP·CP) is always on, as in the Megatron and NeMo Llama recipes.
/// - Attention is taken to be flash/fused (Megatron's default with Transformer Engine), so the attention scores are
///   never stored and selective recomputation saves nothing: recompute is "none" or, if nothing else fits, "full".
/// - Micro-batch: the largest of 8, 4, 2, 1 with micro-batch · sequence ≤ 8,192 tokens (a GEMM of 8k rows already runs
///   near peak) that fits and divides the batch.
/// - Virtual pipeline stages when PP > 1: chunks of the smallest layer count ≥ 4 that divides the stage (70B, PP 4:
///   5 chunks of 4 layers, NeMo's recipe), if the micro-batches per step are a multiple of PP (the interleaved schedule's
///   requirement).
/// Preference among layouts that fit, in order: (1) no full recomputation (it costs a third more compute: an extra
/// forward pass); (2) the smallest model-parallel group M = TP·PP·CP (Narayanan et al. 2021, "Efficient Large-Scale
/// Language Model Training on GPU Clusters Using Megatron-LM", takeaway 2: use just enough model parallelism to fit
/// and data parallelism for the rest — DP communicates once per step and overlaps with compute); (3) within one M, the
/// larger TP (takeaway 1: tensor parallelism up to the node size, pipeline across nodes), then no CP; (4) the higher
/// estimated throughput (smaller pipeline bubble); (5) the larger micro-batch.
/// </summary>
public static class ParallelismPlanner
{
    /// <summary>CUDA context, NCCL communicators and buffers, cuBLAS / Transformer Engine workspaces.</summary>
    public const double FixedOverheadGiB = 3.0;

    /// <summary>The caching allocator's fragmentation and reserve, as a share of what the run allocates.</summary>
    public const double FragmentationFraction = 0.10;

    /// <summary>Micro-batch · sequence at or above which a larger micro-batch is not tried.</summary>
    public const int MicroBatchTokenTarget = 8192;

    /// <summary>Full recomputation runs every layer's forward twice: 8 instead of 6 FLOPs per parameter and token.</summary>
    public const double FullRecomputeSlowdown = 4.0 / 3.0;

    /// <summary>The shortest sequence chunk a context-parallel rank is given.</summary>
    public const int MinTokensPerContextRank = 4096;

    const int MaxClusterSearched = 65536;

    public static ParallelismPlan Plan(LlamaConfig model, ClusterSpec cluster, int seqLength, int globalBatchSize, long tokens)
    {
        model.Validate("model");
        Check(cluster, seqLength, globalBatchSize, tokens);
        var shape = TransformerShape.FromLlama(model);
        var feasible = Candidates(shape, cluster, seqLength, globalBatchSize)
            .Where(c => c.Fits).ToList();
        if (feasible.Count == 0)
            throw TooSmall(model, shape, cluster, seqLength, globalBatchSize);

        var best = feasible.OrderBy(c => c, Preference.Instance).First();
        var tps = TokensPerSecond(model, cluster, seqLength, best.Layout);
        var reasons = Reasons(model, shape, cluster, seqLength, globalBatchSize, tokens, best, tps);
        var l = best.Layout;
        return new ParallelismPlan(l.TensorParallel, l.PipelineParallel, l.DataParallel, l.ContextParallel,
            l.VirtualPipelineStages, l.SequenceParallel, l.DistributedOptimizer, l.Recompute, l.MicroBatchSize,
            l.MicroBatchesPerPipeline, best.Memory, tps, TimeSpan.FromSeconds(tokens / tps), cluster, reasons);
    }

    /// <summary>The plan as printed by <c>sweep plan</c>: layout, the memory table, throughput, and why.</summary>
    public static string Describe(ParallelismPlan plan)
    {
        var c = plan.Cluster;
        var m = plan.PerGpu;
        var sb = new StringBuilder();
        sb.AppendLine(F($"Parallelism plan for {c.Gpus} GPUs of {c.GpuMemoryGiB:0.#} GiB ({c.GpusPerNode} per node, {c.PeakTflops:0} TFLOP/s bf16 peak)"));
        sb.AppendLine(F($"  tensor {plan.TensorParallel} · pipeline {plan.PipelineParallel}{(plan.VirtualPipelineStages is { } v ? F($" (virtual {v})") : "")} · context {plan.ContextParallel} · data {plan.DataParallel}"));
        sb.AppendLine(F($"  sequence parallel {OnOff(plan.SequenceParallel)}, distributed optimizer {OnOff(plan.DistributedOptimizer)}, recompute {plan.Recompute}"));
        sb.AppendLine(F($"  micro-batch {plan.MicroBatchSize}, {plan.GradientAccumulationSteps} micro-batches per step per pipeline"));
        sb.AppendLine("  memory per GPU, most loaded pipeline stage (GiB):");
        sb.AppendLine(F($"    weights (bf16)                               {m.WeightsGiB,7:0.0}"));
        sb.AppendLine(F($"    gradients (fp32 main grads)                  {m.GradientsGiB,7:0.0}"));
        sb.AppendLine(F($"    optimizer (fp32 master + Adam m, v)          {m.OptimizerGiB,7:0.0}"));
        sb.AppendLine(F($"    activations (micro-batches in flight)        {m.ActivationsGiB,7:0.0}"));
        sb.AppendLine(F($"    overhead ({FixedOverheadGiB:0} GiB + {FragmentationFraction:P0} fragmentation)         {m.OverheadGiB,7:0.0}"));
        sb.AppendLine(F($"    total                                        {m.TotalGiB,7:0.0} of {c.GpuMemoryGiB:0.#}"));
        sb.AppendLine(F($"  estimated {plan.TokensPerSecond:N0} tokens/s at MFU {c.Mfu:P0}; wall time {Duration(plan.WallTime)}"));
        sb.AppendLine("  why:");
        foreach (var r in plan.Reasons)
            sb.AppendLine("    - " + r);
        return sb.ToString();
    }

    /// <summary>One layout with its memory; <see cref="Fits"/> when the total with overhead is within the GPU.</summary>
    internal sealed record Candidate(Layout Layout, MemoryEstimate Memory, StageBytes Peak, double TokensPerSecondFactor, bool Fits);

    internal static IEnumerable<Candidate> Candidates(TransformerShape shape, ClusterSpec cluster, int seqLength, int? globalBatchSize)
    {
        int g = cluster.Gpus;
        foreach (int tp in Powers(Math.Min(cluster.GpusPerNode, g)))
        {
            if (cluster.GpusPerNode % tp != 0 || shape.Heads % tp != 0 || shape.QueryGroups % tp != 0) continue;
            foreach (int pp in Divisors(shape.Layers))
            foreach (int cp in Powers(g))
            {
                if (g % (tp * pp * cp) != 0) continue;
                if (cp > 1 && (seqLength % (2 * cp) != 0 || seqLength / cp < MinTokensPerContextRank)) continue;
                int dp = g / (tp * pp * cp);
                foreach (string recompute in (string[])["none", "full"])
                foreach (int mbs in MicroBatches(seqLength))
                {
                    int m;
                    if (globalBatchSize is { } gbs)
                    {
                        if (gbs % (mbs * dp) != 0) continue;
                        m = gbs / (mbs * dp);
                    }
                    else m = Math.Max(pp, 1) * 4; // memory-only search: enough micro-batches to fill the pipeline
                    int? vp = Virtual(shape.Layers, pp, m);
                    var layout = new Layout(tp, pp, dp, cp, vp, SequenceParallel: tp > 1, DistributedOptimizer: true, recompute, mbs, m);
                    var (memory, peak) = Estimate(shape, layout, seqLength);
                    bool fits = memory.TotalGiB <= cluster.GpuMemoryGiB;
                    yield return new Candidate(layout, memory, peak, Efficiency(layout), fits);
                    if (fits) break; // the largest micro-batch that fits; smaller ones are worse
                }
            }
        }
    }

    /// <summary>Memory of the most loaded stage with the overhead margin.</summary>
    internal static (MemoryEstimate Memory, StageBytes Peak) Estimate(TransformerShape shape, Layout layout, int seqLength)
    {
        var peak = MemoryModel.Stages(shape, layout, seqLength).MaxBy(s => s.Total)!;
        double rest = peak.Total / MemoryModel.GiB;
        var memory = new MemoryEstimate(peak.Weights / MemoryModel.GiB, peak.Gradients / MemoryModel.GiB,
            peak.Optimizer / MemoryModel.GiB, peak.Activations / MemoryModel.GiB, FixedOverheadGiB + FragmentationFraction * rest);
        return (memory, peak);
    }

    /// <summary>Share of the assumed MFU the layout keeps: the pipeline bubble (PP − 1)/(v·m) and full recomputation.</summary>
    internal static double Efficiency(Layout l)
    {
        int v = l.VirtualPipelineStages ?? 1;
        double bubble = (l.PipelineParallel - 1) / ((double)v * l.MicroBatchesPerPipeline);
        return 1.0 / (1 + bubble) / (l.Recompute == "full" ? FullRecomputeSlowdown : 1);
    }

    static double TokensPerSecond(LlamaConfig model, ClusterSpec cluster, int seqLength, Layout layout) =>
        cluster.Gpus * cluster.PeakTflops * 1e12 * cluster.Mfu / ModelMath.TrainingFlopsPerToken(model, seqLength) * Efficiency(layout);

    sealed class Preference : IComparer<Candidate>
    {
        public static readonly Preference Instance = new();

        public int Compare(Candidate? a, Candidate? b)
        {
            var x = a!.Layout; var y = b!.Layout;
            int c = Rank(x.Recompute).CompareTo(Rank(y.Recompute));
            if (c == 0) c = ModelParallel(x).CompareTo(ModelParallel(y));
            if (c == 0) c = y.TensorParallel.CompareTo(x.TensorParallel);
            if (c == 0) c = x.ContextParallel.CompareTo(y.ContextParallel);
            if (c == 0) c = b.TokensPerSecondFactor.CompareTo(a.TokensPerSecondFactor);
            if (c == 0) c = y.MicroBatchSize.CompareTo(x.MicroBatchSize);
            return c;
        }

        static int Rank(string recompute) => recompute switch { "none" => 0, "selective" => 1, _ => 2 };
    }

    static int ModelParallel(Layout l) => l.TensorParallel * l.PipelineParallel * l.ContextParallel;

    static IReadOnlyList<string> Reasons(LlamaConfig model, TransformerShape shape, ClusterSpec cluster, int seqLength,
        int globalBatchSize, long tokens, Candidate best, double tps)
    {
        var l = best.Layout;
        var r = new List<string>();
        long tokensPerStep = (long)seqLength * globalBatchSize;
        r.Add(F($"geometry: sequence {seqLength:N0}, global batch {globalBatchSize:N0} sequences = {tokensPerStep:N0} tokens per step; {tokens:N0} tokens = {Math.Ceiling(tokens / (double)tokensPerStep):N0} steps; model {ModelMath.ParameterCount(model) / 1e9:0.00}B parameters"));
        if (seqLength > model.MaxPositionEmbeddings)
            r.Add(F($"warning: sequence {seqLength:N0} is longer than the model's max_position_embeddings {model.MaxPositionEmbeddings:N0}; the run extends the context"));

        int m = ModelParallel(l);
        var smaller = Candidates(shape, cluster, seqLength, globalBatchSize)
            .Where(c => c.Layout.Recompute == l.Recompute && ModelParallel(c.Layout) < m)
            .MinBy(c => c.Memory.TotalGiB);
        r.Add(smaller is null
            ? F($"model-parallel group TP·PP·CP = {m}: the smallest this cluster allows with recompute {l.Recompute}")
            : F($"model-parallel group TP·PP·CP = {m}: the smallest that fits with recompute {l.Recompute}; the best smaller one, TP {smaller.Layout.TensorParallel} · PP {smaller.Layout.PipelineParallel} · CP {smaller.Layout.ContextParallel}, needs {smaller.Memory.TotalGiB:0.0} GiB of {cluster.GpuMemoryGiB:0.#}"));
        r.Add(F($"tensor {l.TensorParallel}: ≤ {cluster.GpusPerNode} GPUs per node (its all-reduces need NVLink), divides {shape.Heads} heads and {shape.QueryGroups} query groups; within one model-parallel size the planner prefers TP up to the node before PP (Narayanan et al. 2021)"));
        r.Add(l.PipelineParallel == 1
            ? "pipeline 1: the model fits without splitting its layers, so no pipeline bubble"
            : F($"pipeline {l.PipelineParallel}: {shape.Layers / l.PipelineParallel} of {shape.Layers} layers per stage (even split; uneven first/last stages not used); the first stage also holds the embedding, the last the output layer"));
        if (l.PipelineParallel > 1)
        {
            int v = l.VirtualPipelineStages ?? 1;
            double bubble = (l.PipelineParallel - 1) / ((double)v * l.MicroBatchesPerPipeline);
            double plain = (l.PipelineParallel - 1) / (double)l.MicroBatchesPerPipeline;
            r.Add(l.VirtualPipelineStages is { } vp
                ? F($"virtual pipeline {vp} ({shape.Layers / (l.PipelineParallel * vp)} layers per chunk): bubble (PP−1)/(v·m) = {bubble:P1} instead of {plain:P1}, for {1 + (l.PipelineParallel - 1.0) / (l.PipelineParallel * vp):0.00}× activations on the first stage")
                : F($"no virtual pipeline ({l.MicroBatchesPerPipeline} micro-batches per step is not a multiple of PP {l.PipelineParallel}, or the stage has < 8 layers); bubble (PP−1)/m = {bubble:P1}"));
        }
        r.Add(l.ContextParallel == 1
            ? F($"context 1: sequence {seqLength:N0} fits without splitting it")
            : F($"context {l.ContextParallel}: the sequence is split over {l.ContextParallel} GPUs ({seqLength / l.ContextParallel:N0} tokens each), dividing activations by {l.ContextParallel}"));
        r.Add(F($"data {l.DataParallel} = {cluster.Gpus} GPUs ÷ (TP {l.TensorParallel} · PP {l.PipelineParallel} · CP {l.ContextParallel})"));
        r.Add(l.SequenceParallel
            ? "sequence parallelism on (TP > 1): the norm activations are split over the TP ranks too, at no extra communication (all-reduce becomes reduce-scatter + all-gather)"
            : "sequence parallelism off: it needs TP > 1");
        r.Add(F($"distributed optimizer (ZeRO-1): fp32 master weights and Adam m, v, 12 bytes per parameter, sharded over DP·CP = {l.DataParallel * l.ContextParallel} ranks; bf16 weights (2 bytes) and fp32 main gradients (4 bytes) stay whole"));
        r.Add(l.Recompute == "none"
            ? "recompute none: it fits without; flash/fused attention never stores the attention scores, so selective recomputation would save nothing"
            : F($"recompute full: nothing fits without it; every layer's forward runs again in the backward pass (×{FullRecomputeSlowdown:0.00} compute)"));
        r.Add(F($"micro-batch {l.MicroBatchSize}: the largest of 8, 4, 2, 1 with micro-batch · sequence ≤ {MicroBatchTokenTarget:N0} tokens that fits and divides the batch; {l.MicroBatchesPerPipeline} micro-batches per step per pipeline (gradient accumulation)"));
        r.Add(F($"memory: the {best.Peak.Stage} stage is the most loaded ({best.Peak.LayerMicroBatchesInFlight:0.#} layer·micro-batches of activations in flight); overhead {FixedOverheadGiB:0} GiB (CUDA context, NCCL buffers, workspaces) + {FragmentationFraction:P0} of the rest (allocator fragmentation)"));
        r.Add(F($"throughput: {cluster.Gpus} × {cluster.PeakTflops:0} TFLOP/s × MFU {cluster.Mfu:P0} ÷ {ModelMath.TrainingFlopsPerToken(model, seqLength):0.000e+0} FLOP/token (6N + attention at {seqLength:N0}) × {best.TokensPerSecondFactor:0.000} (pipeline bubble{(l.Recompute == "full" ? ", full recompute" : "")}) = {tps:N0} tokens/s"));
        return r;
    }

    static CptLabException TooSmall(LlamaConfig model, TransformerShape shape, ClusterSpec cluster, int seqLength, int globalBatchSize)
    {
        string what = F($"a {ModelMath.ParameterCount(model) / 1e9:0.0}B-parameter model at sequence {seqLength:N0}");
        var memoryOnly = Candidates(shape, cluster, seqLength, null).ToList();
        var least = memoryOnly.MinBy(c => c.Memory.TotalGiB);
        if (memoryOnly.Any(c => c.Fits))
        {
            var fitting = memoryOnly.Where(c => c.Fits).OrderBy(c => c, Preference.Instance).First().Layout;
            int dp = fitting.DataParallel;
            return new CptLabException(F($"no layout for {what} on {cluster.Gpus} GPUs divides the global batch {globalBatchSize}: it must be a multiple of micro-batch · data parallel (e.g. TP {fitting.TensorParallel} · PP {fitting.PipelineParallel} · CP {fitting.ContextParallel} fits with DP {dp}, so a multiple of {dp}); choose such a global batch (`sweep plan --global-batch`; the default is the proxies' own){(globalBatchSize < dp ? F($", and at least {dp} sequences") : "")}"));
        }
        string need = least is null
            ? "no layout divides this cluster"
            : F($"the leanest layout (TP {least.Layout.TensorParallel} · PP {least.Layout.PipelineParallel} · CP {least.Layout.ContextParallel}, recompute {least.Layout.Recompute}, micro-batch 1) needs {least.Memory.TotalGiB:0.0} GiB per GPU, {cluster.GpuMemoryGiB:0.#} GiB available");
        string smallest = "no cluster of up to 65,536 such GPUs fits it";
        foreach (int g in ClusterSizes(cluster.GpusPerNode))
        {
            if (g <= cluster.Gpus) continue;
            var c = cluster with { Gpus = g };
            var fit = Candidates(shape, c, seqLength, null).Where(x => x.Fits).OrderBy(x => x, Preference.Instance).FirstOrDefault();
            if (fit is null) continue;
            smallest = F($"the smallest cluster of {cluster.GpuMemoryGiB:0.#}-GiB GPUs that fits is {g} GPUs (TP {fit.Layout.TensorParallel} · PP {fit.Layout.PipelineParallel} · CP {fit.Layout.ContextParallel} · DP {fit.Layout.DataParallel}, recompute {fit.Layout.Recompute}, {fit.Memory.TotalGiB:0.0} GiB per GPU)");
            break;
        }
        return new CptLabException(F($"{cluster.Gpus} GPUs of {cluster.GpuMemoryGiB:0.#} GiB are too small for {what}: {need}; {smallest}. Use more GPUs (--gpus) or a shorter sequence."));
    }

    static void Check(ClusterSpec c, int seqLength, int globalBatchSize, long tokens)
    {
        if (c.Gpus <= 0) throw new CptLabException($"cluster: {c.Gpus} GPUs; give a positive GPU count (--gpus)");
        if (!(c.GpuMemoryGiB > 0)) throw new CptLabException($"cluster: GPU memory {c.GpuMemoryGiB} GiB; give a positive size (--gpu-memory)");
        if (c.GpusPerNode <= 0) throw new CptLabException($"cluster: {c.GpusPerNode} GPUs per node; give a positive count");
        if (c.Gpus > c.GpusPerNode && c.Gpus % c.GpusPerNode != 0)
            throw new CptLabException($"cluster: {c.Gpus} GPUs is not a whole number of {c.GpusPerNode}-GPU nodes; use a multiple of {c.GpusPerNode}");
        if (!(c.PeakTflops > 0)) throw new CptLabException($"cluster: peak {c.PeakTflops} TFLOP/s must be positive");
        if (!(c.Mfu > 0 && c.Mfu <= 1)) throw new CptLabException($"cluster: MFU {c.Mfu} must be in (0, 1]");
        if (seqLength <= 0) throw new CptLabException($"sequence length {seqLength} must be positive");
        if (globalBatchSize <= 0) throw new CptLabException($"global batch {globalBatchSize} must be positive");
        if (tokens <= 0) throw new CptLabException($"token budget {tokens} must be positive");
    }

    static int? Virtual(int layers, int pp, int microBatches)
    {
        if (pp == 1 || microBatches % pp != 0) return null;
        int stage = layers / pp;
        for (int chunk = 4; chunk * 2 <= stage; chunk++)
            if (stage % chunk == 0) return stage / chunk;
        return null;
    }

    static IEnumerable<int> MicroBatches(int seqLength)
    {
        foreach (int mbs in (int[])[8, 4, 2])
            if ((long)mbs * seqLength <= MicroBatchTokenTarget) yield return mbs;
        yield return 1;
    }

    static IEnumerable<int> Powers(int max)
    {
        for (int x = 1; x <= max; x *= 2) yield return x;
    }

    static IEnumerable<int> Divisors(int n)
    {
        for (int d = 1; d <= n; d++)
            if (n % d == 0) yield return d;
    }

    static IEnumerable<int> ClusterSizes(int perNode)
    {
        for (int g = 1; g < perNode; g *= 2) yield return g;
        for (int g = perNode; g <= MaxClusterSearched; g += perNode) yield return g;
    }

    static string Duration(TimeSpan t) =>
        t.TotalDays >= 2 ? F($"{t.TotalDays:0.0} days") : t.TotalHours >= 2 ? F($"{t.TotalHours:0.0} hours") : F($"{t.TotalMinutes:0} minutes");

    static string OnOff(bool b) => b ? "on" : "off";

    static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
