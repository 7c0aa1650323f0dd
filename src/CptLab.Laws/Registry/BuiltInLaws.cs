namespace CptLab.Laws.Registry;

/// <summary>
/// The law families CptLab knows, as registry entries. Fittable entries carry a value function and an
/// analytic gradient (a test checks every one against central differences); the sweep's own families are
/// descriptive entries: their formula, inputs and parameter names, fitted by <see cref="LawFitter"/> over a whole sweep.
/// Input names: n (parameters), d (training tokens), r / almr (a mixture share in [0, 1]), lr, log10_lr.
/// </summary>
public static class BuiltInLaws
{
    const double Inf = double.PositiveInfinity;
    static readonly double[] Exponents = [0, 0.5, 1, 1.5, 2]; // Hoffmann et al.'s and Epoch AI's grid for α and β

    public static IReadOnlyList<LawDefinition> All { get; } =
    [
        Chinchilla(), ChinchillaLse(), DCpt(), DataMixing(), DataMixingMulti(2), DataMixingMulti(3),
        LrQuadratic(), LrPower(), TokenLawEntry(),
        Descriptive(LawKind.ResponseSurfaceLinear), Descriptive(LawKind.ResponseSurfaceQuadratic), Descriptive(LawKind.MixingLaw), Descriptive(LawKind.ResponseSurfaceConstant),
    ];

    /// <summary>Hoffmann et al. (2022), Approach 3: L = E + A/N^α + B/D^β, fitted here on L or log L.</summary>
    static LawDefinition Chinchilla() => new()
    {
        Name = "chinchilla",
        Formula = "L = E + A/N^α + B/D^β",
        Source = "Hoffmann et al. 2022 (Training compute-optimal LLMs), Approach 3; Epoch AI's replication: E 1.8172, A 482.01, B 2085.43, α 0.3478, β 0.3658",
        Inputs = [new("n", "model parameters N", InputDomain.Positive), new("d", "training tokens D", InputDomain.Positive)],
        Parameters =
        [
            new("E", "irreducible loss", 0, Inf, []),
            new("A", "model-size coefficient", 0, Inf, []),
            new("B", "data coefficient", 0, Inf, []),
            new("alpha", "model-size exponent α", 0, 5, Exponents),
            new("beta", "data exponent β", 0, 5, Exponents),
        ],
        LinearParameters = ["E", "A", "B"],
        Value = (x, t) => t[0] + t[1] * Math.Pow(x[0], -t[3]) + t[2] * Math.Pow(x[1], -t[4]),
        Gradient = (x, t, g) =>
        {
            var pn = Math.Pow(x[0], -t[3]);
            var pd = Math.Pow(x[1], -t[4]);
            g[0] = 1;
            g[1] = pn;
            g[2] = pd;
            g[3] = -t[1] * pn * Math.Log(x[0]);
            g[4] = -t[2] * pd * Math.Log(x[1]);
        },
        Example = [1.8172, 482.01, 2085.43, 0.3478, 0.3658],
        ExampleInput = [1e9, 2e10],
    };

