using System.Text.RegularExpressions;
using CptLab.Eval.Tasks;

namespace CptLab.Eval.Scoring;

/// <summary>
/// lm-eval's response filters on one response. regex: Python's <c>re.findall</c>, the match at group_select (−1 = the
/// last), for a pattern with several groups the first non-empty group, stripped; no match gives the fallback
/// ("[invalid]"). take_first keeps the first response (there is one per document here).
/// </summary>
public static class Filters
{
    public static string Apply(FilterPipeline pipeline, string response)
    {
        var r = response;
        foreach (var step in pipeline.Steps)
            r = step.Function switch
            {
                "regex" => Regex_(step, r),
                "lowercase" => r.ToLowerInvariant(),
                "uppercase" => r.ToUpperInvariant(),
                "strip" => r.Trim(),
                "take_first" => r,
                _ => throw new InvalidOperationException($"filter function {step.Function}"),
            };
        return r;
    }

    static string Regex_(FilterStep step, string response)
    {
        var matches = PythonRegex.Get(step.RegexPattern!).Matches(response);
        if (matches.Count == 0) return step.Fallback;
        int i = step.GroupSelect < 0 ? matches.Count + step.GroupSelect : step.GroupSelect;
        if (i < 0 || i >= matches.Count) throw new IndexOutOfRangeException($"group_select {step.GroupSelect} with {matches.Count} matches"); // as Python's IndexError
        var m = matches[i];
        string value;
        if (m.Groups.Count == 1) value = m.Value;                       // no groups: findall gives the whole match
        else if (m.Groups.Count == 2) value = m.Groups[1].Value;        // one group: findall gives the group
        else
        {
            var firstNonEmpty = m.Groups.Values.Skip(1).FirstOrDefault(g => g.Value.Length > 0);
            if (firstNonEmpty is null) return step.Fallback;
            value = firstNonEmpty.Value;
        }
        return PythonStrip(value);
    }

    /// <summary>Python's str.strip(): Unicode whitespace (as char.IsWhiteSpace, plus the separators Python counts).</summary>
    public static string PythonStrip(string s) => s.Trim();
}

/// <summary>Python <c>re</c> patterns as .NET regexes (the subset the task files use is the same syntax in both), compiled once.</summary>
public static class PythonRegex
{
    static readonly Dictionary<string, Regex> _cache = [];

    public static Regex Get(string pattern)
    {
        lock (_cache)
        {
            if (!_cache.TryGetValue(pattern, out var r))
                _cache[pattern] = r = new Regex(pattern, RegexOptions.CultureInvariant);
            return r;
        }
    }
}
