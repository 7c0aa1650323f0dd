using System.Globalization;

namespace CptLab.Templates;

/// <summary>
/// Tokens → syntax tree, with Jinja's precedence as @huggingface/jinja has it (lowest first): <c>a if b else c</c>,
/// <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>+ - ~</c>, <c>* / // %</c>, <c>**</c>, <c>is</c>
/// tests, <c>|</c> filters, unary signs, calls and member access. Everything outside the supported subset is refused
/// here, at load, naming the feature and its line:column: unknown statements, filters, tests, functions and methods.
/// </summary>
sealed class Parser
{
    public static readonly HashSet<string> Filters =
    [
        "safe", "tojson", "list", "first", "last", "length", "reverse", "sort", "join", "string", "unique", "upper", "lower",
        "title", "capitalize", "trim", "indent", "int", "float", "abs", "items", "bool", "default", "selectattr", "rejectattr",
        "select", "reject", "map", "replace", "keys", "values", "dictsort", "get",
    ];

    public static readonly HashSet<string> Tests =
    [
        "boolean", "callable", "odd", "even", "false", "true", "none", "string", "number", "integer", "iterable", "mapping",
        "sequence", "lower", "upper", "defined", "undefined", "equalto", "eq",
    ];

    public static readonly HashSet<string> Functions = ["namespace", "range", "raise_exception", "strftime_now"];

    public static readonly HashSet<string> Methods =
    [
        "upper", "lower", "strip", "title", "capitalize", "rstrip", "lstrip", "startswith", "endswith", "split", "replace",
        "get", "items", "keys", "values", "dictsort",
    ];

    readonly List<Token> _tokens;
    readonly string _source;
    readonly string _name;
    readonly List<(string Name, int Pos)> _calledNames = [];
    readonly HashSet<string> _macros = [];
    int _at;

    Parser(List<Token> tokens, string source, string name)
    {
        _tokens = tokens;
        _source = source;
        _name = name;
    }

    public static List<Node> Parse(string source, string name)
    {
        var p = new Parser(Lexer.Tokenize(source, name), source, name);
        var body = new List<Node>();
        while (p._at < p._tokens.Count) body.Add(p.ParseAny());
        foreach (var (called, pos) in p._calledNames)
            if (!Functions.Contains(called) && !p._macros.Contains(called))
                throw p.Refuse(pos, $"function '{called}' is not supported (supported: {string.Join(", ", Functions)} and the template's own macros)");
        return body;
    }

    // ---- statements ----

    Node ParseAny()
    {
        var t = _tokens[_at];
        switch (t.Kind)
        {
            case TokenKind.Comment:
                _at++;
                return new TextNode(t.Pos, "");
            case TokenKind.Text:
                _at++;
                return new TextNode(t.Pos, t.Value);
            case TokenKind.OpenStatement:
                return ParseStatement();
            case TokenKind.OpenExpression:
                _at++;
                var e = ParseExpression();
                Expect(TokenKind.CloseExpression, "'}}' to close the expression");
                return new OutputNode(t.Pos, e);
            default:
                throw Error(t.Pos, $"unexpected {Describe(t)}");
        }
    }

    Node ParseStatement()
    {
        var open = Expect(TokenKind.OpenStatement, "'{%'");
        var keyword = Peek();
        if (keyword is not { Kind: TokenKind.Identifier }) throw Error(keyword?.Pos ?? open.Pos, "expected a statement name after '{%'");
        _at++;
        switch (keyword.Value)
        {
            case "set": return ParseSet(open);
            case "if":
            {
                var node = ParseIf(open);
                ExpectEnd("endif", "if", open);
                return node;
            }
            case "for":
            {
                var node = ParseFor(open);
                ExpectEnd("endfor", "for", open);
                return node;
            }
            case "macro":
            {
                var node = ParseMacro(open);
                ExpectEnd("endmacro", "macro", open);
                return node;
            }
            case "elif" or "else" or "endif" or "endfor" or "endmacro" or "endset":
                throw Error(keyword.Pos, $"'{keyword.Value}' without its opening statement");
            default:
                throw Refuse(keyword.Pos, $"statement '{keyword.Value}' is not supported (supported: set, if/elif/else, for/else, macro)");
        }
    }