    /// <summary>
    /// Epoch AI's parametrisation (Besiroglu et al. 2024): log L = LSE(a − α log N, b − β log D, e) with A = e^a,
    /// B = e^b, E = e^e, fitted on log L with Huber δ = 1e-3 from a grid of 4,500 starts.
    /// </summary>
    static LawDefinition ChinchillaLse() => new()
    {
        Name = "chinchilla_lse",
        Formula = "log L = LSE(a − α·log N, b − β·log D, e), i.e. L = e^e + e^a/N^α + e^b/D^β",
        Source = "Besiroglu et al. 2024 (Chinchilla scaling: a replication attempt), Epoch AI; their start grid a, b ∈ {0, 5, …, 25}, e ∈ {−1, −0.5, …, 1}, α, β ∈ {0, 0.5, …, 2}",
        Inputs = [new("n", "model parameters N", InputDomain.Positive), new("d", "training tokens D", InputDomain.Positive)],
        Output = LawOutput.LogLoss,
        Parameters =
        [
            new("a", "log A", -Inf, Inf, [0, 5, 10, 15, 20, 25]),
            new("b", "log B", -Inf, Inf, [0, 5, 10, 15, 20, 25]),
            new("e", "log E", -Inf, Inf, [-1, -0.5, 0, 0.5, 1]),
            new("alpha", "model-size exponent α", -Inf, Inf, Exponents),
            new("beta", "data exponent β", -Inf, Inf, Exponents),
        ],
        Value = (x, t) =>
        {
            var (u, v, w) = (t[0] - t[3] * Math.Log(x[0]), t[1] - t[4] * Math.Log(x[1]), t[2]);
            var m = Math.Max(u, Math.Max(v, w));
            return m + Math.Log(Math.Exp(u - m) + Math.Exp(v - m) + Math.Exp(w - m));
        },
        Gradient = (x, t, g) =>
        {
            var (ln, ld) = (Math.Log(x[0]), Math.Log(x[1]));
            var (u, v, w) = (t[0] - t[3] * ln, t[1] - t[4] * ld, t[2]);
            var m = Math.Max(u, Math.Max(v, w));
            var (eu, ev, ew) = (Math.Exp(u - m), Math.Exp(v - m), Math.Exp(w - m));
            var s = eu + ev + ew;
            g[0] = eu / s;
            g[1] = ev / s;
            g[2] = ew / s;
            g[3] = -ln * eu / s;
            g[4] = -ld * ev / s;
        },
        Example = [Math.Log(482.01), Math.Log(2085.43), Math.Log(1.8172), 0.3478, 0.3658],
        ExampleInput = [1e9, 2e10],
    };

    /// <summary>D-CPT Law (Que et al. 2024): domain-corpus loss of continual pre-training against N, D and the mixture ratio r.</summary>
    static LawDefinition DCpt() => new()
    {
        Name = "dcpt",
        Formula = "L = E + A/N^α + B·r^η/D^β + C/(r + ε)^γ",
        Source = "Que et al. 2024 (D-CPT Law: domain-specific continual pre-training scaling law)",
        Inputs = [new("n", "model parameters N", InputDomain.Positive), new("d", "training tokens D", InputDomain.Positive),
                  new("r", "mixture ratio of the domain corpus", InputDomain.NonNegative)],
        Parameters =
        [
            new("E", "irreducible loss", 0, Inf, []),
            new("A", "model-size coefficient", 0, Inf, []),
            new("alpha", "model-size exponent α", 0, 5, [0.2, 0.5]),
            new("B", "data coefficient", 0, Inf, []),
            new("beta", "data exponent β", 0, 5, [0.2, 0.5]),
            new("eta", "ratio exponent of the data term η", -5, 5, [0.2, 0.6, 1.2]),
            new("C", "ratio coefficient", 0, Inf, []),
            new("gamma", "ratio exponent γ", 0, 5, [0.2, 0.6, 1.2]),
            new("epsilon", "ratio offset ε", 1e-6, 1, [0.01, 0.1]),
        ],
        LinearParameters = ["E", "A", "B", "C"],
        Value = (x, t) =>
        {
            var (n, d, r) = (x[0], x[1], x[2]);
            var rEta = r == 0 ? 0 : Math.Pow(r, t[5]);
            return t[0] + t[1] * Math.Pow(n, -t[2]) + t[3] * rEta * Math.Pow(d, -t[4]) + t[6] * Math.Pow(r + t[8], -t[7]);
        },
        Gradient = (x, t, g) =>
        {
            var (n, d, r) = (x[0], x[1], x[2]);
            var pn = Math.Pow(n, -t[2]);
            var pd = Math.Pow(d, -t[4]);
            var rEta = r == 0 ? 0 : Math.Pow(r, t[5]);
            var pr = Math.Pow(r + t[8], -t[7]);
            g[0] = 1;
            g[1] = pn;
            g[2] = -t[1] * pn * Math.Log(n);
            g[3] = rEta * pd;
            g[4] = -t[3] * rEta * pd * Math.Log(d);
            g[5] = r == 0 ? 0 : t[3] * rEta * pd * Math.Log(r);
            g[6] = pr;
            g[7] = -t[6] * pr * Math.Log(r + t[8]);
            g[8] = -t[7] * t[6] * pr / (r + t[8]);
        },
        Example = [1.6, 300, 0.35, 120, 0.3, 0.4, 0.05, 0.6, 0.02],
        ExampleInput = [4e8, 1e10, 0.3],
    };

