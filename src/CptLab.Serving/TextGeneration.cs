using System.Runtime.CompilerServices;
using CptLab.Data.Tokenization;
using CptLab.Model;

namespace CptLab.Serving;

/// <summary>What a caller asks besides the prompt: sampling, limits and stop strings.</summary>
public sealed record TextGenerationOptions
{
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;
    public int MaxNewTokens { get; init; }
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    public bool IgnoreEos { get; init; }
    public double FrequencyPenalty { get; init; }
    public double PresencePenalty { get; init; }
    /// <summary>Token id → value added to its logit before sampling (OpenAI's logit_bias).</summary>
    public IReadOnlyDictionary<int, float> LogitBias { get; init; } = new Dictionary<int, float>();
    public int? TopLogprobs { get; init; }
    public int? PromptLogprobs { get; init; }
}

/// <summary>
/// A piece of reply text with the tokens that produced it. <see cref="Finish"/> is set on the last piece;
/// <see cref="PromptScores"/> on the first when the prompt was scored.
/// </summary>
public sealed record TextPiece(string Text, IReadOnlyList<TokenLogprob> Tokens, FinishReason? Finish)
{
    public IReadOnlyList<TokenLogprob>? PromptScores { get; init; }
    /// <summary>Tokens generated so far (the usage count), including a final stop token.</summary>
    public int CompletionTokens { get; init; }
}

/// <summary>A whole reply: its text, why it ended, the tokens it cost, and logprobs when asked.</summary>
public sealed record TextCompletion(string Text, FinishReason Finish, int CompletionTokens, IReadOnlyList<TokenLogprob> Tokens, IReadOnlyList<TokenLogprob>? PromptScores);

/// <summary>
/// Text generation over the scheduler: submits token ids, turns the tokens that come back into text as soon
/// as it is complete UTF-8, and ends at a stop string (which is not part of the text, as OpenAI does),
/// cancelling the sequence so its cache is freed. The HTTP endpoints and `cptlab chat` both stream this.
/// </summary>
public static class TextGeneration
{
    /// <summary>
    /// Submits at once (so a full queue or a bad request throws here, before a caller starts a response) and
    /// returns the reply as it is generated.
    /// </summary>
    public static IAsyncEnumerable<TextPiece> Stream(BatchScheduler scheduler, IReadOnlyList<int> promptIds, TextGenerationOptions options,
        CancellationToken cancellation = default)
    {
        var model = scheduler.Model;
        var request = new SequenceRequest(promptIds, options.MaxNewTokens, options.Sampling)
        {
            StopIds = model.StopIds, IgnoreEos = options.IgnoreEos,
            FrequencyPenalty = options.FrequencyPenalty, PresencePenalty = options.PresencePenalty, LogitBias = options.LogitBias,
            TopLogprobs = options.TopLogprobs, PromptLogprobs = options.PromptLogprobs,
        };
        var handle = scheduler.Submit(request, cancellation);
        return Read(model, handle, options, cancellation);
    }

    static async IAsyncEnumerable<TextPiece> Read(ServedModel model, SequenceHandle handle, TextGenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellation)
    {
        var detok = new IncrementalDecoder(model.Tokenizer, model.SpecialIds);
        var stops = new StopStringMatcher(options.StopStrings);
        var pendingTokens = new List<TokenLogprob>();
        IReadOnlyList<TokenLogprob>? promptScores = null;
        int generated = 0;
        try
        {
            await foreach (var e in handle.Events.ReadAllAsync(cancellation).ConfigureAwait(false))
            {
                switch (e)
                {
                    case PromptScored p:
                        promptScores = p.Scores;
                        break;
                    case SequenceFinished f:
                        yield return new TextPiece(stops.Flush(), [], f.Finish) { PromptScores = promptScores, CompletionTokens = generated };
                        yield break;
                    case SequenceFailed failed:
                        throw new InvalidOperationException(failed.Message);
                    case TokenGenerated t:
                        generated++;
                        if (t.Logprob is not null) pendingTokens.Add(t.Logprob);
                        bool isStopId = t.Finish == FinishReason.Stop;
                        var (text, hitStop) = stops.Push(isStopId ? "" : detok.Push(t.Id));
                        if (hitStop)
                        {
                            handle.Cancel();
                            yield return Piece(text, FinishReason.Stop);
                            yield break;
                        }
                        if (t.Finish is { } finish)
                        {
                            var (rest, stopAtEnd) = stops.Push(detok.Flush());
                            yield return Piece(text + rest + (stopAtEnd ? "" : stops.Flush()), stopAtEnd ? FinishReason.Stop : finish);
                            yield break;
                        }
                        if (text.Length > 0) yield return Piece(text, null);
                        break;
                }
            }
            // The channel closed without a final event: the sequence was cancelled (by us or the caller).
            cancellation.ThrowIfCancellationRequested();
            throw new OperationCanceledException("the sequence was cancelled");
        }
        finally
        {
            handle.Cancel(); // no-op when finished; frees the cache when the consumer stopped early
        }

        TextPiece Piece(string text, FinishReason? finish)
        {
            var tokens = pendingTokens.ToArray();
            pendingTokens.Clear();
            var piece = new TextPiece(text, tokens, finish) { PromptScores = promptScores, CompletionTokens = generated };
            promptScores = null;
            return piece;
        }
    }

