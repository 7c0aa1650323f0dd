using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.TestKit;

namespace CptLab.Templates.Tests;

/// <summary>Renders with both engines and compares.</summary>
public static class Compare
{
    public static Dictionary<string, object?> Vars(JsonObject vars)
    {
        using var doc = JsonDocument.Parse(vars.ToJsonString());
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
    }

    /// <summary>Null when both agree (same text, or both raised); else a description of the difference.</summary>
    public static string? Difference(NodeJinja node, string template, JsonObject vars, string label)
    {
        var (ok, reference) = node.Render(template, vars);
        string ours;
        bool oursOk;
        TemplateException? error = null;
        try
        {
            ours = JinjaTemplate.Compile(template, label).Render(Vars(vars));
            oursOk = true;
        }
        catch (TemplateException e)
        {
            error = e;
            ours = e.Message;
            oursOk = false;
        }
        if (ok && oursOk) return ours == reference ? null : $"{label}: output differs at char {FirstDiff(ours, reference)}\n--- reference:\n{reference}\n--- CptLab:\n{ours}";
        if (!ok && !oursOk)
            // raise_exception messages are the template's own: they must match exactly.
            return error!.Raised && error.Problem != reference ? $"{label}: both raised, messages differ: reference '{reference}', CptLab '{error.Problem}'" : null;
        return ok ? $"{label}: CptLab raised '{ours}' but the reference rendered:\n{reference}"
                  : $"{label}: the reference raised '{reference}' but CptLab rendered:\n{ours}";
    }

    static int FirstDiff(string a, string b)
    {
        var i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        return i;
    }
}
