using System.Globalization;
using System.Text;

namespace CptLab.Templates;

/// <summary>
/// Evaluates a parsed template. The semantics are those of @huggingface/jinja 0.5.11 (what transformers.js and the Hub
/// use in JavaScript), which the tests compare with byte for byte: undefined is falsy and renders empty, attribute
/// access on undefined is undefined, <c>==</c> compares loosely and lists/dicts by identity, <c>set</c> inside a loop
/// stays in the loop, macros see the caller's variables.
/// </summary>
sealed class Interpreter
{
    public string Render(List<Node> program, Scope globals) => EvalBlock(program, globals);

    public static Scope Globals()
    {
        var g = new Scope(null);
        g.Set("true", BoolValue.True);
        g.Set("false", BoolValue.False);
        g.Set("none", NullValue.Instance);
        g.Set("True", BoolValue.True);
        g.Set("False", BoolValue.False);
        g.Set("None", NullValue.Instance);
        g.Set("namespace", new FunctionValue("namespace", (args, _) => Namespace(args)));
        g.Set("raise_exception", new FunctionValue("raise_exception", (args, _) =>
            throw new RaisedError(args.Count > 0 ? RawText(args[0]) : "undefined")));
        g.Set("range", new FunctionValue("range", (args, _) => Range(args)));
        g.Set("strftime_now", new FunctionValue("strftime_now", (args, _) =>
            new StringValue(Strftime(DateTime.Now, args.Count > 0 && args[0] is StringValue s ? s.Value : throw new RenderError("strftime_now needs a format string")))));
        return g;
    }

    // ---- statements ----

    string EvalBlock(List<Node> nodes, Scope scope)
    {
        var s = new StringBuilder();
        foreach (var node in nodes)
        {
            switch (node)
            {
                case TextNode t:
                    s.Append(t.Text);
                    break;
                case OutputNode o:
                    var v = Eval(o.Value, scope);
                    if (v is not (NullValue or UndefinedValue)) s.Append(v.Render());
                    break;
                case SetNode set:
                    Guarded(set, () => ExecSet(set, scope));
                    break;
                case IfNode i:
                    s.Append(EvalBlock(Eval(i.Test, scope).Truthy ? i.Body : i.Else, scope));
                    break;
                case ForNode f:
                    s.Append(EvalFor(f, scope));
                    break;
                case MacroNode m:
                    DefineMacro(m, scope);
                    break;
                default:
                    throw new InvalidOperationException($"unknown node {node.GetType().Name}");
            }
        }
        return s.ToString();
    }

    void ExecSet(SetNode set, Scope scope)
    {
        Value rhs = set.Value is null ? new StringValue(EvalBlock(set.Body, scope)) : Eval(set.Value, scope);
        switch (set.Target)
        {
            case NameExpr n:
                scope.Set(n.Name, rhs);
                break;
            case ListExpr { IsTuple: true } tuple:
                if (rhs is not ListValue list) throw new RenderError($"cannot unpack a {rhs.TypeName} in set");
                if (list.Items.Count != tuple.Items.Count) throw new RenderError($"too {(tuple.Items.Count > list.Items.Count ? "few" : "many")} items to unpack in set");
                for (var i = 0; i < tuple.Items.Count; i++)
                    scope.Set(tuple.Items[i] is NameExpr name ? name.Name : throw new RenderError("set can only unpack into names"), list.Items[i]);
                break;
            case MemberExpr { Property: NameExpr prop } member:
                var obj = Eval(member.Object, scope);
                if (obj is not DictValue { IsNamespace: true } ns) throw new RenderError($"cannot assign an attribute of a {obj.TypeName}; only namespace() objects take attributes");
                ns.Entries[prop.Name] = rhs;
                break;
            default:
                throw new RenderError("set can only assign to a name, a tuple of names or a namespace attribute");
        }
    }

