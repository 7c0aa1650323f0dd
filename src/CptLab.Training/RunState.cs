using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Training;

/// <summary>The models, optimizer and gradient buffers of a run.</summary>
internal sealed class RunState : IDisposable
{
    readonly TrainConfig _config;
    readonly ScalarType _computeType;
    readonly List<(string Name, Tensor Master, Tensor Compute, Tensor Grad)> _params = [];
    LlamaForCausalLM? _master, _compute;
    AdamW? _optimizer;

    public RunState(TrainConfig config, ScalarType computeType) => (_config, _computeType) = (config, computeType);

    public LlamaForCausalLM Master => _master!;
    /// <summary>The float32 gradient buffers of the last <see cref="ForwardBackward"/>, in parameter order.</summary>
    public IReadOnlyList<(string Name, Tensor Grad)> Gradients => _params.Select(p => (p.Name, p.Grad)).ToList();
    public AdamW Optimizer => _optimizer!;

    void Build(LlamaConfig modelConfig)
    {
        _master = new LlamaForCausalLM(modelConfig, ScalarType.Float32);
        _compute = _computeType == ScalarType.Float32 ? _master : new LlamaForCausalLM(modelConfig, _computeType);
        var compute = _compute.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (name, p) in _master.named_parameters())
            _params.Add((name, p, compute[name], zeros_like(p).DetachFromDisposeScope()));
        var withDecay = _params.Select(p => (p.Name, p.Master, Decay: p.Master.dim() >= 2 && (_config.DecayEmbeddings || !p.Name.Contains("embed_tokens", StringComparison.Ordinal)))).ToList();
        _optimizer = new AdamW(withDecay, _config.Beta1, _config.Beta2, _config.Eps, _config.WeightDecay);
    }

    public void InitialiseWeights(TrainConfig config)
    {
        Build(config.LoadModelConfig());
        if (config.InitFrom is { } dir) HfCheckpoint.LoadWeights(_master!, dir);
        else _master!.InitWeights(config.Seed);
    }

    public TrainerState RestoreFrom(string dir, long step, JsonObject configJson)
    {
        TrainingCheckpoint.Verify(dir);
        var state = TrainingCheckpoint.ReadState(dir);
        if (state.Step != step) throw new CorruptFileException(dir, $"state.json says step {state.Step}, the folder name says {step}");
        // A key added since the checkpoint was written is absent there; at its default it changes nothing, so it is no difference.
        var defaults = new TrainConfig().ToJson();
        if (JsonPath.FirstDifference(state.Config, configJson, ignore: (path, then, now) =>
                then is null && JsonNode.DeepEquals(now, JsonPath.Find(defaults, path))) is { } key)
            throw new CptLabException($"{dir}: checkpoint was written with a different config: '{key}' is {JsonPath.Show(JsonPath.Find(state.Config, key))} there and {JsonPath.Show(JsonPath.Find(configJson, key))} now; resume with the run's own config.json");
        if (_master is null) Build(LlamaConfig.Load(Path.Combine(dir, HfCheckpoint.ConfigFile)));
        TrainingCheckpoint.Restore(dir, _master!, _optimizer!, step);
        return state;
    }

    /// <summary>
    /// Accumulates the global batch's gradients into the float32 buffers: <paramref name="objective"/> gives each
    /// micro-batch's loss, already divided so that the micro-batches' losses add up to the step's. Returns that loss and
    /// the gradient norm.
    /// </summary>
    public (double Loss, double GradNorm) ForwardBackward(IStepObjective objective, bool poison)
    {
        using var _ = no_grad();
        // In-place ops hand back new tensor handles: even these run inside a scope, or each step leaks one per parameter.
        using (NewDisposeScope())
            foreach (var p in _params) p.Grad.zero_();
        SyncedCompute(); // master → bf16 compute weights
        int micros = objective.BeginStep();
        double lossSum = 0;
        for (int micro = 0; micro < micros; micro++)
        {
            using var scope = NewDisposeScope();
            Tensor loss;
            using (enable_grad())
            {
                loss = objective.MicroLoss(_compute!, micro);
                if (poison) loss = loss * double.NaN;
                loss.backward();
            }
            lossSum += loss.item<float>();
            foreach (var p in _params)
            {
                var g = p.Compute.grad;
                if (g is null) continue;
                p.Grad.add_(g.to(ScalarType.Float32));
            }
            _compute!.zero_grad();
        }
        double sq = 0;
        using (NewDisposeScope())
            foreach (var p in _params) sq += p.Grad.square().sum().item<float>();
        return (lossSum, Math.Sqrt(sq));
    }

    /// <summary>The model the forward passes run on (the bf16 copy in bf16 mode), its weights brought up to the master's.</summary>
    public LlamaForCausalLM SyncedCompute()
    {
        using var _ = no_grad();
        if (!ReferenceEquals(_compute, _master))
            using (NewDisposeScope())
                foreach (var p in _params) p.Compute.copy_(p.Master);
        return _compute!;
    }

    public void ClipAndUpdate(double gradNorm, double lr)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        if (_config.GradClip > 0 && gradNorm > _config.GradClip)
        {
            double scale = _config.GradClip / (gradNorm + 1e-6);
            foreach (var p in _params) p.Grad.mul_(scale);
        }
        _optimizer!.Update(lr, _params.Select(p => p.Grad).ToList());
    }

    public bool WeightsAreFinite()
    {
        using var scope = NewDisposeScope();
        return _params.All(p => p.Master.isfinite().all().item<bool>());
    }

    public void Dispose()
    {
        foreach (var p in _params) p.Grad.Dispose();
        _optimizer?.Dispose();
        if (!ReferenceEquals(_compute, _master)) _compute?.Dispose();
        _master?.Dispose();
    }
}
