using System.Globalization;
using System.Text;
using CptLab.Core;
using CptLab.Data.Mixing;
using CptLab.Data.Prepare;
using CptLab.Model;
using CptLab.Model.Parallelism;
using CptLab.Training;

namespace CptLab.Sweep.ScaleOut;

/// <summary>
/// One row of the mapping: the train config keys it covers (a dotted path, or <c>sft.*</c> for a whole section), the
/// Megatron-LM flags it becomes and how; or, when <see cref="Emit"/> is null, why Megatron-LM cannot represent it.
/// </summary>
public sealed record MappingRow(IReadOnlyList<string> Keys, string Flags, string Transform, Func<MappingContext, IEnumerable<MegatronArg>>? Emit)
{
    public bool Representable => Emit is not null;

    public bool Covers(string keyPath) =>
        Keys.Any(k => k.EndsWith(".*", StringComparison.Ordinal) ? keyPath.StartsWith(k[..^1], StringComparison.Ordinal) : k == keyPath);
}

/// <summary>What the mapping reads: the full-size run's train config and what it points at, and the parallel layout.</summary>
public sealed class MappingContext
{
    internal MappingContext(TrainConfig config, string source, LlamaConfig model, BlendManifest blend, PrepareManifest shards, ParallelismPlan? parallelism)
    {
        (Config, Source, Model, Blend, Shards, Parallelism) = (config, source, model, blend, shards, parallelism);
        ValidationSources = [.. blend.Sources.Where(s => s.Share > 0 && shards.Source(s.Name).TokensValidation > 0)];
    }

    public TrainConfig Config { get; }
    /// <summary>The train config's file, named in errors.</summary>
    public string Source { get; }
    public LlamaConfig Model { get; }
    public BlendManifest Blend { get; }
    public PrepareManifest Shards { get; }
    public ParallelismPlan? Parallelism { get; }
    public int TensorParallel => Parallelism?.TensorParallel ?? 1;
    /// <summary>The blend's sources with a held-out split to validate on (a source too small to hold one out has none).</summary>
    public IReadOnlyList<BlendSource> ValidationSources { get; }
    public int GlobalBatchSize => (int)(Config.GlobalBatchTokens / Config.SeqLen);
    internal List<string> Deviations { get; } = [];
}

/// <summary>The launcher's Megatron-LM arguments and what the train config holds that they cannot carry.</summary>
public sealed record MegatronArguments(
    IReadOnlyList<MegatronArg> Args,
    IReadOnlyList<(string Key, string Reason)> NotRepresentable,
    IReadOnlyList<string> Deviations,
    IReadOnlyList<string> ShardPrefixes);

/// <summary>
/// The one mapping from a `cptlab train` config to Megatron-LM's <c>pretrain_gpt.py</c> arguments: every key of
/// <see cref="TrainConfig.KeyPaths"/> has a row here, either with the flags it becomes or with the reason Megatron-LM cannot
/// represent it (a test fails on a key without a row). Flag names and rules are those of Megatron-LM's
/// megatron/training/arguments.py at <see cref="MegatronVersions.MegatronLmCommit"/>; where a rule matters, the comment
/// names the function it is in. The full-size run is thus the same config for `cptlab train` and for the cluster.
/// </summary>
public static class MegatronMapping
{
    static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
    /// <summary>Round-trip precision: a blend weight rounded to 6 digits moves ~1e-6 of 100B tokens, far more than one sequence.</summary>
    static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    static MappingRow Row(string key, string flags, string transform, Func<MappingContext, IEnumerable<MegatronArg>> emit) => new([key], flags, transform, emit);
    static MappingRow Row(string[] keys, string flags, string transform, Func<MappingContext, IEnumerable<MegatronArg>> emit) => new(keys, flags, transform, emit);
    static MappingRow Not(string key, string reason) => new([key], "—", reason, null);
    static MappingRow Not(string[] keys, string reason) => new(keys, "—", reason, null);
    static IEnumerable<MegatronArg> One(string flag, params ShellWord[] values) => [new MegatronArg(flag, values)];
    static IEnumerable<MegatronArg> None => [];

