using CptLab.Core;

namespace CptLab.Templates;

/// <summary>
/// A chat template that cannot be loaded (a syntax error, or a Jinja feature outside the supported subset) or that
/// failed while rendering (a type error, or the template's own <c>raise_exception</c>). <see cref="Line"/> and
/// <see cref="Column"/> (1-based, in the template source) say where, when known.
/// </summary>
public sealed class TemplateException : CptLabException
{
    public TemplateException(string source, int line, int column, string problem)
        : base($"{source}:{line}:{column}: {problem}")
    {
        TemplateName = source;
        Line = line;
        Column = column;
        Problem = problem;
    }

    /// <summary>The template raised this through <c>raise_exception(message)</c>.</summary>
    public TemplateException(string source, string raisedMessage)
        : base($"{source}: the template refused the conversation: {raisedMessage}")
    {
        TemplateName = source;
        Problem = raisedMessage;
        Raised = true;
    }

    /// <summary>The template's name (a file and key, or "chat template").</summary>
    public string TemplateName { get; }
    public int Line { get; }
    public int Column { get; }
    /// <summary>The problem without the position.</summary>
    public string Problem { get; }
    /// <summary>True when the template itself called <c>raise_exception</c>; <see cref="Problem"/> is its message.</summary>
    public bool Raised { get; }
}
