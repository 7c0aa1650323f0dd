using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CptLab.Templates;

/// <summary>
/// A compiled Jinja template of the subset Hugging Face chat templates use (docs/chat-templates.md). Compiling
/// refuses, with line:column, any syntax error and any statement, filter, test, function or method outside the
/// subset; rendering follows @huggingface/jinja, against which the tests check every real Hub template byte for byte.
/// <code>
/// var t = JinjaTemplate.Compile(source, "tokenizer_config.json: chat_template");
/// var prompt = t.Render(new Dictionary&lt;string, object?&gt; { ["messages"] = messages, ["add_generation_prompt"] = true });
/// </code>
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<Node> _program;

    JinjaTemplate(string source, string name, List<Node> program)
    {
        Source = source;
        Name = name;
        _program = program;
    }

    public string Source { get; }
    /// <summary>Where the template came from, used in error messages.</summary>
    public string Name { get; }

    /// <exception cref="TemplateException">a syntax error or an unsupported feature, with its position.</exception>
    public static JinjaTemplate Compile(string source, string name = "chat template") => new(source, name, Parser.Parse(source, name));

    /// <summary>
    /// The template rendered with <paramref name="variables"/>: strings, booleans, numbers, null, lists, dictionaries
    /// (<c>IDictionary&lt;string, object?&gt;</c> or <c>IReadOnlyDictionary</c>), <see cref="JsonElement"/> and
    /// <see cref="JsonNode"/>. A name not given is undefined, as in Jinja.
    /// </summary>
    /// <exception cref="TemplateException">a type error while rendering, or the template's own raise_exception.</exception>
    public string Render(IEnumerable<KeyValuePair<string, object?>> variables)
    {
        var scope = new Scope(Interpreter.Globals());
        foreach (var (k, v) in variables)
            scope.Set(k, FromClr(v));
        try
        {
            return new Interpreter().Render(_program, scope);
        }
        catch (RaisedError e)
        {
            throw new TemplateException(Name, e.Message);
        }
        catch (RenderError e)
        {
            var (line, col) = Positions.LineColumn(Source, e.Data["pos"] as int? ?? 0);
            throw new TemplateException(Name, line, col, e.Message);
        }
    }

    static Value FromClr(object? o) => o switch
    {
        null => NullValue.Instance,
        Value v => v,
        string s => new StringValue(s),
        bool b => BoolValue.Of(b),
        int or long or short or byte or uint or ulong => new IntValue(Convert.ToDouble(o)),
        double or float or decimal => Number(Convert.ToDouble(o)),
        JsonElement e => FromJson(e),
        JsonNode n => FromJson(JsonSerializer.SerializeToElement(n)),
        IDictionary<string, object?> d => new DictValue(new OrderedDictionary<string, Value>(d.Select(kv => KeyValuePair.Create(kv.Key, FromClr(kv.Value))))),
        IReadOnlyDictionary<string, object?> d => new DictValue(new OrderedDictionary<string, Value>(d.Select(kv => KeyValuePair.Create(kv.Key, FromClr(kv.Value))))),
        IDictionary<string, string> d => new DictValue(new OrderedDictionary<string, Value>(d.Select(kv => KeyValuePair.Create(kv.Key, FromClr(kv.Value))))),
        IEnumerable e => new ListValue([.. e.Cast<object?>().Select(FromClr)]),
        _ => throw new ArgumentException($"a template variable cannot be a {o.GetType().Name}"),
    };

    // As in JavaScript, a number is an integer when it has no fraction (1.0 in JSON is the integer 1).
    static Value Number(double d) => d % 1 == 0 && double.IsFinite(d) ? new IntValue(d) : new FloatValue(d);

    static Value FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => NullValue.Instance,
        JsonValueKind.True => BoolValue.True,
        JsonValueKind.False => BoolValue.False,
        JsonValueKind.String => new StringValue(e.GetString()!),
        JsonValueKind.Number => Number(e.GetDouble()),
        JsonValueKind.Array => new ListValue([.. e.EnumerateArray().Select(FromJson)]),
        _ => new DictValue(new OrderedDictionary<string, Value>(e.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, FromJson(p.Value))))),
    };
}