    /// <summary>
    /// Data Mixing Laws (Ye et al. 2024), one domain: L(r) = c + k·exp(t·r). Ye et al.'s continual pre-training
    /// code writes the same law as L − c = exp(k'·r + b') (their (k', b') = (−3.7397, −1.6938)): t = k', k = e^b'.
    /// </summary>
    static LawDefinition DataMixing() => new()
    {
        Name = "data_mixing_law",
        Formula = "L = c + k·exp(t·r)",
        Source = "Ye et al. 2024 (Data mixing laws), one domain; the law CptLab's sweep fit uses at each LR (mixing_law)",
        Inputs = [new("r", "mixture proportion (e.g. ALMR, or the original-language share)")],
        Parameters =
        [
            new("c", "loss as the exponential term vanishes", -Inf, Inf, []),
            new("k", "scale of the exponential term", -Inf, Inf, []),
            new("t", "rate t", -50, 50, [-10, -5, -2, -1, -0.3, 0.3, 1, 2, 5, 10]),
        ],
        LinearParameters = ["c", "k"],
        Value = (x, t) => t[0] + t[1] * Math.Exp(t[2] * x[0]),
        Gradient = (x, t, g) =>
        {
            var e = Math.Exp(t[2] * x[0]);
            g[0] = 1;
            g[1] = e;
            g[2] = t[1] * x[0] * e;
        },
        Example = [2.8103, Math.Exp(-1.6938), -3.7397],
        ExampleInput = [0.3],
    };

    /// <summary>
    /// Data Mixing Laws, several domains (Ye et al. 2024, eq. for L_i): L_i(r) = c_i + k_i·exp(Σ_j t_ij·r_j), one
    /// target domain i per fit. Proportions of M domains sum to 1, so only M − 1 of them are free: give those
    /// (r1..r_{M−1}); with all M the t_ij are determined only up to a common shift.
    /// </summary>
    static LawDefinition DataMixingMulti(int m) => new()
    {
        Name = $"data_mixing_law_{m}",
        Formula = $"L = c + k·exp({string.Join(" + ", Enumerable.Range(1, m).Select(j => $"t{j}·r{j}"))})",
        Source = $"Ye et al. 2024 (Data mixing laws), multi-domain form for one target domain, {m} free proportions ({m + 1} domains)",
        Inputs = Enumerable.Range(1, m).Select(j => new LawInput($"r{j}", $"proportion of domain {j}")).ToArray(),
        Parameters =
        [
            new("c", "constant", -Inf, Inf, []),
            new("k", "scale", -Inf, Inf, []),
            .. Enumerable.Range(1, m).Select(j => new LawParameter($"t{j}", $"rate of r{j}", -50, 50, [-5, -1, 0.5, 2])),
        ],
        LinearParameters = ["c", "k"],
        Value = (x, t) =>
        {
            var s = 0.0;
            for (var j = 0; j < x.Length; j++) s += t[2 + j] * x[j];
            return t[0] + t[1] * Math.Exp(s);
        },
        Gradient = (x, t, g) =>
        {
            var s = 0.0;
            for (var j = 0; j < x.Length; j++) s += t[2 + j] * x[j];
            var e = Math.Exp(s);
            g[0] = 1;
            g[1] = e;
            for (var j = 0; j < x.Length; j++) g[2 + j] = t[1] * x[j] * e;
        },
        Example = [2.5, 0.3, .. Enumerable.Range(1, m).Select(j => -1.5 * j)],
        ExampleInput = Enumerable.Range(1, m).Select(j => 0.6 / m).ToArray(),
    };