    /// <summary>Every train config key, in the config's order.</summary>
    public static readonly IReadOnlyList<MappingRow> Rows =
    [
        Row("model.dtype", "--bf16", "auto or bfloat16 → --bf16 (bf16 compute, fp32 main weights and gradients); float32 → no flag (Megatron-LM computes in fp32 without --bf16/--fp16)",
            c => c.Config.ComputeDtype is "float32" ? None : One("--bf16")),
        Row(["model.flavor", "model.config", "model.init_from"],
            "--num-layers --hidden-size --ffn-hidden-size --num-attention-heads --group-query-attention --num-query-groups --kv-channels --max-position-embeddings --position-embedding-type --rotary-base --use-rope-scaling --rope-scaling-factor --normalization --norm-epsilon --swiglu --disable-bias-linear --untie-embeddings-and-output-weights --attention-dropout --hidden-dropout --make-vocab-size-divisible-by --transformer-impl",
            "the architecture of the model's config.json, field by field (see Architecture); the weights come from HF_BASE, converted by convert_in.sh (a planning-machine path is never written)",
            Architecture),
        Row("model.save_dtype", "convert_out.sh --torch-dtype", "the dtype Megatron-Bridge's export writes the final Hugging Face weights in (auto: bfloat16, what Bridge imported and trained)",
            _ => None),
        Row("model.tokenizer", "--tokenizer-type HuggingFaceTokenizer --tokenizer-model", "re-rooted to $TOKENIZER_MODEL (default $HF_BASE, the base checkpoint's tokenizer, which the shards were checked against when planning)",
            _ => [new("--tokenizer-type", "HuggingFaceTokenizer"), new("--tokenizer-model", ShellWord.Var("$TOKENIZER_MODEL"))]),

        Row("data.seq_len", "--seq-length", "as is (must not exceed max_position_embeddings)", SeqLength),
        Row("data.mixture", "--train-data-path --valid-data-path", "blend.json's shares as weight/prefix pairs (token shares: Megatron-LM's BlendedDataset draws fixed-length sequences by weight), prefixes re-rooted at $DATA_DIR; validation: the held-out shards at the same weights",
            DataPaths),

        Row("optimizer.lr", "--lr", "as is", c => One("--lr", D(c.Config.Lr))),
        Row("optimizer.beta1", "--adam-beta1", "as is (Megatron-LM's default 0.9)", c => One("--adam-beta1", D(c.Config.Beta1))),
        Row("optimizer.beta2", "--adam-beta2", "as is (Megatron-LM's default is 0.999, not the proxies' 0.95)", c => One("--adam-beta2", D(c.Config.Beta2))),
        Row("optimizer.eps", "--adam-eps", "as is", c => One("--adam-eps", D(c.Config.Eps))),
        Row("optimizer.weight_decay", "--weight-decay", "as is (Megatron-LM's default is 0.01)", c => One("--weight-decay", D(c.Config.WeightDecay))),
        Row("optimizer.decay_embeddings", "—", "true: Megatron-LM's own rule (decay on every weight of 2+ dimensions, embeddings included; none on norms and biases: megatron/core/optimizer/__init__.py); false: not representable, written as a deviation",
            DecayEmbeddings),
        Row("optimizer.grad_clip", "--clip-grad", "as is (0 = off in both)", c => One("--clip-grad", D(c.Config.GradClip))),

        Row("schedule.kind", "--lr-decay-style --lr-decay-iters", "cosine → cosine, wsd → WSD, constant → constant; decay over all train iterations", Schedule),
        Row("schedule.warmup_tokens", "--lr-warmup-iters", "⌈warmup_tokens / global_batch_tokens⌉ (the trainer's warmup steps)", c => One("--lr-warmup-iters", I(c.Config.WarmupSteps))),
        Row("schedule.min_lr_ratio", "--min-lr", "lr × min_lr_ratio", c => One("--min-lr", D(c.Config.Lr * c.Config.MinLrRatio))),
        Row("schedule.decay_fraction", "--lr-wsd-decay-iters", "WSD only: round(decay_fraction × train iterations), the trainer's decay steps (OptimizerParamScheduler asserts it is set for WSD)",
            c => c.Config.Schedule == ScheduleKind.Wsd ? One("--lr-wsd-decay-iters", I(WsdDecaySteps(c.Config))) : None),
        Row("schedule.anneal", "--lr-wsd-decay-style", "WSD only: linear → linear, cosine → cosine, one_minus_sqrt → minus_sqrt; exponential is refused (Megatron-LM's is 2·0.5^p − 1, not a geometric decay to min-lr)",
            WsdStyle),
        Row("schedule.warmup_init_lr", "--lr-warmup-init", "as is: the LR the re-warming starts from", c => One("--lr-warmup-init", D(c.Config.WarmupInitLr))),

        Row("batch.micro_batch_size", "--micro-batch-size", "the parallelism plan's micro-batch when there is one (it changes memory, not the optimizer step), else as is",
            c => One("--micro-batch-size", I(c.Parallelism?.MicroBatchSize ?? c.Config.MicroBatchSize))),
        Row("batch.global_batch_tokens", "--global-batch-size", "global_batch_tokens / seq_len sequences", GlobalBatch),
        Row("budget_tokens", "--train-iters", "budget_tokens / global_batch_tokens (the trainer's total steps)", c => One("--train-iters", I(c.Config.TotalSteps))),

        Row("eval.every_steps", "--eval-interval", "as is", c => One("--eval-interval", I(c.Config.EvalEverySteps))),
        Row("eval.max_sequences", "--eval-iters", "⌈max_sequences × validation sources / global batch⌉: as many held-out sequences per evaluation as the trainer reads, blended",
            c => One("--eval-iters", I(EvalIters(c)))),

        Row("checkpoint.every_steps", "--save-interval", "as is", c => One("--save-interval", I(c.Config.CheckpointEverySteps))),
        Not("checkpoint.keep_last", "Megatron-LM keeps every persistent checkpoint in --save (CheckpointConfig.most_recent_k is left out of the command line in _add_checkpointing_args); remove old iter_* folders by hand"),
        Not("checkpoint.keep_best", "Megatron-LM has no best-by-validation checkpoint; pick one from the validation losses in TensorBoard"),
        Not(["guards.max_consecutive_skips", "guards.rollback_lr_factor"],
            "CptLab's skip-a-bad-step and roll-back-with-a-lower-LR guard has no Megatron-LM counterpart; a run that diverges stops and is restarted from its last checkpoint"),
        Not(["sft.*", "dpo.*"], "post-training is not a Megatron-LM pre-training run: do it with `cptlab sft` / `cptlab dpo` on the Hugging Face folder convert_out.sh writes (a config with one of these sections is refused)"),

        Row("seed", "--seed", "as is", c => One("--seed", I(c.Config.Seed))),
        Not("threads", "intra-op CPU threads of the local trainer; Megatron-LM runs one process per GPU"),
        Not("measure_peak_flops", "the local trainer's CPU peak measurement for MFU; Megatron-LM reports throughput itself (--log-throughput, set by the launcher)"),
        Not("resolved", "the dtype and threads a local run chose on its machine; the cluster's precision is model.dtype (--bf16)"),
    ];