    Node ParseSet(Token open)
    {
        var target = ParseSequence(primary: false);
        if (target is not (NameExpr or MemberExpr { Computed: false } or ListExpr { IsTuple: true }))
            throw Error(target.Pos, "set needs a name, a namespace attribute (ns.x) or a tuple of names to assign to");
        if (Is(TokenKind.Equals))
        {
            _at++;
            var value = ParseSequence(primary: false);
            Expect(TokenKind.CloseStatement, "'%}' to close 'set'");
            return new SetNode(open.Pos, target, value, []);
        }
        Expect(TokenKind.CloseStatement, "'=' or '%}' in 'set'");
        var body = ParseBodyUntil(open, "set", "endset");
        ExpectEnd("endset", "set", open);
        return new SetNode(open.Pos, target, null, body);
    }

    IfNode ParseIf(Token open)
    {
        var test = ParseExpression();
        Expect(TokenKind.CloseStatement, "'%}' to close 'if'");
        var body = ParseBodyUntil(open, "if", "elif", "else", "endif");
        var alternate = new List<Node>();
        if (IsStatement("elif"))
        {
            var elif = _tokens[_at];
            _at += 2;
            alternate.Add(ParseIf(elif));
        }
        else if (IsStatement("else"))
        {
            _at += 2;
            Expect(TokenKind.CloseStatement, "'%}' after 'else'");
            alternate = ParseBodyUntil(open, "if", "endif");
        }
        return new IfNode(open.Pos, test, body, alternate);
    }

    ForNode ParseFor(Token open)
    {
        var loopVar = ParseSequence(primary: true);
        if (loopVar is not (NameExpr or ListExpr { IsTuple: true })) throw Error(loopVar.Pos, "for needs a name or a tuple of names before 'in'");
        if (!IsName("in")) throw Error(Peek()?.Pos ?? open.Pos, "expected 'in' after the loop variable");
        _at++;
        var iterable = ParseExpression();
        Expr? condition = null;
        if (iterable is SelectExpr s)
        {
            iterable = s.Value;
            condition = s.Test;
        }
        if (IsName("recursive")) throw Refuse(_tokens[_at].Pos, "recursive loops are not supported");
        Expect(TokenKind.CloseStatement, "'%}' to close 'for'");
        var body = ParseBodyUntil(open, "for", "endfor", "else");
        var alternate = new List<Node>();
        if (IsStatement("else"))
        {
            _at += 2;
            Expect(TokenKind.CloseStatement, "'%}' after 'else'");
            alternate = ParseBodyUntil(open, "for", "endfor");
        }
        return new ForNode(open.Pos, loopVar, iterable, condition, body, alternate);
    }

    MacroNode ParseMacro(Token open)
    {
        var nameToken = Peek();
        if (nameToken is not { Kind: TokenKind.Identifier }) throw Error(nameToken?.Pos ?? open.Pos, "expected the macro's name");
        _at++;
        var parameters = ParseArguments(declaration: true);
        Expect(TokenKind.CloseStatement, "'%}' to close 'macro'");
        _macros.Add(nameToken.Value);
        var body = ParseBodyUntil(open, "macro", "endmacro");
        return new MacroNode(open.Pos, nameToken.Value, parameters, body);
    }

    List<Node> ParseBodyUntil(Token open, string statement, params string[] ends)
    {
        var body = new List<Node>();
        while (!IsStatement(ends))
        {
            if (_at >= _tokens.Count) throw Error(open.Pos, $"'{statement}' is never closed: expected {string.Join(" or ", ends.Select(e => $"{{% {e} %}}"))}");
            body.Add(ParseAny());
        }
        return body;
    }

    void ExpectEnd(string end, string statement, Token open)
    {
        if (!IsStatement(end)) throw Error(Peek()?.Pos ?? open.Pos, $"expected {{% {end} %}} to close '{statement}'");
        _at += 2;
        Expect(TokenKind.CloseStatement, $"'%}}' after '{end}'");
    }

