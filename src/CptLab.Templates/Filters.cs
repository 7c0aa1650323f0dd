using System.Globalization;
using System.Text;

namespace CptLab.Templates;

/// <summary>Filters (<c>x | name</c>) and tests (<c>x is name</c>), with the reference engine's per-type rules.</summary>
static class Filters
{
    public static Value Apply(Interpreter interp, Value operand, FilterExpr f, Scope scope)
    {
        if (f.Args is null) return ApplyBare(operand, f.Name);
        var (args, kwargs) = interp.SplitArguments(f.Args, scope);
        Value? Arg(int i, string name) => i < args.Count ? args[i] : kwargs.TryGetValue(name, out var v) ? v : null;
        bool Flag(int i, string name)
        {
            var v = Arg(i, name);
            return v switch { null => false, BoolValue b => b.Value, _ => throw new RenderError($"'{name}' of filter '{f.Name}' must be a boolean") };
        }

        switch (f.Name)
        {
            case "tojson":
            {
                var indent = kwargs.GetValueOrDefault("indent");
                if (indent is not (null or NullValue or IntValue)) throw new RenderError("tojson's indent must be an integer");
                (string, string)? separators = null;
                if (kwargs.GetValueOrDefault("separators") is ListValue { Items: [StringValue a, StringValue b] }) separators = (a.Value, b.Value);
                else if (kwargs.GetValueOrDefault("separators") is not (null or NullValue)) throw new RenderError("tojson's separators must be two strings");
                var o = new JsonOptions(indent is IntValue i ? (int)i.Value : null, Flag(int.MaxValue, "ensure_ascii"), Flag(int.MaxValue, "sort_keys"), separators);
                return new StringValue(Json.Write(operand, o));
            }
            case "join":
            {
                var pieces = operand switch
                {
                    StringValue s => JsString.CodePoints(s.Value),
                    ListValue l => l.Items.Select(JoinPiece).ToList(),
                    _ => throw new RenderError($"filter 'join' does not apply to a {operand.TypeName}"),
                };
                var sep = Arg(0, "separator") ?? StringValue.Empty;
                return new StringValue(string.Join(sep is StringValue ss ? ss.Value : throw new RenderError("join's separator must be a string"), pieces));
            }
            case "int" or "float":
            {
                var fallback = Arg(0, "default") ?? (f.Name == "int" ? new IntValue(0) : new FloatValue(0));
                return operand switch
                {
                    StringValue s => ParseNumber(s.Value, f.Name == "int") is double d ? (f.Name == "int" ? new IntValue(d) : new FloatValue(d)) : fallback,
                    NumberValue => operand,
                    BoolValue b => f.Name == "int" ? new IntValue(b.Value ? 1 : 0) : new FloatValue(b.Value ? 1 : 0),
                    _ => throw new RenderError($"filter '{f.Name}' does not apply to a {operand.TypeName}"),
                };
            }
            case "default":
            {
                var fallback = args.Count > 0 ? args[0] : StringValue.Empty;
                var boolean = Flag(1, "boolean");
                return operand is UndefinedValue || boolean && !operand.Truthy ? fallback : operand;
            }
        }

        switch (operand)
        {
            case ListValue list:
                switch (f.Name)
                {
                    case "sort":
                    {
                        var reverse = Flag(0, "reverse");
                        var caseSensitive = Flag(1, "case_sensitive");
                        var attribute = Arg(2, "attribute");
                        Value Key(Value item) => attribute switch
                        {
                            null or NullValue => item,
                            StringValue s => AttributePath(item, s.Value),
                            IntValue n => AttributePath(item, JsString.Number(n.Value)),
                            _ => throw new RenderError("sort's attribute must be a string or an integer"),
                        };
                        var sorted = list.Items.ToList();
                        MergeSort(sorted, (a, b) => (reverse ? -1 : 1) * Compare(Key(a), Key(b), caseSensitive));
                        return new ListValue(sorted);
                    }
                    case "selectattr" or "rejectattr":
                    {
                        var select = f.Name == "selectattr";
                        if (list.Items.Any(i => i is not DictValue)) throw new RenderError($"'{f.Name}' applies only to a list of dicts");
                        if (f.Args.Any(a => a is not LiteralExpr { Value: StringValue })) throw new RenderError($"the arguments of '{f.Name}' must be string literals");
                        var attr = ((StringValue)args[0]).Value;
                        var testName = args.Count > 1 ? ((StringValue)args[1]).Value : null;
                        var against = args.Count > 2 ? args[2] : null;
                        return new ListValue([.. list.Items.Where(item =>
                        {
                            var found = ((DictValue)item).Entries.TryGetValue(attr, out var a);
                            var r = found && (testName is null ? a!.Truthy : Test(testName, a!, against));
                            return select ? r : !r;
                        })]);
                    }
                    case "select" or "reject":
                    {
                        // Not in the reference (it has no select/reject): Jinja's own meaning, item-wise test.
                        var select = f.Name == "select";
                        var testName = args.Count > 0 ? args[0] as StringValue ?? throw new RenderError($"'{f.Name}' needs a test name") : null;
                        var against = args.Count > 1 ? args[1] : null;
                        return new ListValue([.. list.Items.Where(item =>
                        {
                            var r = testName is null ? item.Truthy : Test(testName.Value, item, against);
                            return select ? r : !r;
                        })]);
                    }
                    case "map":
                    {
                        if (kwargs.GetValueOrDefault("attribute") is not StringValue attr)
                            throw new RenderError("'map' is supported only as map(attribute='name')");
                        var fallback = kwargs.GetValueOrDefault("default");
                        return new ListValue([.. list.Items.Select(item =>
                        {
                            if (item is not DictValue) throw new RenderError("map(attribute=...) applies only to a list of dicts");
                            var v = AttributePath(item, attr.Value);
                            return v is UndefinedValue ? fallback ?? UndefinedValue.Instance : v;
                        })]);
                    }
                }
                break;
            case StringValue str:
                switch (f.Name)
                {
                    case "indent":
                    {
                        var width = Arg(0, "width") ?? new IntValue(4);
                        if (width is not IntValue w) throw new RenderError("indent's width must be an integer");
                        var first = Arg(1, "first")?.Truthy ?? false;
                        var blank = Arg(2, "blank")?.Truthy ?? false;
                        var pad = new string(' ', (int)w.Value);
                        var lines = str.Value.Split('\n');
                        return new StringValue(string.Join("\n", lines.Select((x, i) => !first && i == 0 || !blank && x.Length == 0 ? x : pad + x)));
                    }
                    case "replace":
                    {
                        var call = (FunctionValue)Methods.StringMethod(str, "replace")!;
                        var all = args.ToList();
                        all.Add(new DictValue(kwargs) { IsKeywordArguments = true });
                        return call.Call(all, scope);
                    }
                }
                break;
            case DictValue { IsNamespace: false } dict:
                if (Methods.DictMethod(dict, f.Name) is FunctionValue method)
                {
                    var all = args.ToList();
                    if (kwargs.Count > 0) all.Add(new DictValue(kwargs) { IsKeywordArguments = true });
                    return method.Call(all, scope);
                }
                break;
        }
        throw new RenderError($"filter '{f.Name}' with arguments does not apply to a {operand.TypeName}");
    }