    /// <summary>
    /// Flags that come from no train config key: where the cluster keeps things, how the base checkpoint is continued, and
    /// logging. (flag, value as written, why)
    /// </summary>
    public static readonly IReadOnlyList<(string Flags, string Value, string Why)> LauncherRows =
    [
        ("--pretrained-checkpoint", "$MEGATRON_BASE", "the converted base. load_checkpoint (megatron/training/checkpointing.py) reads it only while --load holds no checkpoint, and then sets finetune: model weights only, no optimizer, RNG or scheduler state, iteration 0 (the re-warm starts at --lr-warmup-init)"),
        ("--load / --save", "$CKPT_DIR", "the run's own checkpoints: a restarted job (same command) resumes from the latest one with optimizer, RNG, scheduler and data position; so --finetune and --no-load-optim are not passed, they would drop that state on every restart"),
        ("--use-checkpoint-args", "", "as docs/llama_mistral.md loads converted Llama checkpoints; explicit architecture flags win (load_args_from_checkpoint)"),
        ("--ckpt-format", "torch_dist", "the format Megatron-Bridge's import writes"),
        ("--data-cache-path", "$WORK_DIR/data_cache", "Megatron-LM's blend index cache, off the (possibly read-only) shard folder"),
        ("--tensorboard-dir", "$WORK_DIR/tensorboard", "training and validation curves"),
        ("--log-interval / --log-throughput", "10", "progress every 10 iterations, with tokens/s and TFLOP/s per GPU"),
        ("--tensor-model-parallel-size --pipeline-model-parallel-size --num-virtual-stages-per-pipeline-rank --context-parallel-size --sequence-parallel --use-distributed-optimizer --recompute-granularity --recompute-method --recompute-num-layers",
            "parallelism plan", "the parallel layout `sweep plan --gpus` chose (none without --gpus: TP = PP = 1)"),
    ];

