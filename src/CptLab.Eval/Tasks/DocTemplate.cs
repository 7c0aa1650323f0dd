using System.Text.RegularExpressions;
using CptLab.Templates;

namespace CptLab.Eval.Tasks;

/// <summary>
/// A doc_to_text / doc_to_target / description template: Jinja over the document's fields (and, in a grouped task,
/// <c>subject</c> and <c>subject_name</c>), rendered by CptLab's Jinja engine. lm-eval renders with
/// keep_trailing_newline; the engine drops one trailing newline as Hugging Face's chat templates do, so the source
/// gets one extra newline to keep the text exactly as written.
/// </summary>
public sealed partial class DocTemplate
{
    readonly JinjaTemplate _template;

    public DocTemplate(string source, string name)
    {
        Source = source;
        _template = JinjaTemplate.Compile(source + "\n", name);
        Fields = FieldPattern().Matches(source).Select(m => m.Groups[1].Value)
            .Where(f => f is not ("subject" or "subject_name" or "true" or "false" or "none" or "None" or "loop" or "range"))
            .Distinct().ToArray();
    }

    public string Source { get; }

    /// <summary>The document fields the template reads (the first name of each <c>{{ … }}</c>): a document without one is skipped.</summary>
    public IReadOnlyList<string> Fields { get; }

    /// <summary>True when the source has no template syntax: then it may name a column (lm-eval's <c>doc_to_target: answer</c>).</summary>
    public bool IsPlain => !Source.Contains("{{", StringComparison.Ordinal) && !Source.Contains("{%", StringComparison.Ordinal);

    public string Render(EvalDoc doc, Subject? subject)
    {
        var vars = new Dictionary<string, object?>(doc.Fields);
        if (subject is not null)
        {
            vars["subject"] = subject.Name;
            vars["subject_name"] = subject.DisplayName;
        }
        return _template.Render(vars);
    }

    [GeneratedRegex(@"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex FieldPattern();
}