    // ---- expressions ----

    Expr ParseSequence(bool primary)
    {
        var first = primary ? ParsePrimary() : ParseExpression();
        if (!Is(TokenKind.Comma)) return first;
        var items = new List<Expr> { first };
        while (Is(TokenKind.Comma))
        {
            _at++;
            items.Add(primary ? ParsePrimary() : ParseExpression());
        }
        return new ListExpr(first.Pos, items, IsTuple: true);
    }

    Expr ParseExpression()
    {
        var a = ParseOr();
        if (!IsName("if")) return a;
        var ifToken = _tokens[_at++];
        var test = ParseOr();
        if (IsName("else"))
        {
            _at++;
            return new TernaryExpr(ifToken.Pos, test, a, ParseExpression());
        }
        return new SelectExpr(ifToken.Pos, a, test);
    }

    Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or"))
        {
            var op = _tokens[_at++];
            left = new BinaryExpr(op.Pos, "or", left, ParseAnd());
        }
        return left;
    }

    Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and"))
        {
            var op = _tokens[_at++];
            left = new BinaryExpr(op.Pos, "and", left, ParseNot());
        }
        return left;
    }

    Expr ParseNot()
    {
        if (!IsName("not")) return ParseComparison();
        var op = _tokens[_at++];
        return new UnaryExpr(op.Pos, "not", ParseNot());
    }

    Expr ParseComparison()
    {
        var left = ParseAdditive();
        while (true)
        {
            string op;
            var t = Peek();
            if (t is null) break;
            if (IsName("not") && _at + 1 < _tokens.Count && _tokens[_at + 1] is { Kind: TokenKind.Identifier, Value: "in" }) { op = "not in"; _at += 2; }
            else if (IsName("in")) { op = "in"; _at++; }
            else if (t.Kind == TokenKind.Comparison) { op = t.Value; _at++; }
            else break;
            left = new BinaryExpr(t.Pos, op, left, ParseAdditive());
        }
        return left;
    }

    Expr ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Is(TokenKind.Additive))
        {
            var op = _tokens[_at++];
            left = new BinaryExpr(op.Pos, op.Value, left, ParseMultiplicative());
        }
        return left;
    }

    Expr ParseMultiplicative()
    {
        var left = ParsePower();
        while (Is(TokenKind.Multiplicative))
        {
            var op = _tokens[_at++];
            left = new BinaryExpr(op.Pos, op.Value, left, ParsePower());
        }
        return left;
    }

    Expr ParsePower()
    {
        var left = ParseTest();
        while (Is(TokenKind.Power))
        {
            var op = _tokens[_at++];
            left = new BinaryExpr(op.Pos, "**", left, ParseTest());
        }
        return left;
    }

    Expr ParseTest()
    {
        var operand = ParseFilter();
        while (IsName("is"))
        {
            var isToken = _tokens[_at++];
            var negate = IsName("not");
            if (negate) _at++;
            var test = Peek();
            if (test is not { Kind: TokenKind.Identifier }) throw Error(test?.Pos ?? isToken.Pos, "expected a test name after 'is'");
            _at++;
            if (!Tests.Contains(test.Value)) throw Refuse(test.Pos, $"test '{test.Value}' is not supported (supported: {string.Join(", ", Tests)})");
            if (Is(TokenKind.OpenParen) || Is(TokenKind.Number) || Is(TokenKind.String))
                throw Refuse(test.Pos, $"test '{test.Value}' with an argument is not supported");
            operand = new TestExpr(isToken.Pos, operand, negate, test.Value);
        }
        return operand;
    }

    Expr ParseFilter()
    {
        var operand = ParseUnary();
        while (Is(TokenKind.Pipe))
        {
            _at++;
            var name = Peek();
            if (name is not { Kind: TokenKind.Identifier }) throw Error(name?.Pos ?? operand.Pos, "expected a filter name after '|'");
            _at++;
            if (!Filters.Contains(name.Value)) throw Refuse(name.Pos, $"filter '{name.Value}' is not supported (supported: {string.Join(", ", Filters.Order())})");
            List<Expr>? args = null;
            if (Is(TokenKind.OpenParen)) args = ParseArguments(declaration: false);
            operand = new FilterExpr(name.Pos, operand, name.Value, args);
        }
        return operand;
    }

    Expr ParseUnary()
    {
        var t = Peek();
        if (t is { Kind: TokenKind.Unary or TokenKind.Additive, Value: "-" or "+" })
        {
            _at++;
            return new UnaryExpr(t.Pos, t.Value, ParseUnary());
        }
        return ParseCallMember();
    }

    Expr ParseCallMember()
    {
        var e = ParseMember(ParsePrimary());
        while (Is(TokenKind.OpenParen))
        {
            var pos = _tokens[_at].Pos;
            CheckCallee(e);
            e = ParseMember(new CallExpr(pos, e, ParseArguments(declaration: false)));
        }
        return e;
    }

    void CheckCallee(Expr callee)
    {
        switch (callee)
        {
            case NameExpr n:
                _calledNames.Add((n.Name, n.Pos));
                break;
            case MemberExpr { Computed: false, Property: NameExpr m } when !Methods.Contains(m.Name):
                throw Refuse(m.Pos, $"method '{m.Name}' is not supported (supported: {string.Join(", ", Methods)})");
        }
    }

    Expr ParseMember(Expr obj)
    {
        while (Is(TokenKind.Dot) || Is(TokenKind.OpenSquare))
        {
            var op = _tokens[_at++];
            if (op.Kind == TokenKind.OpenSquare)
            {
                var property = ParseSubscript(op);
                Expect(TokenKind.CloseSquare, "']'");
                obj = new MemberExpr(op.Pos, obj, property, Computed: true);
            }
            else
            {
                var property = ParsePrimary();
                if (property is not (NameExpr or LiteralExpr { Value: IntValue }))
                    throw Error(property.Pos, "expected a name or an integer after '.'");
                obj = new MemberExpr(op.Pos, obj, property, Computed: false);
            }
        }
        return obj;
    }

    Expr ParseSubscript(Token open)
    {
        var parts = new List<Expr?>();
        var isSlice = false;
        while (!Is(TokenKind.CloseSquare))
        {
            if (_at >= _tokens.Count) throw Error(open.Pos, "'[' is never closed");
            if (Is(TokenKind.Colon))
            {
                parts.Add(null);
                _at++;
                isSlice = true;
            }
            else
            {
                parts.Add(ParseExpression());
                if (Is(TokenKind.Colon))
                {
                    _at++;
                    isSlice = true;
                }
            }
        }
        if (parts.Count == 0) throw Error(open.Pos, "'[]' needs an index or a slice");
        if (!isSlice) return parts[0]!;
        if (parts.Count > 3) throw Error(open.Pos, "a slice has at most three parts");
        return new SliceExpr(open.Pos, parts[0], parts.ElementAtOrDefault(1), parts.ElementAtOrDefault(2));
    }

    List<Expr> ParseArguments(bool declaration)
    {
        var open = Expect(TokenKind.OpenParen, "'('");
        var args = new List<Expr>();
        var sawKeyword = false;
        while (!Is(TokenKind.CloseParen))
        {
            if (_at >= _tokens.Count) throw Error(open.Pos, "'(' is never closed");
            if (Is(TokenKind.Power) || Is(TokenKind.Multiplicative) && _tokens[_at].Value == "*")
                throw Refuse(_tokens[_at].Pos, "argument unpacking (*args, **kwargs) is not supported");
            var arg = ParseExpression();
            if (Is(TokenKind.Equals))
            {
                _at++;
                if (arg is not NameExpr n) throw Error(arg.Pos, declaration ? "expected a parameter name before '='" : "expected a keyword name before '='");
                arg = new KeywordArgExpr(arg.Pos, n.Name, ParseExpression());
                sawKeyword = true;
            }
            else if (sawKeyword) throw Error(arg.Pos, declaration ? "a parameter without default follows one with a default" : "a positional argument follows a keyword argument");
            if (declaration && arg is not (NameExpr or KeywordArgExpr)) throw Error(arg.Pos, "expected a parameter name");
            args.Add(arg);
            if (Is(TokenKind.Comma)) _at++;
        }
        _at++;
        return args;
    }

    Expr ParsePrimary()
    {
        if (_at >= _tokens.Count) throw Error(_source.Length, "unexpected end of template inside an expression");
        var t = _tokens[_at++];
        switch (t.Kind)
        {
            case TokenKind.Number:
                return t.Value.Contains('.')
                    ? new LiteralExpr(t.Pos, new FloatValue(double.Parse(t.Value, CultureInfo.InvariantCulture)))
                    : new LiteralExpr(t.Pos, new IntValue(double.Parse(t.Value, CultureInfo.InvariantCulture)));
            case TokenKind.String:
            {
                var s = t.Value;
                while (Is(TokenKind.String)) s += _tokens[_at++].Value; // "a" "b" is "ab"
                return new LiteralExpr(t.Pos, new StringValue(s));
            }
            case TokenKind.Identifier:
                return new NameExpr(t.Pos, t.Value);
            case TokenKind.OpenParen:
            {
                var e = ParseSequence(primary: false);
                Expect(TokenKind.CloseParen, "')'");
                return e;
            }
            case TokenKind.OpenSquare:
            {
                var items = new List<Expr>();
                while (!Is(TokenKind.CloseSquare))
                {
                    if (_at >= _tokens.Count) throw Error(t.Pos, "'[' is never closed");
                    items.Add(ParseExpression());
                    if (Is(TokenKind.Comma)) _at++;
                }
                _at++;
                return new ListExpr(t.Pos, items, IsTuple: false);
            }
            case TokenKind.OpenCurly:
            {
                var entries = new List<(Expr, Expr)>();
                while (!Is(TokenKind.CloseCurly))
                {
                    if (_at >= _tokens.Count) throw Error(t.Pos, "'{' is never closed");
                    var key = ParseExpression();
                    Expect(TokenKind.Colon, "':' between a key and its value");
                    entries.Add((key, ParseExpression()));
                    if (Is(TokenKind.Comma)) _at++;
                }
                _at++;
                return new DictExpr(t.Pos, entries);
            }
            default:
                throw Error(t.Pos, $"unexpected {Describe(t)}");
        }
    }

    // ---- helpers ----

    Token? Peek() => _at < _tokens.Count ? _tokens[_at] : null;
    bool Is(TokenKind kind) => _at < _tokens.Count && _tokens[_at].Kind == kind;
    bool IsName(string name) => _at < _tokens.Count && _tokens[_at] is { Kind: TokenKind.Identifier } t && t.Value == name;

    bool IsStatement(params string[] names) =>
        _at + 1 < _tokens.Count && _tokens[_at].Kind == TokenKind.OpenStatement
        && _tokens[_at + 1].Kind == TokenKind.Identifier && names.Contains(_tokens[_at + 1].Value);

    Token Expect(TokenKind kind, string what)
    {
        if (_at >= _tokens.Count) throw Error(_source.Length, $"unexpected end of template: expected {what}");
        var t = _tokens[_at];
        if (t.Kind != kind) throw Error(t.Pos, $"expected {what}, found {Describe(t)}");
        _at++;
        return t;
    }

    static string Describe(Token t) => t.Kind switch
    {
        TokenKind.Text => "text",
        TokenKind.String => $"string '{t.Value}'",
        TokenKind.Comment => "comment",
        _ => $"'{t.Value}'",
    };

    TemplateException Error(int pos, string problem)
    {
        var (line, col) = Positions.LineColumn(_source, pos);
        return new TemplateException(_name, line, col, problem);
    }

    TemplateException Refuse(int pos, string problem) => Error(pos, $"unsupported Jinja feature: {problem}");
}