    string EvalFor(ForNode f, Scope outer)
    {
        var scope = new Scope(outer);
        var iterable = Eval(f.Iterable, scope);
        List<Value> source = iterable switch
        {
            ListValue l => l.Items,
            DictValue { IsNamespace: false } d => [.. d.Entries.Keys.Select(k => (Value)new StringValue(k))],
            _ => throw Positioned(f.Iterable.Pos, $"cannot loop over a {iterable.TypeName}"),
        };

        var items = new List<Value>();
        foreach (var current in source)
        {
            if (f.Condition is not null)
            {
                var loopScope = new Scope(scope);
                Bind(f, loopScope, current);
                if (!Eval(f.Condition, loopScope).Truthy) continue;
            }
            items.Add(current);
        }

        var s = new StringBuilder();
        for (var i = 0; i < items.Count; i++)
        {
            var loop = new OrderedDictionary<string, Value>
            {
                ["index"] = new IntValue(i + 1),
                ["index0"] = new IntValue(i),
                ["revindex"] = new IntValue(items.Count - i),
                ["revindex0"] = new IntValue(items.Count - i - 1),
                ["first"] = BoolValue.Of(i == 0),
                ["last"] = BoolValue.Of(i == items.Count - 1),
                ["length"] = new IntValue(items.Count),
                ["previtem"] = i > 0 ? items[i - 1] : UndefinedValue.Instance,
                ["nextitem"] = i < items.Count - 1 ? items[i + 1] : UndefinedValue.Instance,
            };
            scope.Set("loop", new DictValue(loop));
            Bind(f, scope, items[i]);
            s.Append(EvalBlock(f.Body, scope));
        }
        if (items.Count == 0) s.Append(EvalBlock(f.Else, scope));
        return s.ToString();
    }

    static void Bind(ForNode f, Scope scope, Value current)
    {
        switch (f.LoopVar)
        {
            case NameExpr n:
                scope.Set(n.Name, current);
                break;
            case ListExpr tuple:
                if (current is not ListValue { IsTuple: false } list) throw Positioned(f.LoopVar.Pos, $"cannot unpack a {current.TypeName} into {tuple.Items.Count} loop variables");
                if (list.Items.Count != tuple.Items.Count) throw Positioned(f.LoopVar.Pos, $"too {(tuple.Items.Count > list.Items.Count ? "few" : "many")} items to unpack");
                for (var i = 0; i < tuple.Items.Count; i++)
                    scope.Set(tuple.Items[i] is NameExpr name ? name.Name : throw Positioned(f.LoopVar.Pos, "loop variables must be names"), list.Items[i]);
                break;
        }
    }

    void DefineMacro(MacroNode m, Scope scope)
    {
        var names = new HashSet<string>();
        CollectNames(m.Body, names);
        var wantsKwargs = names.Contains("kwargs") && !m.Parameters.Any(p => ParameterName(p) == "kwargs");
        var wantsVarargs = names.Contains("varargs") && !m.Parameters.Any(p => ParameterName(p) == "varargs");
        scope.Set(m.Name, new FunctionValue(m.Name, (args, callerScope) =>
        {
            // As in the reference, a macro's scope encloses the caller's (it sees the caller's variables).
            var macroScope = new Scope(callerScope);
            var positional = args.ToList();
            var keywords = new OrderedDictionary<string, Value>();
            if (positional.Count > 0 && positional[^1] is DictValue { IsKeywordArguments: true } kw)
            {
                positional.RemoveAt(positional.Count - 1);
                foreach (var e in kw.Entries) keywords[e.Key] = e.Value;
            }
            var pending = new List<(string, Expr)>();
            for (var i = 0; i < m.Parameters.Count; i++)
            {
                var name = ParameterName(m.Parameters[i]);
                Value? v = i < positional.Count ? positional[i] : null;
                if (v is null && keywords.Remove(name, out var kv)) v = kv;
                if (v is null && m.Parameters[i] is KeywordArgExpr d) pending.Add((name, d.Value));
                macroScope.Set(name, v ?? UndefinedValue.Instance);
            }
            if (wantsKwargs) macroScope.Set("kwargs", new DictValue(keywords));
            else if (keywords.Count > 0) throw new RenderError($"macro '{m.Name}' takes no keyword argument '{keywords.GetAt(0).Key}'");
            if (wantsVarargs) macroScope.Set("varargs", new ListValue([.. positional.Skip(m.Parameters.Count)]));
            else if (positional.Count > m.Parameters.Count) throw new RenderError($"macro '{m.Name}' takes not more than {m.Parameters.Count} argument(s)");
            foreach (var (name, expr) in pending) macroScope.Set(name, Eval(expr, macroScope));
            return new StringValue(EvalBlock(m.Body, macroScope));
        }));
    }

