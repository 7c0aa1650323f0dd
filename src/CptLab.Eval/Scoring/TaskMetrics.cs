using CptLab.Eval.Tasks;

namespace CptLab.Eval.Scoring;

/// <summary>
/// The metrics and their standard errors as lm-evaluation-harness computes them (lm_eval/api/metrics.py):
/// mean with the sample standard error of the mean (n − 1 in the variance); a size-weighted group aggregate with
/// the pooled standard error of <c>pooled_sample_stderr</c>.
/// </summary>
public static class TaskMetrics
{
    /// <summary>
    /// lm-eval's multiple_choice process_results: acc = argmax of the summed log-likelihoods, acc_norm = argmax of
    /// log-likelihood / len(choice) in characters (the choice text, without the target delimiter); ties go to the
    /// first, as np.argmax.
    /// </summary>
    public static (int Pred, int PredNorm) MultipleChoice(IReadOnlyList<double> logLikelihoods, IReadOnlyList<string> choices)
    {
        int pred = 0, predNorm = 0;
        for (int i = 1; i < logLikelihoods.Count; i++)
        {
            if (logLikelihoods[i] > logLikelihoods[pred]) pred = i;
            if (logLikelihoods[i] / Chars(choices[i]) > logLikelihoods[predNorm] / Chars(choices[predNorm])) predNorm = i;
        }
        return (pred, predNorm);
    }

    /// <summary>Python's len(str): code points, not UTF-16 units.</summary>
    public static int Chars(string s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++) if (!char.IsLowSurrogate(s[i])) n++;
        return n;
    }

    /// <summary>
    /// exact_match as lm-eval's exact_match_hf_evaluate: every regex in regexes_to_ignore removed (Python re.sub) from
    /// prediction and reference, then lower-cased if ignore_case, then string.punctuation removed if ignore_punctuation.
    /// </summary>
    public static double ExactMatch(string prediction, string reference, MetricSpec m)
    {
        string p = prediction, r = reference;
        foreach (var rx in m.RegexesToIgnore)
        {
            var re = PythonRegex.Get(rx);
            p = re.Replace(p, "");
            r = re.Replace(r, "");
        }
        if (m.IgnoreCase) { p = p.ToLowerInvariant(); r = r.ToLowerInvariant(); }
        if (m.IgnorePunctuation) { p = StripPunctuation(p); r = StripPunctuation(r); }
        return p == r ? 1.0 : 0.0;
    }

    const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"; // Python's string.punctuation

    static string StripPunctuation(string s) => string.Concat(s.Where(c => !Punctuation.Contains(c)));

    public static double Mean(IReadOnlyList<double> xs) => xs.Count == 0 ? double.NaN : xs.Sum() / xs.Count;

    /// <summary>lm-eval's mean_stderr: sample standard deviation (n − 1) / √n; NaN below two items.</summary>
    public static double MeanStderr(IReadOnlyList<double> xs)
    {
        if (xs.Count < 2) return double.NaN;
        double mu = Mean(xs);
        double ss = xs.Sum(x => (x - mu) * (x - mu));
        return Math.Sqrt(ss / (xs.Count - 1)) / Math.Sqrt(xs.Count);
    }

    /// <summary>A group's value: the size-weighted mean of its subtasks (or the plain mean of them when not weighted).</summary>
    public static double Aggregate(IReadOnlyList<double> values, IReadOnlyList<int> sizes, bool weightBySize)
    {
        double num = 0, den = 0;
        for (int i = 0; i < values.Count; i++)
        {
            double w = weightBySize ? sizes[i] : 1;
            num += values[i] * w;
            den += w;
        }
        return num / den;
    }

    /// <summary>
    /// lm-eval's pooled_sample_stderr: pooled variance Σ (nᵢ − 1)·seᵢ²·nᵢ / (Σ nᵢ − k), then √(var / Σ nᵢ).
    /// </summary>
    public static double PooledStderr(IReadOnlyList<double> stderrs, IReadOnlyList<int> sizes)
    {
        double num = 0;
        long total = 0;
        for (int i = 0; i < stderrs.Count; i++)
        {
            num += (sizes[i] - 1) * stderrs[i] * stderrs[i] * sizes[i];
            total += sizes[i];
        }
        return Math.Sqrt(num / (total - stderrs.Count) / total);
    }
}
