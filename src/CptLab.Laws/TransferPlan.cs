using CptLab.Core;

namespace CptLab.Laws;

/// <summary>The optimal LR measured on one proxy size (parameter count N), with its interval from the sweep's fit when it has one.</summary>
public sealed record ProxyOptimum(double Parameters, double Lr, Interval? LrInterval = null);

/// <summary>
/// η* ∝ N^(−α): how the optimal LR moves with model size. Fitted by least squares on log η* against log N
/// when two or more proxy sizes were swept; otherwise <see cref="DefaultAlpha"/>, which is what Llama-2 and
/// Llama-3 pre-training used (peak LR 3e-4 at 7–8B, 1.5e-4 at 70B: α = ln 2 / ln 8.75 ≈ 0.32, rounded to 0.3).
/// The paper this toolkit follows likewise keeps the ALMR and lowers the LR for the larger model.
/// <see cref="AlphaInterval"/>: with one proxy size the stated prior range <see cref="DefaultAlphaRange"/>; with two or
/// more, the fitted slope ± 1.96 standard errors, each proxy's log-LR weighted by its interval (and, with three or more
/// sizes, no narrower than the scatter about the line says); null when a proxy has no interval.
/// </summary>
public sealed record LrScalingRule(double Alpha, bool Fitted, IReadOnlyList<ProxyOptimum> Proxies, string Assumption, Interval? AlphaInterval = null)
{
    public const double DefaultAlpha = 0.3;

    /// <summary>
    /// The prior range of α with one proxy size: 0.2 to 0.5 spans the rules in use — DeepSeek LLM's η ∝ C^-0.125 with
    /// tokens ∝ N (α ≈ 0.25), Llama-2/3's published LRs (≈ 0.32), and standard parametrisation's η ∝ 1/width (≈ 0.5).
    /// </summary>
    public static readonly Interval DefaultAlphaRange = new(0.2, 0.5);

    const double Z95 = 1.959963984540054;

    public double Scale(double lr, double fromParameters, double toParameters) => lr * Math.Pow(toParameters / fromParameters, -Alpha);

    /// <summary>
    /// The target's LR interval: every corner of (the proxy's LR interval) × (<see cref="AlphaInterval"/>) scaled to the
    /// target size, their hull — as wide as either source of doubt alone, or wider. Null without both intervals.
    /// </summary>
    public Interval? ScaleInterval(Interval? proxyLr, double fromParameters, double toParameters)
    {
        if (proxyLr is null || AlphaInterval is not { } a) return null;
        var ratio = toParameters / fromParameters;
        var corners = new[] { proxyLr.Lo, proxyLr.Hi }.SelectMany(lr => new[] { a.Lo, a.Hi }.Select(alpha => lr * Math.Pow(ratio, -alpha))).ToArray();
        return new Interval(corners.Min(), corners.Max());
    }

    public static LrScalingRule Fit(IReadOnlyList<ProxyOptimum> proxies, double defaultAlpha = DefaultAlpha)
    {
        if (proxies.Count == 0) throw new CptLabException("the LR transfer rule needs the optimal LR of at least one proxy size");
        foreach (var p in proxies)
            if (!(p.Parameters > 0) || !(p.Lr > 0) || !double.IsFinite(p.Parameters) || !double.IsFinite(p.Lr))
                throw new CptLabException($"proxy optimum (N={p.Parameters}, lr={p.Lr}): parameter count and LR must be positive and finite");
        var sizes = proxies.Select(p => p.Parameters).Distinct().Count();
        if (sizes < 2)
            return new LrScalingRule(defaultAlpha, false, proxies,
                $"one proxy size only: LR scaled as N^-{defaultAlpha:0.##} (default from Llama-2/3 pre-training LRs: 3e-4 at 7-8B, 1.5e-4 at 70B), " +
                $"its interval over the prior range α in [{DefaultAlphaRange.Lo:0.##}, {DefaultAlphaRange.Hi:0.##}] (DeepSeek LLM's LR law ≈ 0.25, standard parametrisation ≈ 0.5); sweep a second proxy size to fit it",
                DefaultAlphaRange);
        var lx = proxies.Select(p => Math.Log(p.Parameters)).ToArray();
        var ly = proxies.Select(p => Math.Log(p.Lr)).ToArray();
        var (mx, my) = (lx.Average(), ly.Average());
        var sxx = lx.Sum(v => (v - mx) * (v - mx));
        var slope = lx.Zip(ly).Sum(t => (t.First - mx) * (t.Second - my)) / sxx;
        var alpha = -slope;
        var interval = AlphaSpread(proxies, lx, ly, mx, my, sxx, slope) is { } se ? new Interval(alpha - Z95 * se, alpha + Z95 * se) : null;
        var note = alpha <= 0 ? " (warning: α ≤ 0, the fitted optimal LR does not fall with size; check the proxy sweeps)" : "";
        var range = interval is { } iv ? $", 95% interval [{iv.Lo:0.###}, {iv.Hi:0.###}]" : ", no interval (a proxy sweep has no LR interval: fit it with a bootstrap)";
        return new LrScalingRule(alpha, true, proxies, $"LR scaled as N^-{alpha:0.###}, fitted on {sizes} proxy sizes{range}{note}", interval);
    }