    static string ParameterName(Expr p) => p is KeywordArgExpr k ? k.Name : ((NameExpr)p).Name;

    static void CollectNames(IEnumerable<Node> nodes, HashSet<string> names)
    {
        foreach (var n in nodes) CollectNames(n, names);
    }

    static void CollectNames(Node? node, HashSet<string> names)
    {
        switch (node)
        {
            case null: return;
            case NameExpr n: names.Add(n.Name); return;
            case OutputNode o: CollectNames(o.Value, names); return;
            case SetNode s: CollectNames(s.Value, names); CollectNames(s.Body, names); return;
            case IfNode i: CollectNames(i.Test, names); CollectNames(i.Body, names); CollectNames(i.Else, names); return;
            case ForNode f: CollectNames(f.Iterable, names); CollectNames(f.Condition, names); CollectNames(f.Body, names); CollectNames(f.Else, names); return;
            case MacroNode m: CollectNames(m.Body, names); return;
            case ListExpr l: CollectNames(l.Items, names); return;
            case DictExpr d: foreach (var (k, v) in d.Entries) { CollectNames(k, names); CollectNames(v, names); } return;
            case MemberExpr m: CollectNames(m.Object, names); if (m.Computed) CollectNames(m.Property, names); return;
            case SliceExpr s: CollectNames(s.Start, names); CollectNames(s.Stop, names); CollectNames(s.Step, names); return;
            case CallExpr c: CollectNames(c.Callee, names); CollectNames(c.Args, names); return;
            case KeywordArgExpr k: CollectNames(k.Value, names); return;
            case BinaryExpr b: CollectNames(b.Left, names); CollectNames(b.Right, names); return;
            case UnaryExpr u: CollectNames(u.Operand, names); return;
            case FilterExpr f: CollectNames(f.Operand, names); if (f.Args is not null) CollectNames(f.Args, names); return;
            case TestExpr t: CollectNames(t.Operand, names); return;
            case SelectExpr s: CollectNames(s.Value, names); CollectNames(s.Test, names); return;
            case TernaryExpr t: CollectNames(t.Condition, names); CollectNames(t.IfTrue, names); CollectNames(t.IfFalse, names); return;
        }
    }

    // ---- expressions ----

    Value Eval(Expr e, Scope scope)
    {
        try
        {
            return EvalCore(e, scope);
        }
        catch (RenderError err) when (err.Data["pos"] is null)
        {
            err.Data["pos"] = e.Pos;
            throw;
        }
    }

    static void Guarded(Node n, Action action)
    {
        try
        {
            action();
        }
        catch (RenderError err) when (err.Data["pos"] is null)
        {
            err.Data["pos"] = n.Pos;
            throw;
        }
    }

    static RenderError Positioned(int pos, string message)
    {
        var e = new RenderError(message);
        e.Data["pos"] = pos;
        return e;
    }

