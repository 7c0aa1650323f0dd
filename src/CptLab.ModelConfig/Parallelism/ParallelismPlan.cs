namespace CptLab.Model.Parallelism;

/// <summary>The cluster a full-size run is planned for.</summary>
/// <param name="Gpus">GPUs in total.</param>
/// <param name="GpuMemoryGiB">Memory of one GPU (80 for H100-80GB).</param>
/// <param name="GpusPerNode">GPUs per node (tensor parallelism stays inside a node).</param>
/// <param name="PeakTflops">Dense bf16 peak of one GPU in TFLOP/s (H100 SXM: 989).</param>
/// <param name="Mfu">Model FLOPs utilisation assumed for the time estimate.</param>
public sealed record ClusterSpec(int Gpus, double GpuMemoryGiB, int GpusPerNode = 8, double PeakTflops = 989, double Mfu = 0.40);

/// <summary>Per-GPU memory of one configuration, in GiB.</summary>
public sealed record MemoryEstimate(double WeightsGiB, double GradientsGiB, double OptimizerGiB, double ActivationsGiB, double OverheadGiB)
{
    public double TotalGiB => WeightsGiB + GradientsGiB + OptimizerGiB + ActivationsGiB + OverheadGiB;
}

/// <summary>
/// Megatron-LM's parallel layout for one run: sizes, memory savers, micro-batch, and what it costs.
/// <see cref="Recompute"/> is "none", "selective" or "full" (Megatron's --recompute-granularity).
/// </summary>
public sealed record ParallelismPlan(
    int TensorParallel,
    int PipelineParallel,
    int DataParallel,
    int ContextParallel,
    int? VirtualPipelineStages,
    bool SequenceParallel,
    bool DistributedOptimizer,
    string Recompute,
    int MicroBatchSize,
    int GradientAccumulationSteps,
    MemoryEstimate PerGpu,
    double TokensPerSecond,
    TimeSpan WallTime,
    ClusterSpec Cluster,
    IReadOnlyList<string> Reasons);