    /// <summary>The whole reply at once.</summary>
    public static Task<TextCompletion> CompleteAsync(BatchScheduler scheduler, IReadOnlyList<int> promptIds, TextGenerationOptions options, CancellationToken cancellation = default) =>
        CollectAsync(Stream(scheduler, promptIds, options, cancellation));

    public static async Task<TextCompletion> CollectAsync(IAsyncEnumerable<TextPiece> pieces)
    {
        var text = new System.Text.StringBuilder();
        var tokens = new List<TokenLogprob>();
        IReadOnlyList<TokenLogprob>? prompt = null;
        await foreach (var p in pieces.ConfigureAwait(false))
        {
            text.Append(p.Text);
            tokens.AddRange(p.Tokens);
            prompt ??= p.PromptScores;
            if (p.Finish is { } f) return new TextCompletion(text.ToString(), f, p.CompletionTokens, tokens, prompt);
        }
        throw new InvalidOperationException("the sequence ended without a finish reason");
    }
}

/// <summary>
/// Turns a stream of token ids into text without splitting a UTF-8 character across pieces: byte-level BPE
/// tokens can end mid-character, so text is released only when the decoded window does not end in U+FFFD.
/// Decodes a short window (from the last complete point) per token, not the whole reply.
/// </summary>
public sealed class IncrementalDecoder(ITextTokenizer tokenizer, IReadOnlySet<int> skip)
{
    readonly List<int> _ids = [];
    int _prefix, _read;

    public string Push(int id)
    {
        if (skip.Contains(id)) return "";
        _ids.Add(id);
        var before = Decode(_prefix, _read);
        var now = Decode(_prefix, _ids.Count);
        if (now.Length <= before.Length || now.EndsWith('\uFFFD')) return "";
        _prefix = _read;
        _read = _ids.Count;
        return now[before.Length..];
    }

    /// <summary>Whatever is left (an incomplete character decodes as U+FFFD).</summary>
    public string Flush()
    {
        var before = Decode(_prefix, _read);
        var now = Decode(_prefix, _ids.Count);
        _prefix = _read = _ids.Count;
        return now.Length > before.Length ? now[before.Length..] : "";
    }

    string Decode(int from, int to) => from >= to ? "" : tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids)[from..to]);
}

/// <summary>
/// Finds stop strings in streamed text. Text that might be the start of a stop string is held back until
/// it is not; at a match the text before it is released and the rest dropped.
/// </summary>
public sealed class StopStringMatcher(IReadOnlyList<string> stops)
{
    string _held = "";

    /// <summary>Adds text; returns what can be released and whether a stop string was found.</summary>
    public (string Text, bool Stopped) Push(string text)
    {
        if (stops.Count == 0) return (text, false);
        var buffer = _held + text;
        int cut = -1;
        foreach (var s in stops)
        {
            int at = buffer.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            _held = "";
            return (buffer[..cut], true);
        }
        int keep = 0;
        foreach (var s in stops)
            for (int n = Math.Min(s.Length - 1, buffer.Length); n > keep; n--)
                if (buffer.AsSpan(buffer.Length - n).SequenceEqual(s.AsSpan(0, n))) { keep = n; break; }
        _held = buffer[(buffer.Length - keep)..];
        return (buffer[..(buffer.Length - keep)], false);
    }

    public string Flush()
    {
        var rest = _held;
        _held = "";
        return rest;
    }
}