    static Value ApplyBare(Value operand, string name)
    {
        if (name == "safe") return operand;
        if (name == "tojson") return new StringValue(Json.Write(operand, JsonOptions.Default));
        switch (operand)
        {
            case ListValue list:
                switch (name)
                {
                    case "list": return operand;
                    case "first": return list.Items.Count > 0 ? list.Items[0] : UndefinedValue.Instance;
                    case "last": return list.Items.Count > 0 ? list.Items[^1] : UndefinedValue.Instance;
                    case "length": return new IntValue(list.Items.Count);
                    case "reverse": return new ListValue([.. Enumerable.Reverse(list.Items)]);
                    case "sort":
                    {
                        var sorted = list.Items.ToList();
                        MergeSort(sorted, (a, b) => Compare(a, b, caseSensitive: false));
                        return new ListValue(sorted);
                    }
                    case "join": return new StringValue(string.Concat(list.Items.Select(JoinPiece)));
                    case "string": return new StringValue(Json.Write(operand, JsonOptions.Default, undefinedAsNull: false));
                    case "unique":
                    {
                        var output = new List<Value>();
                        foreach (var item in list.Items)
                            if (!output.Any(o => Interpreter.StrictEquals(o, item))) output.Add(item);
                        return new ListValue(output);
                    }
                }
                break;
            case StringValue s:
                switch (name)
                {
                    case "length": return new IntValue(s.Value.Length);
                    case "upper": return new StringValue(s.Value.ToUpperInvariant());
                    case "lower": return new StringValue(s.Value.ToLowerInvariant());
                    case "title": return new StringValue(JsString.Title(s.Value));
                    case "capitalize": return new StringValue(Methods.Capitalize(s.Value));
                    case "trim": return new StringValue(JsString.Trim(s.Value));
                    case "indent": return new StringValue(string.Join("\n", s.Value.Split('\n').Select((x, i) => i == 0 || x.Length == 0 ? x : "    " + x)));
                    case "join" or "string": return operand;
                    case "int": return new IntValue(ParseNumber(s.Value, integer: true) ?? 0);
                    case "float": return new FloatValue(ParseNumber(s.Value, integer: false) ?? 0);
                }
                break;
            case NumberValue n:
                switch (name)
                {
                    case "abs": return n is IntValue ? new IntValue(Math.Abs(n.Value)) : new FloatValue(Math.Abs(n.Value));
                    case "int": return new IntValue(Math.Floor(n.Value));
                    case "float": return new FloatValue(n.Value);
                    case "string": return new StringValue(n.Render());
                }
                break;
            case DictValue { IsNamespace: false } d:
                if (name == "items") return d.ItemPairs();
                if (name == "length") return new IntValue(d.Entries.Count);
                if (Methods.DictMethod(d, name) is FunctionValue method) return method.Call([], null!);
                break;
            case BoolValue b:
                switch (name)
                {
                    case "bool": return b;
                    case "int": return new IntValue(b.Value ? 1 : 0);
                    case "float": return new FloatValue(b.Value ? 1 : 0);
                    case "string": return new StringValue(b.Value ? "true" : "false");
                }
                break;
        }
        throw new RenderError($"filter '{name}' does not apply to a {operand.TypeName}");
    }