    /// <summary>The Megatron-LM arguments of a full-size run: the rows in order, then the launcher's own flags.</summary>
    public static MegatronArguments Build(TrainConfig config, string source, BlendManifest blend, PrepareManifest shards, ParallelismPlan? parallelism)
    {
        if (config.Post is { } post)
            throw new ConfigException(source, post.Section, "the Megatron-LM hand-off is continual pre-training; run post-training with `cptlab " + post.Section + "` on the Hugging Face folder the run ends with");
        if (config.Data is null)
            throw new ConfigException(source, "data.mixture", "missing: the Megatron-LM launcher takes its data blend from the blend manifest (`cptlab data mix`)");
        var c = new MappingContext(config, source, config.LoadModelConfig(), blend, shards, parallelism);
        var args = new List<MegatronArg>();
        foreach (var row in Rows)
            if (row.Emit is { } emit) args.AddRange(emit(c));
        args.AddRange(Launcher(c));
        var notRepresentable = Rows.Where(r => !r.Representable).SelectMany(r => r.Keys.Select(k => (k, r.Transform))).ToList();
        var prefixes = blend.Sources.Where(s => s.Share > 0).Select(s => s.TrainPrefix)
            .Concat(c.ValidationSources.Select(s => s.ValidationPrefix)).ToList();
        return new MegatronArguments(args, notRepresentable, c.Deviations, prefixes);
    }

    /// <summary>The mapping as a Markdown table (docs/scale-out.md holds it; a test checks they agree).</summary>
    public static string MarkdownTable()
    {
        var sb = new StringBuilder();
        sb.Append("| train config key | Megatron-LM flags | how |\n|---|---|---|\n");
        foreach (var r in Rows)
            sb.Append("| ").Append(string.Join(", ", r.Keys.Select(k => $"`{k}`"))).Append(" | ")
              .Append(r.Representable ? string.Join(' ', r.Flags.Split(' ').Select(f => f.StartsWith("--", StringComparison.Ordinal) ? $"`{f}`" : f)) : "not representable")
              .Append(" | ").Append(r.Transform.Replace("|", "\\|")).Append(" |\n");
        sb.Append("\n| launcher flag | value | why |\n|---|---|---|\n");
        foreach (var (flags, value, why) in LauncherRows)
            sb.Append("| ").Append(string.Join(' ', flags.Split(' ').Select(f => f.StartsWith("--", StringComparison.Ordinal) ? $"`{f}`" : f)))
              .Append(" | ").Append(value.Length == 0 ? "" : $"`{value}`").Append(" | ").Append(why).Append(" |\n");
        return sb.ToString();
    }

    // ---- the rows' transforms ----