    /// <summary>The loss against log LR as a parabola: the simplest law with an optimal LR (x_opt) as a parameter.</summary>
    static LawDefinition LrQuadratic() => new()
    {
        Name = "lr_quadratic",
        Formula = "L = L_min + c·(log10 lr − x_opt)²",
        Source = "CptLab: the LR axis of the sweep's response surfaces, as a one-dimensional law with the optimum as a parameter",
        Inputs = [new("log10_lr", "log10 of the peak learning rate")],
        Parameters =
        [
            new("L_min", "loss at the optimal LR", -Inf, Inf, []),
            new("c", "curvature per decade²", 0, Inf, []),
            new("x_opt", "log10 of the optimal LR", -Inf, Inf, []) { GridFromInput = "log10_lr" },
        ],
        LinearParameters = ["L_min", "c"],
        Value = (x, t) => t[0] + t[1] * (x[0] - t[2]) * (x[0] - t[2]),
        Gradient = (x, t, g) =>
        {
            var z = x[0] - t[2];
            g[0] = 1;
            g[1] = z * z;
            g[2] = -2 * t[1] * z;
        },
        Example = [2.9, 0.08, -3.6],
        ExampleInput = [-3.2],
    };

    /// <summary>
    /// The loss against LR as two power laws meeting at the optimum: with u = lr / lr_opt,
    /// L = L_min + K·((q·u^p + p·u^(−q)) / (p + q) − 1). The bracket is 0 with zero slope at u = 1 (so L_min is
    /// the loss at the optimum and x_opt = log10 lr_opt is where it lies), grows as u^p above the optimum (too
    /// large an LR) and as u^(−q) below it (too small); near the optimum it is K·(p·q/2)·(ln u)², the quadratic.
    /// Chosen over L0 + A·(η/η*)^p + B·(η*/η)^q, whose η*, A and B are not separately identifiable.
    /// </summary>
    static LawDefinition LrPower() => new()
    {
        Name = "lr_power",
        Formula = "L = L_min + K·((q·u^p + p·u^(−q))/(p + q) − 1), u = lr/10^x_opt",
        Source = "CptLab: a power law in LR on each side of the optimum (asymmetric, unlike lr_quadratic)",
        Inputs = [new("log10_lr", "log10 of the peak learning rate")],
        Parameters =
        [
            new("L_min", "loss at the optimal LR", -Inf, Inf, []),
            new("K", "scale", 0, Inf, []),
            new("x_opt", "log10 of the optimal LR", -Inf, Inf, []) { GridFromInput = "log10_lr" },
            new("p", "exponent above the optimum", 0.01, 10, [0.5, 1, 2]),
            new("q", "exponent below the optimum", 0.01, 10, [0.5, 1, 2]),
        ],
        LinearParameters = ["L_min", "K"],
        Value = (x, t) => t[0] + t[1] * PowerBracket(x[0] - t[2], t[3], t[4]),
        Gradient = (x, t, g) =>
        {
            var (p, q) = (t[3], t[4]);
            var lnU = (x[0] - t[2]) * Math.Log(10);
            var (up, um) = (Math.Exp(p * lnU), Math.Exp(-q * lnU));
            var s = q * up + p * um;
            var pq = p + q;
            g[0] = 1;
            g[1] = s / pq - 1;
            g[2] = t[1] * p * q * Math.Log(10) * (um - up) / pq;
            g[3] = t[1] * ((q * up * lnU + um) * pq - s) / (pq * pq);
            g[4] = t[1] * ((up - p * um * lnU) * pq - s) / (pq * pq);
        },
        Example = [2.9, 0.05, -3.6, 1.2, 0.7],
        ExampleInput = [-3.1],
    };