    /// <summary>A test; <paramref name="against"/> is the second operand of equalto (from selectattr/reject).</summary>
    public static bool Test(string name, Value v, Value? against) => name switch
    {
        "boolean" => v is BoolValue,
        "callable" => v is FunctionValue,
        "odd" => v is IntValue i ? i.Value % 2 != 0 : throw new RenderError($"test 'odd' needs an integer, not a {v.TypeName}"),
        "even" => v is IntValue j ? j.Value % 2 == 0 : throw new RenderError($"test 'even' needs an integer, not a {v.TypeName}"),
        "false" => v is BoolValue { Value: false },
        "true" => v is BoolValue { Value: true },
        "none" => v is NullValue,
        "string" => v is StringValue,
        "number" => v is NumberValue,
        "integer" => v is IntValue,
        // As the reference has it: lists and strings are iterable, dicts and tuples are not.
        "iterable" => v is ListValue { IsTuple: false } or StringValue,
        "mapping" => v is DictValue { IsNamespace: false },
        "sequence" => v is ListValue or DictValue { IsNamespace: false } or StringValue,
        "lower" => v is StringValue s && s.Value == s.Value.ToLowerInvariant(),
        "upper" => v is StringValue u && u.Value == u.Value.ToUpperInvariant(),
        "defined" => v is not UndefinedValue,
        "undefined" => v is UndefinedValue,
        "equalto" or "eq" => against is not null ? Interpreter.StrictEquals(v, against) : throw new RenderError($"test '{name}' needs a value to compare with"),
        _ => throw new RenderError($"unknown test '{name}'"),
    };

    static string JoinPiece(Value v) => v is NullValue or UndefinedValue ? "" : v.ConcatText();

    /// <summary>JavaScript parseInt / parseFloat: the longest numeric prefix after leading whitespace, or null.</summary>
    static double? ParseNumber(string s, bool integer)
    {
        var t = JsString.TrimStart(s);
        var i = 0;
        if (i < t.Length && t[i] is '+' or '-') i++;
        var digitsStart = i;
        while (i < t.Length && char.IsAsciiDigit(t[i])) i++;
        if (!integer)
        {
            if (i < t.Length && t[i] == '.') { i++; while (i < t.Length && char.IsAsciiDigit(t[i])) i++; }
            if (i > digitsStart && i < t.Length && t[i] is 'e' or 'E')
            {
                var j = i + 1;
                if (j < t.Length && t[j] is '+' or '-') j++;
                var k = j;
                while (k < t.Length && char.IsAsciiDigit(t[k])) k++;
                if (k > j) i = k;
            }
        }
        var text = t[..i];
        if (text.Length == 0 || text is "+" or "-" or "." or "+." or "-.") return null;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
    }

