namespace CptLab.Laws.Registry;

/// <summary>
/// A law as data: a formula over named inputs (columns of a table: almr, log10_lr, n, d, r, …) with named
/// parameters, each with its admissible range and starting grid, written as a registered C# function.
///
/// Why registered C# functions and not an expression language: every law a user asked for is a sum of powers
/// and exponentials that fits in three lines of C#, an analytic gradient is two more, and a compiled function
/// is checked by the compiler, fast over 4,500 starts, and debuggable. An expression language would need a
/// parser, its own error messages and symbolic differentiation to reach the same place; a new law is added
/// here as one more entry in <see cref="BuiltInLaws"/> (or by constructing a LawDefinition in a caller).
///
/// Inputs are passed in declaration order as <c>x</c>, parameters in declaration order as <c>theta</c>.
/// <see cref="Value"/> returns L when <see cref="Output"/> is <see cref="LawOutput.Loss"/> and log L when it
/// is <see cref="LawOutput.LogLoss"/> (Epoch AI's log-sum-exp form is written directly in log space).
/// </summary>
public sealed class LawDefinition
{
    /// <summary>The law's value at inputs <c>x</c> and parameters <c>theta</c>.</summary>
    public delegate double ValueFunction(ReadOnlySpan<double> x, ReadOnlySpan<double> theta);

    /// <summary>Writes ∂value/∂θ_j into <c>gradient</c> (same length as theta).</summary>
    public delegate void GradientFunction(ReadOnlySpan<double> x, ReadOnlySpan<double> theta, Span<double> gradient);

    public required string Name { get; init; }
    /// <summary>The formula in the notation of its paper, with the inputs' and parameters' names.</summary>
    public required string Formula { get; init; }
    /// <summary>Where the law comes from (paper, or the CptLab file it describes).</summary>
    public required string Source { get; init; }
    public required IReadOnlyList<LawInput> Inputs { get; init; }
    public required IReadOnlyList<LawParameter> Parameters { get; init; }
    public LawOutput Output { get; init; } = LawOutput.Loss;

    /// <summary>Null for a descriptive entry (a sweep family fitted by LawFitter over a whole sweep, not by the table fitter).</summary>
    public ValueFunction? Value { get; init; }

    /// <summary>Analytic gradient; null means central differences (see <see cref="EvaluateGradient"/>).</summary>
    public GradientFunction? Gradient { get; init; }

    /// <summary>
    /// Parameters the value is linear in once the others are fixed (E, A, B in Hoffmann's form). Their starts
    /// are solved by least squares for each point of the others' grid instead of being gridded themselves
    /// (variable projection), so the grid only spans the exponents.
    /// </summary>
    public IReadOnlyList<string> LinearParameters { get; init; } = [];

    /// <summary>Why a descriptive entry cannot be fitted by the table fitter, and what fits it instead.</summary>
    public string? NotFittableReason { get; init; }

    /// <summary>Typical parameter values (the published fit where there is one): the gradient check and `laws list` use them.</summary>
    public IReadOnlyList<double>? Example { get; init; }
    /// <summary>A typical input point for <see cref="Example"/>.</summary>
    public IReadOnlyList<double>? ExampleInput { get; init; }

    public bool Fittable => Value is not null && NotFittableReason is null;
    public int ParameterCount => Parameters.Count;

    public int ParameterIndex(string name)
    {
        for (var j = 0; j < Parameters.Count; j++) if (Parameters[j].Name == name) return j;
        return -1;
    }

    /// <summary>The gradient of <see cref="Value"/>: analytic when the entry has one, else central differences.</summary>
    public void EvaluateGradient(ReadOnlySpan<double> x, ReadOnlySpan<double> theta, Span<double> gradient)
    {
        if (Value is null) throw new InvalidOperationException($"{Name} is a descriptive entry without a value function");
        if (Gradient is not null) { Gradient(x, theta, gradient); return; }
        CentralDifferences(Value, x, theta, gradient);
    }

    /// <summary>Central differences with a step of ∛ε·max(|θ_j|, 1e-3), the step that balances truncation and rounding.</summary>
    public static void CentralDifferences(ValueFunction f, ReadOnlySpan<double> x, ReadOnlySpan<double> theta, Span<double> gradient)
    {
        Span<double> t = stackalloc double[theta.Length];
        theta.CopyTo(t);
        for (var j = 0; j < theta.Length; j++)
        {
            var h = 6.06e-6 * Math.Max(Math.Abs(theta[j]), 1e-3);
            t[j] = theta[j] + h;
            var up = f(x, t);
            t[j] = theta[j] - h;
            var down = f(x, t);
            t[j] = theta[j];
            gradient[j] = (up - down) / (2 * h);
        }
    }

    public override string ToString() => $"{Name}: {Formula}";
}

/// <summary>What a law's value function returns.</summary>
public enum LawOutput
{
    /// <summary>The loss L itself.</summary>
    Loss,
    /// <summary>log L (natural log).</summary>
    LogLoss,
}

/// <summary>An input of a law: a column of the table, with the values it may take (N, D must be &gt; 0).</summary>
public sealed record LawInput(string Name, string Description, InputDomain Domain = InputDomain.Any);

public enum InputDomain { Any, Positive, NonNegative }

/// <summary>
/// A parameter: its admissible range [Lower, Upper] (a fit that leaves it is rejected) and the values its
/// starting grid takes (ignored for <see cref="LawDefinition.LinearParameters"/>, which are solved).
/// </summary>
public sealed record LawParameter(string Name, string Description, double Lower, double Upper, IReadOnlyList<double> Grid)
{
    /// <summary>
    /// When set, the grid is taken from the data instead: five quantiles (0, ¼, ½, ¾, 1) of this input's column
    /// (a law's optimal log-LR starts inside the swept LRs, whatever they are).
    /// </summary>
    public string? GridFromInput { get; init; }
}
