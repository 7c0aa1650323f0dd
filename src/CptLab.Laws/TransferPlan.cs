using CptLab.Core;

namespace CptLab.Laws;

/// <summary>The optimal LR measured on one proxy size (parameter count N).</summary>
public sealed record ProxyOptimum(double Parameters, double Lr);

/// <summary>
/// η* ∝ N^(−α): how the optimal LR moves with model size. Fitted by least squares on log η* against log N
/// when two or more proxy sizes were swept; otherwise <see cref="DefaultAlpha"/>, which is what Llama-2 and
/// Llama-3 pre-training used (peak LR 3e-4 at 7–8B, 1.5e-4 at 70B: α = ln 2 / ln 8.75 ≈ 0.32, rounded to 0.3).
/// The paper this toolkit follows likewise keeps the ALMR and lowers the LR for the larger model.
/// </summary>
public sealed record LrScalingRule(double Alpha, bool Fitted, IReadOnlyList<ProxyOptimum> Proxies, string Assumption)
{
    public const double DefaultAlpha = 0.3;

    public double Scale(double lr, double fromParameters, double toParameters) => lr * Math.Pow(toParameters / fromParameters, -Alpha);

    public static LrScalingRule Fit(IReadOnlyList<ProxyOptimum> proxies, double defaultAlpha = DefaultAlpha)
    {
        if (proxies.Count == 0) throw new CptLabException("the LR transfer rule needs the optimal LR of at least one proxy size");
        foreach (var p in proxies)
            if (!(p.Parameters > 0) || !(p.Lr > 0) || !double.IsFinite(p.Parameters) || !double.IsFinite(p.Lr))
                throw new CptLabException($"proxy optimum (N={p.Parameters}, lr={p.Lr}): parameter count and LR must be positive and finite");
        var sizes = proxies.Select(p => p.Parameters).Distinct().Count();
        if (sizes < 2)
            return new LrScalingRule(defaultAlpha, false, proxies,
                $"one proxy size only: LR scaled as N^-{defaultAlpha:0.##} (default from Llama-2/3 pre-training LRs: 3e-4 at 7-8B, 1.5e-4 at 70B); sweep a second proxy size to fit it");
        var lx = proxies.Select(p => Math.Log(p.Parameters)).ToArray();
        var ly = proxies.Select(p => Math.Log(p.Lr)).ToArray();
        var (mx, my) = (lx.Average(), ly.Average());
        var slope = lx.Zip(ly).Sum(t => (t.First - mx) * (t.Second - my)) / lx.Sum(v => (v - mx) * (v - mx));
        var alpha = -slope;
        var note = alpha <= 0 ? " (warning: α ≤ 0, the fitted optimal LR does not fall with size; check the proxy sweeps)" : "";
        return new LrScalingRule(alpha, true, proxies, $"LR scaled as N^-{alpha:0.###}, fitted on {sizes} proxy sizes{note}");
    }
}

public enum BlendRole { Target, Original, Domain }

/// <summary>
/// One tokenized source (a Megatron indexed dataset prefix, without .bin/.idx) and its size in tokens. <paramref name="Weight"/>:
/// its weight within its role (a sweep spec's NAME:WEIGHT, the split `cptlab data mix` and the proxies used); null: its token count.
/// </summary>
public sealed record ShardSource(string PathPrefix, BlendRole Role, long Tokens, double? Weight = null);

public sealed record BlendWeight(string PathPrefix, BlendRole Role, double Weight);

/// <summary>What the full-size run should be: inputs to <see cref="TransferPlanner.Plan"/>.</summary>
public sealed record PlanRequest
{
    public required double Almr { get; init; }
    public required double ProxyLr { get; init; }
    public required double ProxyParameters { get; init; }
    public required double TargetParameters { get; init; }
    public required long TokenBudget { get; init; }
    public required int SeqLength { get; init; }
    public required int GlobalBatchSize { get; init; }
    public required IReadOnlyList<ShardSource> Sources { get; init; }
    public required LrScalingRule Rule { get; init; }
    /// <summary>Share of the token stream given to domain data (math, code); the original language gets 1 − ALMR − this.</summary>
    public double DomainShare { get; init; }
    public double MinLrRatio { get; init; } = 0.1;
    public double WarmupFraction { get; init; } = 0.01;
    public string DecayStyle { get; init; } = "cosine";
}

/// <summary>
/// The full-size CPT run, ready to be written as a CptLab training config or Megatron-LM arguments.
/// TrainIters = ⌈TokenBudget / (SeqLength · GlobalBatchSize)⌉; warmup and min-LR follow from the request.
/// </summary>
public sealed record TrainingPlan(
    double Almr,
    double Lr,
    double MinLr,
    long WarmupIters,
    string DecayStyle,
    long TrainIters,
    int SeqLength,
    int GlobalBatchSize,
    long TokenBudget,
    long TokensPerIter,
    IReadOnlyList<BlendWeight> Blend,
    IReadOnlyList<string> Assumptions);

