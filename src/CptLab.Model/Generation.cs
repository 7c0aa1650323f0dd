using System.Runtime.CompilerServices;
using CptLab.Core;
using static TorchSharp.torch;

namespace CptLab.Model;

public enum FinishReason { Stop, Length }

/// <summary>One generated token; <see cref="Finish"/> is set on the last one.</summary>
public sealed record GeneratedToken(int Id, FinishReason? Finish);

public sealed record GenerationRequest(IReadOnlyList<int> PromptIds, int MaxNewTokens, SamplingOptions Sampling)
{
    /// <summary>Generation ends after any of these tokens (which is yielded, with Finish = Stop).</summary>
    public IReadOnlySet<int> StopIds { get; init; } = new HashSet<int>();
}

/// <summary>
/// Autoregressive generation with a KV cache: one forward pass over the prompt, then one position per step.
/// Tokens are yielded as they are chosen. Each step runs under no_grad in its own dispose scope, opened and
/// closed inside the step, so nothing is held across a yield or an await.
/// </summary>
public static class Generation
{
    public static IEnumerable<GeneratedToken> Generate(LlamaForCausalLM model, GenerationRequest request, CancellationToken cancellation = default)
    {
        Validate(model, request);
        var sampler = new TokenSampler(request.Sampling, request.PromptIds);
        int capacity = request.PromptIds.Count + request.MaxNewTokens;
        using var cache = new KvCache(model.Config, 1, capacity, model.Dtype, model.Body.EmbedTokens.device);
        var logits = new float[model.Config.VocabSize];

        int next = Step(model, cache, request.PromptIds, sampler, logits);
        for (int produced = 1; ; produced++)
        {
            bool stop = request.StopIds.Contains(next);
            bool full = produced == request.MaxNewTokens;
            yield return new GeneratedToken(next, stop ? FinishReason.Stop : full ? FinishReason.Length : null);
            if (stop || full) yield break;
            cancellation.ThrowIfCancellationRequested();
            next = Step(model, cache, [next], sampler, logits);
        }
    }

    /// <summary>The same tokens as <see cref="Generate"/>, as an async stream; each step runs on the thread pool.</summary>
    public static async IAsyncEnumerable<GeneratedToken> GenerateAsync(LlamaForCausalLM model, GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var e = Generate(model, request, cancellation).GetEnumerator();
        while (await Task.Run(e.MoveNext, cancellation).ConfigureAwait(false))
            yield return e.Current;
    }

    /// <summary>Feeds tokens through the model (appending to the cache) and samples the next token from the last position.</summary>
    static int Step(LlamaForCausalLM model, KvCache cache, IReadOnlyList<int> tokens, TokenSampler sampler, float[] logits)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(tokens.Select(t => (long)t).ToArray(), ScalarType.Int64, model.Body.EmbedTokens.device).unsqueeze(0); // (1, T)
        var last = model.forward(ids, cache)[0, -1].cpu();                                                                         // (V)
        TensorData.CopyTo(last, logits);
        return sampler.Next(logits);
    }

    static void Validate(LlamaForCausalLM model, GenerationRequest r)
    {
        r.Sampling.Validate();
        if (r.PromptIds.Count == 0) throw new CptLabException("the prompt is empty; give at least one token (usually the BOS id)");
        if (r.MaxNewTokens <= 0) throw new CptLabException($"max new tokens {r.MaxNewTokens} must be positive");
        int vocab = model.Config.VocabSize;
        foreach (var id in r.PromptIds)
            if (id < 0 || id >= vocab) throw new CptLabException($"prompt token id {id} is outside the vocabulary [0, {vocab})");
        int total = r.PromptIds.Count + r.MaxNewTokens;
        if (total > model.Config.MaxPositionEmbeddings)
            throw new CptLabException($"prompt ({r.PromptIds.Count}) + max new tokens ({r.MaxNewTokens}) = {total} exceeds the context of {model.Config.MaxPositionEmbeddings} positions");
    }
}
