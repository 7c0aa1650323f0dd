using System.Text;
using System.Text.RegularExpressions;

namespace CptLab.Eval.Scoring;

/// <summary>
/// The metrics of a loglikelihood_rolling task as lm-eval defines them (lm_eval/api/task.py <c>count_words</c> /
/// <c>count_bytes</c>, lm_eval/api/metrics.py <c>weighted_perplexity</c> / <c>bits_per_byte</c>): each document gives
/// (log-likelihood, words) and (log-likelihood, bytes), and the aggregate is weighted by words or bytes over all
/// documents, not a mean of per-document values:
/// word_perplexity = exp(−Σ ll / Σ words), byte_perplexity = exp(−Σ ll / Σ bytes), bits_per_byte = −Σ ll / Σ bytes / ln 2.
/// Bytes are the UTF-8 bytes of the document text itself (three per CJK character), words the pieces of
/// Python's <c>re.split(r"\s+", text)</c> (so a Chinese text without spaces is one "word").
/// </summary>
public static partial class Perplexity
{
    public static readonly IReadOnlyList<string> Metrics = ["word_perplexity", "byte_perplexity", "bits_per_byte"];

    /// <summary>len(re.split(r"\s+", text)): Python's \s also matches U+001C–U+001F, .NET's does not.</summary>
    public static long CountWords(string text) => Whitespace().Split(text).Length;

    public static long CountBytes(string text) => Encoding.UTF8.GetByteCount(text);

    /// <summary>The aggregate over documents (log-likelihood in nats, words, bytes).</summary>
    public static double Aggregate(string metric, IReadOnlyList<(double LogLikelihood, long Words, long Bytes)> docs)
    {
        double ll = docs.Sum(d => d.LogLikelihood);
        return metric switch
        {
            "word_perplexity" => Math.Exp(-ll / docs.Sum(d => d.Words)),
            "byte_perplexity" => Math.Exp(-ll / docs.Sum(d => d.Bytes)),
            "bits_per_byte" => -ll / docs.Sum(d => d.Bytes) / Math.Log(2),
            _ => throw new ArgumentException($"'{metric}' is not a loglikelihood_rolling metric", nameof(metric)),
        };
    }

    /// <summary>The same metric of one document alone (samples.jsonl; what `eval compare` pairs).</summary>
    public static double PerDocument(string metric, double logLikelihood, long words, long bytes) => Aggregate(metric, [(logLikelihood, words, bytes)]);

    [GeneratedRegex(@"[\s\x1c-\x1f]+")]
    private static partial Regex Whitespace();
}
