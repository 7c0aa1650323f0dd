using System.Text;

namespace CptLab.Templates;

/// <summary>
/// A runtime value. Numbers are doubles, as in the reference engine (JavaScript), with integer and float kept apart
/// because they print differently (<c>2</c> vs <c>2.0</c>). Dicts keep insertion order. Lists and dicts are compared
/// by identity in <c>==</c>, as the reference does.
/// </summary>
abstract class Value
{
    public virtual bool Truthy => true;
    public abstract string TypeName { get; }

    /// <summary>What <c>{{ value }}</c> writes (none and undefined write nothing there; this is their text inside a list).</summary>
    public abstract string Render();

    /// <summary>The text of the value when concatenated with <c>+</c> or <c>~</c>, or joined (JavaScript's String(value)).</summary>
    public virtual string ConcatText() => Render();
}

sealed class UndefinedValue : Value
{
    public static readonly UndefinedValue Instance = new();
    public override bool Truthy => false;
    public override string TypeName => "undefined";
    public override string Render() => "undefined";
}

sealed class NullValue : Value
{
    public static readonly NullValue Instance = new();
    public override bool Truthy => false;
    public override string TypeName => "none";
    public override string Render() => "null";
}

sealed class BoolValue(bool value) : Value
{
    public static readonly BoolValue True = new(true), False = new(false);
    public static BoolValue Of(bool b) => b ? True : False;
    public bool Value { get; } = value;
    public override bool Truthy => Value;
    public override string TypeName => "boolean";
    public override string Render() => Value ? "true" : "false";
}

abstract class NumberValue(double value) : Value
{
    public double Value { get; } = value;
    public override bool Truthy => Value != 0 && !double.IsNaN(Value);
    public override string ConcatText() => JsString.Number(Value);
}

sealed class IntValue(double value) : NumberValue(value)
{
    public override string TypeName => "integer";
    public override string Render() => JsString.Number(Value);
}

sealed class FloatValue(double value) : NumberValue(value)
{
    public override string TypeName => "float";
    public override string Render() =>
        Value == 0 && double.IsNegative(Value) ? "-0.0" : Value % 1 == 0 ? JsString.Number(Value) + ".0" : JsString.Number(Value);
}

sealed class StringValue(string value) : Value
{
    public static readonly StringValue Empty = new("");
    public string Value { get; } = value;
    public override bool Truthy => Value.Length > 0;
    public override string TypeName => "string";
    public override string Render() => Value;
}

sealed class ListValue(List<Value> items, bool isTuple = false) : Value
{
    public List<Value> Items { get; } = items;
    public bool IsTuple { get; } = isTuple;
    public override bool Truthy => Items.Count > 0;
    public override string TypeName => IsTuple ? "tuple" : "list";
    public override string Render() => Json.Write(this, JsonOptions.Default, undefinedAsNull: false);
    // JavaScript's Array.prototype.toString: the items' own text, comma-joined.
    public override string ConcatText() => string.Join(",", Items.Select(i => i.Render()));
}

/// <summary>A dict, or (<see cref="IsNamespace"/>) a <c>namespace()</c>: attribute access and assignment, no methods.</summary>
sealed class DictValue(OrderedDictionary<string, Value> entries, bool isNamespace = false) : Value
{
    public OrderedDictionary<string, Value> Entries { get; } = entries;
    public bool IsNamespace { get; } = isNamespace;
    /// <summary>Keyword arguments travel to a callee as a dict marked so.</summary>
    public bool IsKeywordArguments { get; init; }
    public override bool Truthy => IsNamespace || Entries.Count > 0;
    public override string TypeName => IsNamespace ? "namespace" : "dict";
    public override string Render() => Json.Write(this, JsonOptions.Default, undefinedAsNull: false);
    public override string ConcatText() => "[object Map]";

    public ListValue ItemPairs() => new([.. Entries.Select(e => (Value)new ListValue([new StringValue(e.Key), e.Value]))]);
}

sealed class FunctionValue(string name, Func<List<Value>, Scope, Value> call) : Value
{
    public string Name { get; } = name;
    public Func<List<Value>, Scope, Value> Call { get; } = call;
    public override string TypeName => "function";
    public override string Render() => $"<function {Name}>";
}

/// <summary>Variables of one scope; lookups walk out to the enclosing scopes.</summary>
sealed class Scope(Scope? parent)
{
    readonly Dictionary<string, Value> _variables = [];
    public Scope? Parent { get; } = parent;

    public void Set(string name, Value value) => _variables[name] = value;

    public Value Lookup(string name)
    {
        for (var s = this; s is not null; s = s.Parent)
            if (s._variables.TryGetValue(name, out var v)) return v;
        return UndefinedValue.Instance;
    }
}

sealed record JsonOptions(int? Indent, bool EnsureAscii, bool SortKeys, (string Item, string Key)? Separators)
{
    public static readonly JsonOptions Default = new(null, false, false, null);
}

/// <summary><c>tojson</c>: Python's json.dumps layout (", " and ": ", or "," and newlines with indent), strings as JSON.stringify writes them.</summary>
static class Json
{
    public static string Write(Value v, JsonOptions o, bool undefinedAsNull = true, int depth = 0)
    {
        var (item, key) = o.Separators ?? (o.Indent is > 0 ? (",", ": ") : (", ", ": "));
        switch (v)
        {
            case NullValue: return "null";
            case UndefinedValue: return undefinedAsNull ? "null" : "undefined";
            case BoolValue b: return b.Value ? "true" : "false";
            case NumberValue n: return double.IsFinite(n.Value) ? JsString.Number(n.Value) : "null";
            case StringValue s: return o.EnsureAscii ? AsciiSafe(JsString.Quote(s.Value)) : JsString.Quote(s.Value);
            case ListValue { IsTuple: false } or DictValue:
            {
                var indent = o.Indent is > 0 ? new string(' ', o.Indent.Value) : "";
                var basePad = "\n" + string.Concat(Enumerable.Repeat(indent, depth));
                var childPad = basePad + indent;
                var pretty = o.Indent is > 0;
                if (v is ListValue l)
                {
                    var core = l.Items.Select(x => Write(x, o, undefinedAsNull, depth + 1)).ToList();
                    return pretty && core.Count > 0 ? $"[{childPad}{string.Join(item + childPad, core)}{basePad}]" : $"[{string.Join(item, core)}]";
                }
                var entries = ((DictValue)v).Entries.AsEnumerable();
                if (o.SortKeys) entries = entries.OrderBy(e => e.Key, StringComparer.Create(System.Globalization.CultureInfo.InvariantCulture, ignoreCase: false));
                var parts = entries.Select(e =>
                {
                    var k = o.EnsureAscii ? AsciiSafe(JsString.Quote(e.Key)) : JsString.Quote(e.Key);
                    var s = k + key + Write(e.Value, o, undefinedAsNull, depth + 1);
                    return pretty ? childPad + s : s;
                }).ToList();
                return pretty && parts.Count > 0 ? $"{{{string.Join(item, parts)}{basePad}}}" : $"{{{string.Join(item, parts)}}}";
            }
            default:
                throw new RenderError($"cannot convert a {v.TypeName} to JSON");
        }
    }

    static string AsciiSafe(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (var c in s) b.Append(c >= 0x7f ? $"\\u{(int)c:x4}" : c.ToString());
        return b.ToString();
    }
}

/// <summary>An error while rendering; the interpreter adds the position of the expression that failed.</summary>
sealed class RenderError(string message) : Exception(message);

/// <summary>The template called <c>raise_exception(message)</c>.</summary>
sealed class RaisedError(string message) : Exception(message);
