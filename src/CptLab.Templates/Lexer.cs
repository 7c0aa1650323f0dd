using System.Text;

namespace CptLab.Templates;

enum TokenKind
{
    Text, Number, String, Identifier, Equals, OpenParen, CloseParen, OpenStatement, CloseStatement, OpenExpression,
    CloseExpression, OpenSquare, CloseSquare, OpenCurly, CloseCurly, Comma, Dot, Colon, Pipe, Additive, Multiplicative,
    Power, Comparison, Unary, Comment,
}

/// <summary>One token; <see cref="Pos"/> is its offset in the original template source (for error messages).</summary>
sealed record Token(TokenKind Kind, string Value, int Pos)
{
    public string Value { get; set; } = Value;
}

/// <summary>
/// Template source → tokens, as Hugging Face compiles chat templates: trim_blocks and lstrip_blocks on (transformers'
/// <c>_compile_jinja_template</c>), one trailing newline dropped, <c>{%- -%}</c>, <c>{{- -}}</c>, <c>{#- -#}</c> strip
/// the whitespace beside them. The whitespace rules follow @huggingface/jinja (the reference the tests compare with):
/// lstrip removes spaces and tabs between a line start and <c>{%</c>/<c>{#</c>; trim removes the newline right after
/// <c>%}</c>/<c>#}</c>/<c>-}</c>; "whitespace" is JavaScript's <c>\s</c>.
/// </summary>
static class Lexer
{
    public static List<Token> Tokenize(string source, string name)
    {
        var (src, origin) = Preprocess(source);
        var tokens = new List<Token>();
        var at = 0;
        var curlyDepth = 0;

        TemplateException Error(int i, string problem)
        {
            var (line, col) = Positions.LineColumn(source, i < origin.Length ? origin[i] : source.Length);
            return new TemplateException(name, line, col, problem);
        }
        char C(int i) => i < src.Length ? src[i] : '\0';
        bool At(string s) => string.CompareOrdinal(src, at, s, 0, s.Length) == 0 && at + s.Length <= src.Length;
        void Push(TokenKind kind, string value, int start) => tokens.Add(new Token(kind, value, origin[Math.Min(start, origin.Length - 1)]));

        // Reads while the predicate holds, decoding backslash escapes (they only matter inside string literals).
        string ConsumeWhile(Func<char, bool> predicate)
        {
            var s = new StringBuilder();
            while (at < src.Length && predicate(src[at]))
            {
                if (src[at] == '\\')
                {
                    var escapeAt = at++;
                    if (at >= src.Length) throw Error(escapeAt, "unexpected end of template after '\\'");
                    var e = src[at++];
                    if (e is 'x' or 'u')
                    {
                        var n = e == 'x' ? 2 : 4;
                        var hex = at + n <= src.Length ? src.Substring(at, n) : "";
                        if (hex.Length != n || !hex.All(Uri.IsHexDigit)) throw Error(escapeAt, $"invalid escape \\{e}{hex}");
                        s.Append((char)Convert.ToInt32(hex, 16));
                        at += n;
                        continue;
                    }
                    s.Append(e switch
                    {
                        'n' => '\n', 't' => '\t', 'r' => '\r', 'b' => '\b', 'f' => '\f', 'v' => '\v', '\'' => '\'', '"' => '"', '\\' => '\\',
                        _ => throw Error(escapeAt, $"unsupported escape \\{e} in a string"),
                    });
                    continue;
                }
                s.Append(src[at++]);
            }
            return s.ToString();
        }

        void StripTrailingWhitespace()
        {
            if (tokens.Count > 0 && tokens[^1].Kind == TokenKind.Text)
            {
                tokens[^1].Value = JsString.TrimEnd(tokens[^1].Value);
                if (tokens[^1].Value.Length == 0) tokens.RemoveAt(tokens.Count - 1);
            }
        }
        void SkipLeadingWhitespace()
        {
            while (at < src.Length && JsString.IsWhitespace(src[at])) at++;
        }

        while (at < src.Length)
        {
            var last = tokens.Count > 0 ? tokens[^1].Kind : (TokenKind?)null;
            if (last is null or TokenKind.CloseStatement or TokenKind.CloseExpression or TokenKind.Comment)
            {
                var start = at;
                while (at < src.Length && !(src[at] == '{' && C(at + 1) is '%' or '{' or '#')) at++;
                if (at > start)
                {
                    Push(TokenKind.Text, src[start..at], start);
                    continue;
                }
            }

            if (At("{#"))
            {
                var open = at;
                at += 2;
                var stripBefore = C(at) == '-';
                if (stripBefore) at++;
                var end = src.IndexOf("#}", at, StringComparison.Ordinal);
                if (end < 0) throw Error(open, "comment '{#' is never closed with '#}'");
                var comment = src[at..end];
                var stripAfter = comment.EndsWith('-');
                if (stripBefore) StripTrailingWhitespace();
                Push(TokenKind.Comment, comment, open);
                at = end + 2;
                if (stripAfter) SkipLeadingWhitespace();
                continue;
            }
            if (At("{%-"))
            {
                StripTrailingWhitespace();
                Push(TokenKind.OpenStatement, "{%", at);
                at += 3;
                continue;
            }
            if (At("{{-"))
            {
                StripTrailingWhitespace();
                Push(TokenKind.OpenExpression, "{{", at);
                curlyDepth = 0;
                at += 3;
                continue;
            }

            SkipLeadingWhitespace();
            if (at >= src.Length) break;
            if (At("-%}"))
            {
                Push(TokenKind.CloseStatement, "%}", at);
                at += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (At("-}}"))
            {
                Push(TokenKind.CloseExpression, "}}", at);
                at += 3;
                SkipLeadingWhitespace();
                continue;
            }

            var c = src[at];
            if (c is '-' or '+')
            {
                last = tokens.Count > 0 ? tokens[^1].Kind : null;
                if (last is null or TokenKind.Text) throw Error(at, $"unexpected '{c}'");
                if (last is not (TokenKind.Identifier or TokenKind.Number or TokenKind.String or TokenKind.CloseParen or TokenKind.CloseSquare))
                {
                    // A sign: "-1" is one number token, "-x" a unary operator.
                    var start = at++;
                    var num = ConsumeWhile(char.IsAsciiDigit);
                    if (num.Length > 0 && C(at) == '.' && char.IsAsciiDigit(C(at + 1)))
                    {
                        at++;
                        num += "." + ConsumeWhile(char.IsAsciiDigit);
                    }
                    Push(num.Length > 0 ? TokenKind.Number : TokenKind.Unary, c + num, start);
                    continue;
                }
            }

            if (MatchOperator(src, at, curlyDepth) is { } op)
            {
                Push(op.Kind, op.Text, at);
                if (op.Kind == TokenKind.OpenExpression) curlyDepth = 0;
                else if (op.Kind == TokenKind.OpenCurly) curlyDepth++;
                else if (op.Kind == TokenKind.CloseCurly) curlyDepth--;
                at += op.Text.Length;
                continue;
            }
            if (c is '\'' or '"')
            {
                var start = at++;
                var s = ConsumeWhile(ch => ch != c);
                if (at >= src.Length) throw Error(start, "string literal is never closed");
                at++;
                Push(TokenKind.String, s, start);
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                var start = at;
                var num = ConsumeWhile(char.IsAsciiDigit);
                if (tokens.Count > 0 && tokens[^1].Kind != TokenKind.Dot && C(at) == '.' && char.IsAsciiDigit(C(at + 1)))
                {
                    at++;
                    num += "." + ConsumeWhile(char.IsAsciiDigit);
                }
                Push(TokenKind.Number, num, start);
                continue;
            }
            if (IsWord(c))
            {
                var start = at;
                while (at < src.Length && IsWord(src[at])) at++;
                Push(TokenKind.Identifier, src[start..at], start);
                continue;
            }
            throw Error(at, $"unexpected character '{c}'");
        }
        return tokens;
    }

    static bool IsWord(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    static readonly (string Text, TokenKind Kind)[] Operators =
    [
        ("{%", TokenKind.OpenStatement), ("%}", TokenKind.CloseStatement), ("{{", TokenKind.OpenExpression), ("}}", TokenKind.CloseExpression),
        ("(", TokenKind.OpenParen), (")", TokenKind.CloseParen), ("{", TokenKind.OpenCurly), ("}", TokenKind.CloseCurly),
        ("[", TokenKind.OpenSquare), ("]", TokenKind.CloseSquare), (",", TokenKind.Comma), (".", TokenKind.Dot), (":", TokenKind.Colon),
        ("|", TokenKind.Pipe), ("<=", TokenKind.Comparison), (">=", TokenKind.Comparison), ("==", TokenKind.Comparison),
        ("!=", TokenKind.Comparison), ("<", TokenKind.Comparison), (">", TokenKind.Comparison), ("+", TokenKind.Additive),
        ("-", TokenKind.Additive), ("~", TokenKind.Additive), ("**", TokenKind.Power), ("*", TokenKind.Multiplicative),
        ("//", TokenKind.Multiplicative), ("/", TokenKind.Multiplicative), ("%", TokenKind.Multiplicative), ("=", TokenKind.Equals),
    ];

    static (string Text, TokenKind Kind)? MatchOperator(string src, int at, int curlyDepth)
    {
        foreach (var op in Operators)
        {
            // Inside a dict literal "}}" closes two dicts, not the expression.
            if (op.Kind == TokenKind.CloseExpression && curlyDepth > 0) continue;
            if (at + op.Text.Length <= src.Length && string.CompareOrdinal(src, at, op.Text, 0, op.Text.Length) == 0) return op;
        }
        return null;
    }

    /// <summary>
    /// The whitespace options applied to the source, keeping for every character its offset in the original so that
    /// errors point into the file the user has.
    /// </summary>
    static (string Text, int[] Origin) Preprocess(string source)
    {
        var n = source.EndsWith('\n') ? source.Length - 1 : source.Length;
        var chars = new List<char>(n);
        var origin = new List<int>(n + 1);

        // lstrip_blocks: spaces and tabs from a line start up to "{%", "{#" (and, as the reference has it, "{-").
        for (var i = 0; i < n; i++)
        {
            var lineStart = i == 0 || source[i - 1] is '\n' or '\r' or '\u2028' or '\u2029';
            if (lineStart && source[i] is ' ' or '\t')
            {
                var j = i;
                while (j < n && source[j] is ' ' or '\t') j++;
                if (j + 1 < n && source[j] == '{' && source[j + 1] is '#' or '%' or '-')
                {
                    i = j - 1;
                    continue;
                }
            }
            chars.Add(source[i]);
            origin.Add(i);
        }

        // trim_blocks: the newline right after "%}", "#}" (and "-}").
        var text = new StringBuilder(chars.Count);
        var map = new List<int>(chars.Count + 1);
        for (var i = 0; i < chars.Count; i++)
        {
            text.Append(chars[i]);
            map.Add(origin[i]);
            if (chars[i] is '#' or '%' or '-' && i + 2 < chars.Count + 0 && chars[i + 1] == '}' && chars[i + 2] == '\n')
            {
                text.Append('}');
                map.Add(origin[i + 1]);
                i += 2;
            }
        }
        map.Add(n);
        return (text.ToString(), [.. map]);
    }
}

static class Positions
{
    /// <summary>1-based line and column of <paramref name="offset"/> in <paramref name="source"/>.</summary>
    public static (int Line, int Column) LineColumn(string source, int offset)
    {
        int line = 1, col = 1;
        for (var i = 0; i < offset && i < source.Length; i++)
        {
            if (source[i] == '\n') { line++; col = 1; }
            else col++;
        }
        return (line, col);
    }
}