    /// <summary>
    /// Llama-3's architecture in Megatron-LM's GPT model. The model flags are generated from TransformerConfig's fields by
    /// ArgumentGroupFactory (megatron/training/argument_utils.py; layernorm_epsilon is --norm-epsilon and add_bias_linear is
    /// --disable-bias-linear there), the rest are in _add_network_size_args.
    /// </summary>
    static IEnumerable<MegatronArg> Architecture(MappingContext c)
    {
        var m = c.Model;
        var key = c.Config.InitFrom is not null ? "model.init_from" : c.Config.Flavor is not null ? "model.flavor" : "model.config";
        ConfigException Unrepresentable(string what) => new(c.Source, key, $"{what}; Megatron-LM's GPT model cannot represent it, so the cluster run would train another model");

        yield return new("--num-layers", I(m.NumHiddenLayers));
        yield return new("--hidden-size", I(m.HiddenSize));
        yield return new("--ffn-hidden-size", I(m.IntermediateSize));
        yield return new("--num-attention-heads", I(m.NumAttentionHeads));
        if (m.NumKeyValueHeads != m.NumAttentionHeads)
        {
            yield return new("--group-query-attention");
            yield return new("--num-query-groups", I(m.NumKeyValueHeads));
        }
        // kv_channels defaults to hidden_size / num_attention_heads (TransformerConfig): only a different head_dim needs it.
        if (m.HeadDim * m.NumAttentionHeads != m.HiddenSize) yield return new("--kv-channels", I(m.HeadDim));
        yield return new("--max-position-embeddings", I(m.MaxPositionEmbeddings));
        yield return new("--position-embedding-type", "rope");
        // --rotary-base is type=int in _add_network_size_args.
        if (m.RopeTheta != Math.Floor(m.RopeTheta) || m.RopeTheta > int.MaxValue) throw Unrepresentable($"rope_theta {m.RopeTheta} is not an integer (--rotary-base takes one)");
        yield return new("--rotary-base", I((long)m.RopeTheta));
        switch (m.RopeScaling)
        {
            case null or { RopeType: "default" }:
                break;
            case { RopeType: "llama3" } rs:
                // Megatron-LM passes only the factor (--rope-scaling-factor, GPTModel.rope_scaling_factor); low/high frequency
                // factors and the original context are fixed at Llama-3.1's 1, 4 and 8192 (rotary_pos_embedding.py).
                if (rs.LowFreqFactor != 1 || rs.HighFreqFactor != 4 || rs.OriginalMaxPositionEmbeddings != 8192)
                    throw Unrepresentable($"llama3 rope scaling with low_freq_factor {rs.LowFreqFactor}, high_freq_factor {rs.HighFreqFactor}, original_max_position_embeddings {rs.OriginalMaxPositionEmbeddings} (Megatron-LM fixes them at 1, 4, 8192)");
                yield return new("--use-rope-scaling");
                yield return new("--rope-scaling-factor", D(rs.Factor));
                break;
            case { RopeType: "linear" } rs:
                if (rs.Factor != Math.Floor(rs.Factor)) throw Unrepresentable($"linear rope scaling by {rs.Factor} (--rotary-seq-len-interpolation-factor takes an integer)");
                yield return new("--rotary-seq-len-interpolation-factor", I((long)rs.Factor));
                break;
            default:
                throw Unrepresentable($"rope_scaling type '{m.RopeScaling.RopeType}'");
        }
        yield return new("--normalization", "RMSNorm");
        yield return new("--norm-epsilon", D(m.RmsNormEps));
        yield return new("--swiglu");
        // add_bias_linear switches the biases of every linear layer at once (attention and MLP).
        if (m.AttentionBias != m.MlpBias) throw Unrepresentable($"attention_bias {m.AttentionBias} with mlp_bias {m.MlpBias} (Megatron-LM biases all linear layers or none)");
        if (!m.AttentionBias) yield return new("--disable-bias-linear");
        if (!m.TieWordEmbeddings) yield return new("--untie-embeddings-and-output-weights");
        yield return new("--attention-dropout", "0");
        yield return new("--hidden-dropout", "0");
        yield return new("--make-vocab-size-divisible-by", I(VocabDivisor(m.VocabSize, c.TensorParallel, () => Unrepresentable(
            $"vocab_size {m.VocabSize} cannot be split over tensor parallelism {c.TensorParallel} without padding rows the converted checkpoint does not have"))));
        // Megatron-Bridge converts into Transformer Engine's layer layout (fused norm + linear names).
        yield return new("--transformer-impl", "transformer_engine");
    }

    /// <summary>
    /// Megatron-LM pads the vocabulary to a multiple of make_vocab_size_divisible_by × TP (vocab_size_with_padding in
    /// megatron/core/tokenizers/utils/build_tokenizer.py); the checkpoint Megatron-Bridge imports has exactly vocab_size rows,
    /// so the divisor is the largest power of two ≤ 128 for which that multiple divides vocab_size: no padding.
    /// 128,256 (Llama-3) is 2⁸ × 501: 128 at TP 1 or 2, 32 at TP 8.
    /// </summary>
    public static int VocabDivisor(int vocabSize, int tensorParallel, Func<Exception> error)
    {
        for (var d = 128; d >= 1; d /= 2)
            if (vocabSize % ((long)d * tensorParallel) == 0) return d;
        throw error();
    }