    /// <summary>The value at a dotted path ("a.b", "items.0") of dicts and lists, or undefined.</summary>
    static Value AttributePath(Value item, string path)
    {
        var v = item;
        foreach (var part in path.Split('.'))
        {
            if (v is DictValue d) v = d.Entries.TryGetValue(part, out var x) ? x : UndefinedValue.Instance;
            else if (v is ListValue l && int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) && i >= 0 && i < l.Items.Count) v = l.Items[i];
            else return UndefinedValue.Instance;
        }
        return v;
    }

    /// <summary>The reference's sort order: numbers (and booleans) together, strings with strings, nothing else.</summary>
    public static int Compare(Value a, Value b, bool caseSensitive)
    {
        if (a is NullValue && b is NullValue || a is UndefinedValue && b is UndefinedValue) return 0;
        if (a is NullValue or UndefinedValue || b is NullValue or UndefinedValue) throw new RenderError($"cannot compare a {a.TypeName} with a {b.TypeName}");
        if (a is NumberValue or BoolValue && b is NumberValue or BoolValue)
        {
            double x = a is NumberValue na ? na.Value : ((BoolValue)a).Value ? 1 : 0, y = b is NumberValue nb ? nb.Value : ((BoolValue)b).Value ? 1 : 0;
            return x < y ? -1 : x > y ? 1 : 0;
        }
        if (a is StringValue sa && b is StringValue sb)
        {
            var (x, y) = caseSensitive ? (sa.Value, sb.Value) : (sa.Value.ToLowerInvariant(), sb.Value.ToLowerInvariant());
            return Math.Sign(string.CompareOrdinal(x, y));
        }
        throw new RenderError($"cannot compare a {a.TypeName} with a {b.TypeName}");
    }

    /// <summary>A stable sort (JavaScript's Array.prototype.sort is stable; List.Sort is not).</summary>
    public static void MergeSort(List<Value> items, Comparison<Value> compare)
    {
        var sorted = items.Select((v, i) => (v, i)).OrderBy(p => p, Comparer<(Value v, int i)>.Create((p, q) =>
        {
            var c = compare(p.v, q.v);
            return c != 0 ? c : p.i.CompareTo(q.i);
        })).Select(p => p.v).ToList();
        items.Clear();
        items.AddRange(sorted);
    }
}

/// <summary>Methods of strings (<c>s.strip()</c>) and dicts (<c>d.items()</c>).</summary>
static class Methods
{
    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    public static Value? StringMethod(StringValue sv, string name)
    {
        var s = sv.Value;
        FunctionValue F(Func<List<Value>, Value> body) => new(name, (args, _) => body(args));
        return name switch
        {
            "length" => new IntValue(s.Length),
            "upper" => F(_ => new StringValue(s.ToUpperInvariant())),
            "lower" => F(_ => new StringValue(s.ToLowerInvariant())),
            // As in the reference, strip/lstrip/rstrip remove whitespace whatever argument they get.
            "strip" => F(_ => new StringValue(JsString.Trim(s))),
            "lstrip" => F(_ => new StringValue(JsString.TrimStart(s))),
            "rstrip" => F(_ => new StringValue(JsString.TrimEnd(s))),
            "title" => F(_ => new StringValue(JsString.Title(s))),
            "capitalize" => F(_ => new StringValue(Capitalize(s))),
            "startswith" => F(args => BoolValue.Of(Affix(s, args, "startswith", (x, p) => x.StartsWith(p, StringComparison.Ordinal)))),
            "endswith" => F(args => BoolValue.Of(Affix(s, args, "endswith", (x, p) => x.EndsWith(p, StringComparison.Ordinal)))),
            "split" => F(args => Split(s, args)),
            "replace" => F(args => Replace(s, args)),
            _ => null,
        };
    }

    static bool Affix(string s, List<Value> args, string name, Func<string, string, bool> test) => args.FirstOrDefault() switch
    {
        StringValue p => test(s, p.Value),
        ListValue l => l.Items.Any(i => i is StringValue p ? test(s, p.Value) : throw new RenderError($"{name}() tuple elements must be strings")),
        null => throw new RenderError($"{name}() needs an argument"),
        _ => throw new RenderError($"{name}() takes a string or a tuple of strings"),
    };