    static double PowerBracket(double z, double p, double q)
    {
        var lnU = z * Math.Log(10);
        return (q * Math.Exp(p * lnU) + p * Math.Exp(-q * lnU)) / (p + q) - 1;
    }

    /// <summary>The token law of <see cref="TokenLaw"/> (src/CptLab.Laws/TokenLaw.cs), which extrapolates a run's curve.</summary>
    static LawDefinition TokenLawEntry() => new()
    {
        Name = "token_law",
        Formula = "L = E + B·D^(−β)",
        Source = "CptLab TokenLaw (src/CptLab.Laws/TokenLaw.cs): loss against training tokens of one run, used to extrapolate the proxy runs",
        Inputs = [new("d", "training tokens D", InputDomain.Positive)],
        Parameters =
        [
            new("E", "loss as D → ∞", -Inf, Inf, []),
            new("B", "coefficient", 0, Inf, []),
            new("beta", "exponent β", 0, 5, [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5]),
        ],
        LinearParameters = ["E", "B"],
        Value = (x, t) => t[0] + t[1] * Math.Pow(x[0], -t[2]),
        Gradient = (x, t, g) =>
        {
            var z = Math.Pow(x[0], -t[2]);
            g[0] = 1;
            g[1] = z;
            g[2] = -t[1] * z * Math.Log(x[0]);
        },
        Example = [2.1, 40, 0.3],
        ExampleInput = [5e8],
    };

    /// <summary>The sweep fit's own families (LawFamily.cs), described; LawFitter fits them over a whole sweep.</summary>
    static LawDefinition Descriptive(LawKind kind)
    {
        var family = LawFamily.For(kind);
        var (parameters, output) = kind switch
        {
            LawKind.ResponseSurfaceLinear => (Coefficients(1), LawOutput.LogLoss),
            LawKind.ResponseSurfaceQuadratic => (Coefficients(2), LawOutput.LogLoss),
            LawKind.ResponseSurfaceConstant => (Coefficients(0), LawOutput.LogLoss),
            _ => (new[] { "c@lr", "k@lr", "t@lr" }.Select(n => new LawParameter(n, $"{n[0]} of L = c + k·exp(t·r) at each swept LR (named {n[0]}@lr=VALUE)", -Inf, Inf, [])).ToArray(), LawOutput.Loss),
        };
        return new LawDefinition
        {
            Name = LawFamily.Name(kind),
            Formula = family.Formula,
            Source = "CptLab sweep fit (src/CptLab.Laws/LawFamily.cs), one law per language, chosen among the families by leave-one-out error",
            Inputs = [new("almr", "ALMR (share of the added language)", InputDomain.NonNegative), new("log10_lr", "log10 of the peak learning rate")],
            Parameters = parameters,
            Output = output,
            NotFittableReason = $"{LawFamily.Name(kind)} is a sweep family: LawFitter fits it per language over a whole ALMR × LR sweep (`cptlab sweep fit --dir DIR`), " +
                                "centred on the swept box and chosen against the other families by leave-one-out error; to fit one table, use data_mixing_law (one LR), lr_quadratic or lr_power (one ALMR)",
        };
    }

    static LawParameter[] Coefficients(int degree) =>
        new[] { "a", "b", "c" }.SelectMany(s => Enumerable.Range(0, degree + 1).Select(k => new LawParameter($"{s}{k}",
            $"coefficient of u^{k} in {(s == "a" ? "the log-loss at the centre LR" : s == "b" ? "the slope in z" : "the curvature in z")}", -Inf, Inf, []))).ToArray();
}