    static IEnumerable<MegatronArg> SeqLength(MappingContext c)
    {
        if (c.Config.SeqLen > c.Model.MaxPositionEmbeddings)
            throw new ConfigException(c.Source, "data.seq_len", $"{c.Config.SeqLen} exceeds the model's max_position_embeddings {c.Model.MaxPositionEmbeddings}");
        return One("--seq-length", I(c.Config.SeqLen));
    }

    /// <summary>
    /// Per-split paths, not --data-path with --split: validate_args asserts "A single data source must be provided in
    /// training mode, else None" (mock data, --data-path, and the three per-split paths count as one source together), and
    /// --data-path without --split carves 969/30/1 out of the training shards (arguments.py, validate_args).
    /// </summary>
    static IEnumerable<MegatronArg> DataPaths(MappingContext c)
    {
        if (c.Blend.SeqLen != c.Config.SeqLen)
            throw new ConfigException(c.Source, "data.mixture", $"{c.Config.Data} was made for sequences of {c.Blend.SeqLen} tokens, data.seq_len is {c.Config.SeqLen}");
        ShellWord[] Pairs(IEnumerable<BlendSource> sources, Func<BlendSource, string> prefix) =>
            [.. sources.SelectMany(s => new[] { (ShellWord)D(s.Share), ShellWord.Var("$DATA_DIR/" + prefix(s).Replace('\\', '/')) })];
        yield return new("--train-data-path", Pairs(c.Blend.Sources.Where(s => s.Share > 0), s => s.TrainPrefix));
        if (c.ValidationSources.Count > 0) yield return new("--valid-data-path", Pairs(c.ValidationSources, s => s.ValidationPrefix));
        else c.Deviations.Add("no source has a held-out split, so Megatron-LM validates on nothing; prepare the data with --validation-fraction > 0");
    }

    static IEnumerable<MegatronArg> DecayEmbeddings(MappingContext c)
    {
        if (!c.Config.DecayEmbeddings)
            c.Deviations.Add("optimizer.decay_embeddings is false, but Megatron-LM decays the embeddings like every weight matrix and has no option to exempt them: its run differs from the proxies there");
        return None;
    }

    static IEnumerable<MegatronArg> Schedule(MappingContext c)
    {
        var style = c.Config.Schedule switch
        {
            ScheduleKind.Cosine => "cosine",
            ScheduleKind.Wsd => "WSD",
            _ => "constant",
        };
        // OptimizerParamScheduler asserts lr_warmup_steps < lr_decay_steps (megatron/core/optimizer_param_scheduler.py).
        if (c.Config.WarmupSteps >= c.Config.TotalSteps)
            throw new ConfigException(c.Source, "schedule.warmup_tokens", $"warmup of {c.Config.WarmupSteps} steps is not shorter than the run's {c.Config.TotalSteps}; Megatron-LM's scheduler refuses that");
        return [new("--lr-decay-style", style), new("--lr-decay-iters", I(c.Config.TotalSteps))];
    }

    /// <summary>The trainer's WSD decay length (LrSchedule.At): round(decay_fraction × total steps), at least 1.</summary>
    public static long WsdDecaySteps(TrainConfig c) => Math.Max(1, (long)Math.Round(c.DecayFraction * c.TotalSteps));

    static IEnumerable<MegatronArg> WsdStyle(MappingContext c)
    {
        if (c.Config.Schedule != ScheduleKind.Wsd) return None;
        var style = c.Config.Anneal switch
        {
            AnnealShape.Linear => "linear",
            AnnealShape.Cosine => "cosine",
            AnnealShape.OneMinusSqrt => "minus_sqrt",
            _ => throw new ConfigException(c.Source, "schedule.anneal",
                "exponential (a geometric decay to min-lr) has no Megatron-LM counterpart: its WSD 'exponential' is 2·0.5^p − 1 (optimizer_param_scheduler.py); use linear, cosine or one_minus_sqrt"),
        };
        return One("--lr-wsd-decay-style", style);
    }