public static class TransferPlanner
{
    /// <summary>Megatron-LM's --lr-decay-style choices.</summary>
    public static readonly IReadOnlyList<string> DecayStyles = ["constant", "linear", "cosine", "inverse-square-root", "WSD"];

    public static TrainingPlan Plan(PlanRequest q)
    {
        if (!(q.Almr >= 0 && q.Almr <= 1)) throw new CptLabException($"plan: ALMR must be in [0, 1], is {q.Almr}");
        if (!(q.DomainShare >= 0) || q.Almr + q.DomainShare > 1 + 1e-12)
            throw new CptLabException($"plan: ALMR {q.Almr} plus domain share {q.DomainShare} exceeds 1; nothing is left for the original language");
        if (q.TokenBudget <= 0) throw new CptLabException($"plan: token budget must be positive, is {q.TokenBudget}");
        if (q.SeqLength <= 0 || q.GlobalBatchSize <= 0)
            throw new CptLabException($"plan: sequence length ({q.SeqLength}) and global batch size ({q.GlobalBatchSize}) must be positive");
        if (!(q.ProxyLr > 0)) throw new CptLabException($"plan: proxy LR must be positive, is {q.ProxyLr}");
        if (!(q.ProxyParameters > 0) || !(q.TargetParameters > 0))
            throw new CptLabException("plan: proxy and target parameter counts must be positive");
        if (!DecayStyles.Contains(q.DecayStyle))
            throw new CptLabException($"plan: decay style '{q.DecayStyle}' is not one of Megatron-LM's: {string.Join(", ", DecayStyles)}");
        if (!(q.MinLrRatio >= 0 && q.MinLrRatio <= 1)) throw new CptLabException($"plan: min-LR ratio must be in [0, 1], is {q.MinLrRatio}");
        if (!(q.WarmupFraction >= 0 && q.WarmupFraction < 1)) throw new CptLabException($"plan: warmup fraction must be in [0, 1), is {q.WarmupFraction}");

        var shares = new Dictionary<BlendRole, double>
        {
            [BlendRole.Target] = q.Almr,
            [BlendRole.Domain] = q.DomainShare,
            [BlendRole.Original] = Math.Max(0, 1 - q.Almr - q.DomainShare),
        };
        var blend = new List<BlendWeight>();
        foreach (var (role, share) in shares)
        {
            if (share <= 0) continue;
            var sources = q.Sources.Where(s => s.Role == role).ToList();
            if (sources.Count == 0)
                throw new CptLabException($"plan: the blend gives {share:0.###} of the tokens to {role.ToString().ToLowerInvariant()} data but no {role.ToString().ToLowerInvariant()} source was given");
            var total = sources.Sum(s => s.Weight ?? s.Tokens);
            if (total <= 0) throw new CptLabException($"plan: the {role.ToString().ToLowerInvariant()} sources have no tokens");
            // Within a role, sources are sampled in proportion to their weight, else to their size (one pass over each at the same rate).
            blend.AddRange(sources.Select(s => new BlendWeight(s.PathPrefix, role, share * (s.Weight ?? s.Tokens) / total)));
        }

        var tokensPerIter = (long)q.SeqLength * q.GlobalBatchSize;
        var iters = (q.TokenBudget + tokensPerIter - 1) / tokensPerIter;
        var lr = q.Rule.Scale(q.ProxyLr, q.ProxyParameters, q.TargetParameters);
        var warmup = (long)Math.Round(q.WarmupFraction * iters);
        var assumptions = new List<string>
        {
            $"ALMR {q.Almr:0.###} kept from the proxy sweep (the law's optimum transfers across size unchanged)",
            q.Rule.Assumption,
            $"lr = {q.ProxyLr:0.###e0} × ({q.TargetParameters:0.###e0} / {q.ProxyParameters:0.###e0})^-{q.Rule.Alpha:0.###} = {lr:0.###e0}",
            $"min-lr = {q.MinLrRatio:0.###} × lr; warmup {q.WarmupFraction:P1} of {iters} iterations; {q.DecayStyle} decay over all iterations",
            $"{iters} iterations × {q.GlobalBatchSize} sequences × {q.SeqLength} tokens = {iters * tokensPerIter:N0} tokens (budget {q.TokenBudget:N0})",
        };
        foreach (var role in shares.Keys)
            foreach (var s in q.Sources.Where(s => s.Role == role))
            {
                var w = blend.FirstOrDefault(b => b.PathPrefix == s.PathPrefix)?.Weight ?? 0;
                var epochs = w * iters * tokensPerIter / Math.Max(1, s.Tokens);
                if (epochs > 1) assumptions.Add($"source {s.PathPrefix} is repeated {epochs:0.##} times (weight {w:0.###} of {iters * tokensPerIter:N0} tokens, it has {s.Tokens:N0})");
            }
        return new TrainingPlan(q.Almr, lr, lr * q.MinLrRatio, warmup, q.DecayStyle, iters, q.SeqLength, q.GlobalBatchSize,
            q.TokenBudget, tokensPerIter, blend, assumptions);
    }
}