    /// <summary>Python's str.split(sep=None, maxsplit=-1).</summary>
    static Value Split(string s, List<Value> args)
    {
        var sep = args.Count > 0 ? args[0] : NullValue.Instance;
        var maxValue = args.Count > 1 ? args[1] : new IntValue(-1);
        if (maxValue is not IntValue mv) throw new RenderError("split()'s maxsplit must be an integer");
        var max = (int)mv.Value;
        var result = new List<string>();
        if (sep is NullValue)
        {
            var text = JsString.TrimStart(s);
            var i = 0;
            while (i < text.Length)
            {
                if (JsString.IsWhitespace(text[i])) { i++; continue; }
                var start = i;
                while (i < text.Length && !JsString.IsWhitespace(text[i])) i++;
                if (max != -1 && result.Count >= max) { result.Add(text[start..]); break; }
                result.Add(text[start..i]);
            }
        }
        else if (sep is StringValue sepString)
        {
            if (sepString.Value.Length == 0) throw new RenderError("split(): empty separator");
            var parts = s.Split(sepString.Value);
            if (max != -1 && parts.Length > max)
                result.AddRange([.. parts[..max], string.Join(sepString.Value, parts[max..])]);
            else result.AddRange(parts);
        }
        else throw new RenderError("split()'s separator must be a string or none");
        return new ListValue([.. result.Select(p => (Value)new StringValue(p))]);
    }

    static Value Replace(string s, List<Value> args)
    {
        if (args.Count < 2) throw new RenderError("replace() needs two arguments");
        if (args[0] is not StringValue old || args[1] is not StringValue replacement) throw new RenderError("replace()'s arguments must be strings");
        Value count = NullValue.Instance;
        if (args.Count > 2)
            count = args[2] is DictValue { IsKeywordArguments: true } kw ? kw.Entries.GetValueOrDefault("count") ?? NullValue.Instance : args[2];
        if (count is not (IntValue or NullValue)) throw new RenderError("replace()'s count must be an integer or none");
        var remaining = count is IntValue c && c.Value >= 0 ? (long)c.Value : long.MaxValue;
        if (remaining == 0) return new StringValue(s);
        var b = new StringBuilder();
        if (old.Value.Length == 0)
        {
            // An empty pattern matches at every code point boundary, the string's ends included.
            foreach (var cp in JsString.CodePoints(s))
            {
                if (remaining-- > 0) b.Append(replacement.Value);
                b.Append(cp);
            }
            if (remaining > 0) b.Append(replacement.Value);
            return new StringValue(b.ToString());
        }
        var at = 0;
        while (remaining > 0)
        {
            var i = s.IndexOf(old.Value, at, StringComparison.Ordinal);
            if (i < 0) break;
            b.Append(s, at, i - at).Append(replacement.Value);
            at = i + old.Value.Length;
            remaining--;
        }
        return new StringValue(b.Append(s, at, s.Length - at).ToString());
    }

    public static Value? DictMethod(DictValue d, string name)
    {
        FunctionValue F(Func<List<Value>, Value> body) => new(name, (args, _) => body(args));
        return name switch
        {
            "get" => F(args =>
            {
                if (args.Count == 0 || args[0] is not StringValue key) throw new RenderError("get() needs a string key");
                return d.Entries.TryGetValue(key.Value, out var v) ? v : args.Count > 1 ? args[1] : NullValue.Instance;
            }),
            "items" => F(_ => d.ItemPairs()),
            "keys" => F(_ => new ListValue([.. d.Entries.Keys.Select(k => (Value)new StringValue(k))])),
            "values" => F(_ => new ListValue([.. d.Entries.Values])),
            "dictsort" => F(args =>
            {
                var kw = args.Count > 0 && args[^1] is DictValue { IsKeywordArguments: true } k ? k.Entries : [];
                var pos = args.Where(a => a is not DictValue { IsKeywordArguments: true }).ToList();
                Value? Arg(int i, string n) => i < pos.Count ? pos[i] : kw.GetValueOrDefault(n);
                var caseSensitive = Arg(0, "case_sensitive") is BoolValue { Value: true };
                var byValue = Arg(1, "by") is StringValue { Value: "value" };
                var reverse = Arg(2, "reverse") is BoolValue { Value: true };
                var pairs = d.ItemPairs().Items;
                Filters.MergeSort(pairs, (a, b) => (reverse ? -1 : 1) * Filters.Compare(((ListValue)a).Items[byValue ? 1 : 0], ((ListValue)b).Items[byValue ? 1 : 0], caseSensitive));
                return new ListValue(pairs);
            }),
            _ => null,
        };
    }
}