    Value EvalCore(Expr e, Scope scope)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return scope.Lookup(n.Name);
            case ListExpr l: return new ListValue([.. l.Items.Select(x => Eval(x, scope))], l.IsTuple);
            case DictExpr d:
            {
                var map = new OrderedDictionary<string, Value>();
                foreach (var (k, v) in d.Entries)
                {
                    var key = Eval(k, scope) as StringValue ?? throw new RenderError("dict keys must be strings");
                    map[key.Value] = Eval(v, scope);
                }
                return new DictValue(map);
            }
            case MemberExpr m: return EvalMember(m, scope);
            case CallExpr c:
            {
                var args = EvalArguments(c.Args, scope);
                var fn = Eval(c.Callee, scope) as FunctionValue ?? throw new RenderError($"cannot call {Describe(c.Callee)}: it is not a function");
                return fn.Call(args, scope);
            }
            case BinaryExpr b: return EvalBinary(b, scope);
            case UnaryExpr u:
            {
                var v = Eval(u.Operand, scope);
                if (u.Op == "not") return BoolValue.Of(!v.Truthy);
                var sign = u.Op == "-" ? -1 : 1;
                return v switch
                {
                    FloatValue f => new FloatValue(sign * f.Value),
                    IntValue i => new IntValue(sign * i.Value),
                    BoolValue bv => new IntValue(sign * (bv.Value ? 1 : 0)),
                    _ => throw new RenderError($"unary '{u.Op}' does not apply to a {v.TypeName}"),
                };
            }
            case FilterExpr f: return Filters.Apply(this, Eval(f.Operand, scope), f, scope);
            case TestExpr t:
            {
                var r = Filters.Test(t.Name, Eval(t.Operand, scope), null);
                return BoolValue.Of(t.Negate ? !r : r);
            }
            case SelectExpr s: return Eval(s.Test, scope).Truthy ? Eval(s.Value, scope) : UndefinedValue.Instance;
            case TernaryExpr t: return Eval(t.Condition, scope).Truthy ? Eval(t.IfTrue, scope) : Eval(t.IfFalse, scope);
            default: throw new RenderError($"{e.GetType().Name} cannot be evaluated here");
        }
    }

    static string Describe(Expr e) => e switch
    {
        NameExpr n => $"'{n.Name}'",
        MemberExpr { Property: NameExpr p } => $"'.{p.Name}'",
        _ => "this expression",
    };

    /// <summary>Positional arguments, then (when there are any) the keyword arguments as one trailing marked dict.</summary>
    public List<Value> EvalArguments(List<Expr> args, Scope scope)
    {
        var positional = new List<Value>();
        foreach (var a in args)
            if (a is not KeywordArgExpr) positional.Add(Eval(a, scope));
        var keywords = new OrderedDictionary<string, Value>();
        foreach (var a in args)
            if (a is KeywordArgExpr k && !keywords.TryAdd(k.Name, Eval(k.Value, scope)))
                throw new RenderError($"keyword argument '{k.Name}' given twice");
        if (keywords.Count > 0) positional.Add(new DictValue(keywords) { IsKeywordArguments = true });
        return positional;
    }

    public (List<Value> Positional, OrderedDictionary<string, Value> Keywords) SplitArguments(List<Expr> args, Scope scope)
    {
        var all = EvalArguments(args, scope);
        if (all.Count > 0 && all[^1] is DictValue { IsKeywordArguments: true } kw)
        {
            all.RemoveAt(all.Count - 1);
            return (all, kw.Entries);
        }
        return (all, []);
    }

    public Value EvalExpr(Expr e, Scope scope) => Eval(e, scope);

    Value EvalMember(MemberExpr m, Scope scope)
    {
        var obj = Eval(m.Object, scope);
        Value property;
        if (m.Computed)
        {
            if (m.Property is SliceExpr s) return EvalSlice(obj, s, scope);
            property = Eval(m.Property, scope);
        }
        else property = m.Property is LiteralExpr l ? l.Value : new StringValue(((NameExpr)m.Property).Name);

        Value? v;
        switch (obj)
        {
            case DictValue d:
                if (property is not StringValue key) throw new RenderError($"a {d.TypeName} is indexed by strings, not by a {property.TypeName}");
                v = d.Entries.TryGetValue(key.Value, out var found) ? found : d.IsNamespace ? null : Methods.DictMethod(d, key.Value);
                break;
            case ListValue or StringValue:
                if (property is IntValue idx)
                {
                    var i = (int)Math.Truncate(idx.Value);
                    if (obj is ListValue list)
                    {
                        if (i < 0) i += list.Items.Count;
                        v = i >= 0 && i < list.Items.Count ? list.Items[i] : null;
                    }
                    else
                    {
                        var str = ((StringValue)obj).Value;
                        if (i < 0) i += str.Length;
                        v = i >= 0 && i < str.Length ? new StringValue(str[i].ToString()) : null;
                    }
                }
                else if (property is StringValue name)
                    v = obj is ListValue l2 ? (name.Value == "length" ? new IntValue(l2.Items.Count) : null) : Methods.StringMethod((StringValue)obj, name.Value);
                else throw new RenderError($"a {obj.TypeName} is indexed by integers, not by a {property.TypeName}");
                break;
            default:
                if (property is not StringValue) throw new RenderError($"cannot index a {obj.TypeName} with a {property.TypeName}");
                v = null;
                break;
        }
        return v ?? UndefinedValue.Instance;
    }

    Value EvalSlice(Value obj, SliceExpr s, Scope scope)
    {
        int? Part(Expr? x)
        {
            if (x is null) return null;
            return Eval(x, scope) switch
            {
                IntValue i => (int)i.Value,
                UndefinedValue => null,
                var v => throw new RenderError($"slice bounds must be integers, not a {v.TypeName}"),
            };
        }
        var (start, stop, step) = (Part(s.Start), Part(s.Stop), Part(s.Step));
        return obj switch
        {
            ListValue l => new ListValue(Slice(l.Items, start, stop, step ?? 1)),
            StringValue str => new StringValue(string.Concat(Slice(JsString.CodePoints(str.Value), start, stop, step ?? 1))),
            _ => throw new RenderError($"cannot slice a {obj.TypeName}"),
        };
    }

    /// <summary>Python's slice semantics.</summary>
    static List<T> Slice<T>(List<T> a, int? start, int? stop, int step)
    {
        if (step == 0) throw new RenderError("slice step cannot be zero");
        int n = a.Count, from, to;
        if (step > 0)
        {
            from = start is int s0 ? (s0 < 0 ? Math.Max(n + s0, 0) : Math.Min(s0, n)) : 0;
            to = stop is int e0 ? (e0 < 0 ? Math.Max(n + e0, 0) : Math.Min(e0, n)) : n;
        }
        else
        {
            from = start is int s1 ? (s1 < 0 ? Math.Max(n + s1, -1) : Math.Min(s1, n - 1)) : n - 1;
            to = stop is int e1 ? (e1 < -1 ? Math.Max(n + e1, -1) : Math.Min(e1, n - 1)) : -1;
        }
        var r = new List<T>();
        for (var i = from; step > 0 ? i < to : i > to; i += step) r.Add(a[i]);
        return r;
    }

    Value EvalBinary(BinaryExpr b, Scope scope)
    {
        var left = Eval(b.Left, scope);
        if (b.Op == "and") return left.Truthy ? Eval(b.Right, scope) : left;
        if (b.Op == "or") return left.Truthy ? left : Eval(b.Right, scope);
        var right = Eval(b.Right, scope);
        if (b.Op == "==") return BoolValue.Of(LooseEquals(left, right));
        if (b.Op == "!=") return BoolValue.Of(!LooseEquals(left, right));

        if (left is UndefinedValue || right is UndefinedValue)
        {
            if (right is UndefinedValue && b.Op is "in" or "not in") return BoolValue.Of(b.Op == "not in");
            throw new RenderError($"'{b.Op}' on an undefined value");
        }
        if (left is NullValue || right is NullValue) throw new RenderError($"'{b.Op}' on none");
        if (b.Op == "~") return new StringValue(left.ConcatText() + right.ConcatText());

        if (b.Op == "**" && NumericLike(left, out var pa) && NumericLike(right, out var pb))
        {
            if (pa == 0 && pb < 0) throw new RenderError("0.0 cannot be raised to a negative power");
            var r = Math.Pow(pa, pb);
            if (!double.IsFinite(r)) throw new RenderError("exponentiation result is not a finite real number");
            return left is FloatValue || right is FloatValue || pb < 0 ? new FloatValue(r) : new IntValue(r);
        }
        if (left is NumberValue ln && right is NumberValue rn)
        {
            var isFloat = left is FloatValue || right is FloatValue;
            double x = ln.Value, y = rn.Value;
            switch (b.Op)
            {
                case "+": return Num(x + y, isFloat);
                case "-": return Num(x - y, isFloat);
                case "*": return Num(x * y, isFloat);
                case "/": return new FloatValue(x / y);
                case "//": return Num(Math.Floor(x / y), isFloat);
                case "%": return Num(x % y, isFloat); // remainder with the sign of the dividend, as JavaScript
                case "<": return BoolValue.Of(x < y);
                case ">": return BoolValue.Of(x > y);
                case "<=": return BoolValue.Of(x <= y);
                case ">=": return BoolValue.Of(x >= y);
            }
        }
        else if (left is ListValue la && right is ListValue lb)
        {
            if (b.Op == "+") return new ListValue([.. la.Items, .. lb.Items]);
        }
        else if (right is ListValue rl)
        {
            var member = rl.Items.Any(x => StrictEquals(x, left));
            if (b.Op == "in") return BoolValue.Of(member);
            if (b.Op == "not in") return BoolValue.Of(!member);
        }

        if ((left is StringValue || right is StringValue) && b.Op == "+") return new StringValue(left.ConcatText() + right.ConcatText());
        if (left is StringValue ls && right is StringValue rs)
        {
            if (b.Op == "in") return BoolValue.Of(rs.Value.Contains(ls.Value, StringComparison.Ordinal));
            if (b.Op == "not in") return BoolValue.Of(!rs.Value.Contains(ls.Value, StringComparison.Ordinal));
        }
        if (left is StringValue key && right is DictValue { IsNamespace: false } d)
        {
            if (b.Op == "in") return BoolValue.Of(d.Entries.ContainsKey(key.Value));
            if (b.Op == "not in") return BoolValue.Of(!d.Entries.ContainsKey(key.Value));
        }
        throw new RenderError($"operator '{b.Op}' does not apply to a {left.TypeName} and a {right.TypeName}");
    }

    static Value Num(double v, bool isFloat) => isFloat ? new FloatValue(v) : new IntValue(v);

    static bool NumericLike(Value v, out double d)
    {
        d = v switch { NumberValue n => n.Value, BoolValue b => b.Value ? 1 : 0, _ => double.NaN };
        return v is NumberValue or BoolValue;
    }

    /// <summary>JavaScript's <c>==</c> on the underlying values: none equals undefined, "1" equals 1, lists and dicts by identity.</summary>
    public static bool LooseEquals(Value a, Value b)
    {
        if (a is NullValue or UndefinedValue || b is NullValue or UndefinedValue) return a is NullValue or UndefinedValue && b is NullValue or UndefinedValue;
        if (a is ListValue or DictValue or FunctionValue || b is ListValue or DictValue or FunctionValue) return ReferenceEquals(a, b);
        if (a is StringValue sa && b is StringValue sb) return sa.Value == sb.Value;
        return ToNumber(a) == ToNumber(b);
    }

    /// <summary>JavaScript's <c>===</c> on the underlying values.</summary>
    public static bool StrictEquals(Value a, Value b) => (a, b) switch
    {
        (NullValue, NullValue) or (UndefinedValue, UndefinedValue) => true,
        (NumberValue x, NumberValue y) => x.Value == y.Value,
        (StringValue x, StringValue y) => x.Value == y.Value,
        (BoolValue x, BoolValue y) => x.Value == y.Value,
        _ => ReferenceEquals(a, b),
    };

    static double ToNumber(Value v) => v switch
    {
        NumberValue n => n.Value,
        BoolValue b => b.Value ? 1 : 0,
        StringValue s => JsString.Trim(s.Value) is var t && t.Length == 0 ? 0
            : double.TryParse(t, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out var d) ? d : double.NaN,
        _ => double.NaN,
    };

    /// <summary>The JavaScript text of a value's underlying datum (what the reference passes to raise_exception and join).</summary>
    public static string RawText(Value v) => v switch
    {
        UndefinedValue => "undefined",
        NullValue => "null",
        _ => v.ConcatText(),
    };

    // ---- built-in functions ----

    static Value Namespace(List<Value> args)
    {
        var positional = args.ToList();
        DictValue? kwargs = null;
        if (positional.Count > 0 && positional[^1] is DictValue { IsKeywordArguments: true } k)
        {
            kwargs = k;
            positional.RemoveAt(positional.Count - 1);
        }
        if (positional.Count > 1) throw new RenderError($"namespace() takes at most 1 positional argument, got {positional.Count}");
        var entries = new OrderedDictionary<string, Value>();
        if (positional.Count == 1)
        {
            switch (positional[0])
            {
                case DictValue { IsNamespace: false } d:
                    foreach (var e in d.Entries) entries[e.Key] = e.Value;
                    break;
                case ListValue l:
                    foreach (var pair in l.Items)
                    {
                        if (pair is not ListValue { Items.Count: 2 } p || p.Items[0] is not StringValue key)
                            throw new RenderError("namespace() expects a dict or a list of [key, value] pairs");
                        entries[key.Value] = p.Items[1];
                    }
                    break;
                default:
                    throw new RenderError($"namespace() cannot read a {positional[0].TypeName}");
            }
        }
        if (kwargs is not null)
            foreach (var e in kwargs.Entries) entries[e.Key] = e.Value;
        return new DictValue(entries, isNamespace: true);
    }

    static Value Range(List<Value> args)
    {
        double Arg(int i) => args[i] is NumberValue n ? n.Value : throw new RenderError("range() takes integers");
        if (args.Count == 0) throw new RenderError("range() needs at least one argument");
        double start = 0, stop, step = 1;
        if (args.Count == 1) stop = Arg(0);
        else
        {
            start = Arg(0);
            stop = Arg(1);
            if (args.Count > 2) step = Arg(2);
        }
        if (step == 0) throw new RenderError("range() step must not be zero");
        var r = new List<Value>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step) r.Add(new IntValue(i));
        return new ListValue(r);
    }

    /// <summary>The reference's strftime subset (%Y %m %d %b %B %H %M %%), in local time, English month names.</summary>
    public static string Strftime(DateTime t, string format)
    {
        var s = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { s.Append(format[i]); continue; }
            var c = format[i + 1];
            string? piece = c switch
            {
                'Y' => t.Year.ToString(CultureInfo.InvariantCulture),
                'm' => t.Month.ToString("00", CultureInfo.InvariantCulture),
                'd' => t.Day.ToString("00", CultureInfo.InvariantCulture),
                'b' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(t.Month),
                'B' => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(t.Month),
                'H' => t.Hour.ToString("00", CultureInfo.InvariantCulture),
                'M' => t.Minute.ToString("00", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => null,
            };
            if (piece is null) { s.Append('%'); continue; }
            s.Append(piece);
            i++;
        }
        return s.ToString();
    }
}