    /// <summary>
    /// Standard error of the slope: each proxy's log-LR has σ = (its 95% interval's log-width) / (2 · 1.96), and the
    /// weighted least-squares slope has variance 1 / Σ wᵢ (xᵢ − x̄_w)² with wᵢ = 1/σᵢ²; with three or more sizes, at
    /// least the ordinary standard error from the residuals. Null when a proxy has no interval.
    /// </summary>
    static double? AlphaSpread(IReadOnlyList<ProxyOptimum> proxies, double[] lx, double[] ly, double mx, double my, double sxx, double slope)
    {
        if (proxies.Any(p => p.LrInterval is not { Lo: > 0 } iv || !(iv.Hi >= iv.Lo))) return null;
        var sigma = proxies.Select(p => Math.Max(1e-12, Math.Log(p.LrInterval!.Hi / p.LrInterval.Lo) / (2 * Z95))).ToArray();
        var w = sigma.Select(s => 1 / (s * s)).ToArray();
        var xw = lx.Zip(w).Sum(t => t.First * t.Second) / w.Sum();
        var variance = 1 / lx.Zip(w).Sum(t => t.Second * (t.First - xw) * (t.First - xw));
        if (lx.Length >= 3)
        {
            var residual = lx.Zip(ly).Sum(t => Math.Pow(t.Second - (my + slope * (t.First - mx)), 2)) / (lx.Length - 2);
            variance = Math.Max(variance, residual / sxx);
        }
        return Math.Sqrt(variance);
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
    /// <summary>The proxy's LR interval (the sweep fit's); with the rule's α interval it gives the plan's LR interval.</summary>
    public Interval? ProxyLrInterval { get; init; }
    /// <summary>Share of the token stream given to domain data (math, code); the original language gets 1 − ALMR − this.</summary>
    public double DomainShare { get; init; }
    public double MinLrRatio { get; init; } = 0.1;
    public double WarmupFraction { get; init; } = 0.01;
    public string DecayStyle { get; init; } = "cosine";
}

/// <summary>
/// The full-size CPT run, ready to be written as a CptLab training config or Megatron-LM arguments.
/// TrainIters = ⌈TokenBudget / (SeqLength · GlobalBatchSize)⌉; warmup and min-LR follow from the request.
/// <see cref="LrInterval"/>: the LR's interval from the proxy's interval and α's (<see cref="LrScalingRule.ScaleInterval"/>).
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
    IReadOnlyList<string> Assumptions,
    Interval? LrInterval = null,
    Interval? AlphaInterval = null);

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
        var lrInterval = q.Rule.ScaleInterval(q.ProxyLrInterval, q.ProxyParameters, q.TargetParameters);
        var warmup = (long)Math.Round(q.WarmupFraction * iters);
        var assumptions = new List<string>
        {
            $"ALMR {q.Almr:0.###} kept from the proxy sweep (the law's optimum transfers across size unchanged)",
            q.Rule.Assumption,
            $"lr = {q.ProxyLr:0.###e0} × ({q.TargetParameters:0.###e0} / {q.ProxyParameters:0.###e0})^-{q.Rule.Alpha:0.###} = {lr:0.###e0}",
            lrInterval is { } li && q.ProxyLrInterval is { } pi && q.Rule.AlphaInterval is { } ai
                ? $"lr interval [{li.Lo:0.###e0}, {li.Hi:0.###e0}]: the hull of the proxy's interval [{pi.Lo:0.###e0}, {pi.Hi:0.###e0}] scaled with α from {ai.Lo:0.###} to {ai.Hi:0.###} " +
                  $"(a factor of {li.Hi / li.Lo:0.#} from end to end; most of it is α's unless a second proxy size was swept)"
                : "no lr interval: " + (q.ProxyLrInterval is null ? "the sweep fit has no LR interval (fit with a bootstrap)" : "α has no interval"),
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
            q.TokenBudget, tokensPerIter, blend, assumptions, lrInterval, q.Rule.AlphaInterval);
    }
}
