using CptLab.Eval.Backends;

namespace CptLab.Eval.Tests.Generation;

/// <summary>
/// A backend that answers each generate_until request from a script (prompt, sample number → text) and records
/// what it was asked, so a test controls the generations and checks the requests the evaluator made.
/// </summary>
sealed class ScriptedModel(Func<string, int, string> script) : IEvalModel
{
    readonly Dictionary<string, int> _seen = [];

    public string Name => "scripted";
    public List<GenerateUntilRequest> Requests { get; } = [];

    public IReadOnlyList<LoglikelihoodResult> Loglikelihood(IReadOnlyList<LoglikelihoodRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default) =>
        throw new NotSupportedException("the scripted model only generates");

    public IReadOnlyList<string> GenerateUntil(IReadOnlyList<GenerateUntilRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default)
    {
        Requests.AddRange(requests);
        return requests.Select(r =>
        {
            int n = _seen.GetValueOrDefault(r.Context);
            _seen[r.Context] = n + 1;
            return script(r.Context, n);
        }).ToArray();
    }

    public void Dispose() { }
}