    static IEnumerable<MegatronArg> GlobalBatch(MappingContext c)
    {
        var global = c.GlobalBatchSize;
        if (c.Parallelism is { } p)
        {
            // validate_args: global batch = micro batch × data parallel × accumulation steps.
            if ((long)p.MicroBatchSize * p.DataParallel * p.GradientAccumulationSteps != global)
                throw new CptLabException($"the parallelism plan (micro-batch {p.MicroBatchSize} × data parallel {p.DataParallel} × {p.GradientAccumulationSteps} accumulation steps) does not make the global batch of {global} sequences");
            if ((long)p.TensorParallel * p.PipelineParallel * p.ContextParallel * p.DataParallel != p.Cluster.Gpus)
                throw new CptLabException($"the parallelism plan (TP {p.TensorParallel} × PP {p.PipelineParallel} × CP {p.ContextParallel} × DP {p.DataParallel}) does not use the cluster's {p.Cluster.Gpus} GPUs");
        }
        return One("--global-batch-size", I(global));
    }

    static long EvalIters(MappingContext c)
    {
        var sequences = (long)c.Config.EvalMaxSequences * Math.Max(1, c.ValidationSources.Count);
        return Math.Max(1, (sequences + c.GlobalBatchSize - 1) / c.GlobalBatchSize);
    }

    static IEnumerable<MegatronArg> Launcher(MappingContext c)
    {
        yield return new("--pretrained-checkpoint", ShellWord.Var("$MEGATRON_BASE"));
        yield return new("--load", ShellWord.Var("$CKPT_DIR"));
        yield return new("--save", ShellWord.Var("$CKPT_DIR"));
        yield return new("--use-checkpoint-args");
        yield return new("--ckpt-format", "torch_dist");
        yield return new("--data-cache-path", ShellWord.Var("$WORK_DIR/data_cache"));
        yield return new("--tensorboard-dir", ShellWord.Var("$WORK_DIR/tensorboard"));
        yield return new("--log-interval", "10");
        yield return new("--log-throughput");
        foreach (var a in Parallel(c)) yield return a;
    }

    static IEnumerable<MegatronArg> Parallel(MappingContext c)
    {
        if (c.Parallelism is not { } p) yield break;
        var layers = c.Model.NumHiddenLayers;
        if (layers % p.PipelineParallel != 0)
            throw new CptLabException($"the parallelism plan's pipeline of {p.PipelineParallel} stages does not divide the model's {layers} layers");
        yield return new("--tensor-model-parallel-size", I(p.TensorParallel));
        yield return new("--pipeline-model-parallel-size", I(p.PipelineParallel));
        if (p.VirtualPipelineStages is { } v and > 1)
        {
            // Interleaved 1F1B: each pipeline rank holds v chunks of layers / (PP × v) layers (validate_args checks the split).
            if (p.PipelineParallel < 2 || layers % (p.PipelineParallel * v) != 0)
                throw new CptLabException($"the parallelism plan's {v} virtual stages per pipeline rank do not split {layers} layers over {p.PipelineParallel} pipeline stages");
            yield return new("--num-virtual-stages-per-pipeline-rank", I(v));
        }
        if (p.ContextParallel > 1) yield return new("--context-parallel-size", I(p.ContextParallel));
        // validate_args turns sequence parallelism off at TP 1 anyway; writing it only when it acts keeps the command honest.
        if (p.SequenceParallel && p.TensorParallel > 1) yield return new("--sequence-parallel");
        if (p.DistributedOptimizer) yield return new("--use-distributed-optimizer");
        switch (p.Recompute)
        {
            case "none":
                break;
            case "selective":
                // validate_args: "recompute method is not yet supported for selective recomputing granularity".
                yield return new("--recompute-granularity", "selective");
                break;
            case "full":
                yield return new("--recompute-granularity", "full");
                yield return new("--recompute-method", "uniform");
                yield return new("--recompute-num-layers", "1");
                break;
            default:
                throw new CptLabException($"the parallelism plan's recompute '{p.Recompute}' is not none, selective or full");
        }
    }
}
