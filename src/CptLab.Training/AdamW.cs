using CptLab.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace CptLab.Training;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter) with decoupled weight decay, over float32 master parameters. Written here,
/// rather than taken from TorchSharp, so that its whole state (moments and step) is plain named tensors that
/// a checkpoint stores as safetensors and restores bit for bit, and so the learning rate is set per step
/// from <see cref="LrSchedule"/>.
/// </summary>
public sealed class AdamW : IDisposable
{
    readonly IReadOnlyList<(string Name, Tensor Param, bool Decay)> _params;
    readonly Dictionary<string, (Tensor M, Tensor V)> _moments = new();

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }

    /// <summary>Number of updates applied so far (bias correction uses it).</summary>
    public long Step { get; private set; }

    /// <param name="parameters">Named float32 parameters; <c>Decay</c> says whether weight decay applies.</param>
    public AdamW(IReadOnlyList<(string Name, Tensor Param, bool Decay)> parameters, double beta1 = 0.9, double beta2 = 0.95, double eps = 1e-8, double weightDecay = 0.1)
    {
        _params = parameters;
        (Beta1, Beta2, Eps, WeightDecay) = (beta1, beta2, eps, weightDecay);
        foreach (var (name, p, _) in parameters)
        {
            if (p.dtype != ScalarType.Float32) throw new ArgumentException($"AdamW keeps float32 master weights; '{name}' is {p.dtype}");
            _moments[name] = (zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope());
        }
    }

    /// <summary>Applies one update with learning rate <paramref name="lr"/>; <paramref name="grads"/> are in parameter order.</summary>
    public void Update(double lr, IReadOnlyList<Tensor> grads)
    {
        if (grads.Count != _params.Count) throw new ArgumentException($"{grads.Count} gradients for {_params.Count} parameters");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Step++;
        double bc1 = 1 - Math.Pow(Beta1, Step), bc2 = 1 - Math.Pow(Beta2, Step);
        for (int i = 0; i < _params.Count; i++)
        {
            var (name, p, decay) = _params[i];
            var g = grads[i];
            var (m, v) = _moments[name];
            m.mul_(Beta1).add_(g, alpha: 1 - Beta1);
            v.mul_(Beta2).addcmul_(g, g, value: 1 - Beta2);
            if (decay && WeightDecay != 0) p.mul_(1 - lr * WeightDecay);
            var denom = (v.sqrt() / Math.Sqrt(bc2)).add_(Eps);
            p.addcdiv_(m, denom, value: -lr / bc1);
        }
    }

    /// <summary>The state as named tensors ("exp_avg.NAME", "exp_avg_sq.NAME") plus the step count.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> StateTensors() =>
        _moments.SelectMany(kv => new[] { ($"exp_avg.{kv.Key}", kv.Value.M), ($"exp_avg_sq.{kv.Key}", kv.Value.V) }).ToList();

    /// <summary>Restores the moments and step from a checkpoint; every parameter's state must be present with its shape.</summary>
    public void Restore(Func<string, Tensor, bool> readInto, long step)
    {
        foreach (var (name, (m, v)) in _moments)
        {
            if (!readInto($"exp_avg.{name}", m) || !readInto($"exp_avg_sq.{name}", v))
                throw new CptLabException($"optimizer state has no moments for parameter '{name}': the checkpoint is from a different model");
        }
        Step = step;
    }

    public void Dispose()
    {
        foreach (var (m, v) in _moments.Values)
        {
            m.Dispose();
            v.Dispose();
        }
    }
}
