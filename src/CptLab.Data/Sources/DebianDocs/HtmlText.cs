using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;

namespace CptLab.Data.Sources.DebianDocs;

/// <summary>
/// The readable text of an HTML page, parsed with AngleSharp (an HTML5 parser, so broken markup is read as a browser
/// reads it). Dropped: the head, scripts, styles, &lt;nav&gt;, &lt;noscript&gt;, &lt;template&gt;, and DocBook's
/// navigation and generated lists (<c>div.navheader</c>, <c>div.navfooter</c>, <c>div.toc</c>, <c>div.list-of-*</c>)
/// — the same links and titles on every page of Debian Reference. Paragraph blocks are separated by a blank line, rows, list items and divs
/// by a line break, table cells by tabs; &lt;pre&gt; keeps its layout; elsewhere whitespace collapses to one space, and a run of whitespace holding a
/// line break between two CJK characters disappears (HTML source wraps Chinese text, a browser's rendering of Chinese
/// does not show those breaks as spaces).
/// </summary>
public static class HtmlText
{
    static readonly string[] Removed = ["head", "script", "style", "nav", "noscript", "template", "iframe", "object",
        "div.navheader", "div.navfooter", "div.toc", "div.list-of-tables", "div.list-of-figures", "div.list-of-examples"];

    // Paragraph-level blocks are separated by a blank line, line-level ones by a line break.
    static readonly HashSet<string> Paragraphs = new(StringComparer.OrdinalIgnoreCase)
    {
        "address", "article", "aside", "blockquote", "dl", "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "main", "ol", "p", "pre", "section", "table", "ul",
    };

    static readonly HashSet<string> Lines = new(StringComparer.OrdinalIgnoreCase)
    {
        "body", "caption", "dd", "div", "dt", "figcaption", "li", "tr", "thead", "tbody", "tfoot",
    };

    /// <summary>The page's title (&lt;title&gt;, or null) and its content as text.</summary>
    public static (string? Title, string Text) Extract(string html)
    {
        var document = new HtmlParser().ParseDocument(html);
        var title = document.Title?.Trim();
        foreach (var selector in Removed)
            foreach (var element in document.QuerySelectorAll(selector).ToList()) element.Remove();
        var w = new Writer();
        if (document.Body is { } body) Walk(body, w, pre: false);
        return (string.IsNullOrEmpty(title) ? null : title, w.ToString());
    }

    static void Walk(INode node, Writer w, bool pre)
    {
        foreach (var child in node.ChildNodes)
        {
            switch (child)
            {
                case IText text:
                    if (pre) w.Raw(text.Data);
                    else w.Text(Collapse(text.Data));
                    break;
                case IElement element:
                    var name = element.LocalName;
                    if (name == "br") { w.Break(1); break; }
                    if (name is "td" or "th") { w.Cell(); Walk(element, w, pre); break; }
                    var level = Paragraphs.Contains(name) ? 2 : Lines.Contains(name) ? 1 : 0;
                    w.Break(level);
                    Walk(element, w, pre || name == "pre");
                    w.Break(level);
                    break;
            }
        }
    }

    /// <summary>
    /// Text with breaks requested rather than written: a break (the largest requested since the last text) is written
    /// only before more text, so nested and adjacent blocks give one separator, and the page neither starts nor ends with one.
    /// </summary>
    sealed class Writer
    {
        readonly StringBuilder _sb = new();
        int _pending;
        bool _lineStart = true;

        public void Break(int level) => _pending = Math.Max(_pending, level);

        public void Cell() { if (!_lineStart && _pending == 0) { TrimEnd(); _sb.Append('\t'); _lineStart = true; } }

        public void Text(string s)
        {
            if (_lineStart || _pending > 0) s = s.TrimStart(' ');
            if (s.Length == 0) return;
            Flush();
            _sb.Append(s);
            _lineStart = false;
        }

        public void Raw(string s)
        {
            if (s.Length == 0) return;
            Flush();
            _sb.Append(s);
            _lineStart = s[^1] == '\n';
        }

        void Flush()
        {
            if (_pending > 0 && _sb.Length > 0)
            {
                TrimEnd();
                _sb.Append(_pending == 2 ? "\n\n" : "\n");
                _lineStart = true;
            }
            _pending = 0;
        }

        void TrimEnd() { while (_sb.Length > 0 && _sb[^1] is ' ' or '\n' or '\t') _sb.Length--; }

        public override string ToString() { TrimEnd(); return _sb.ToString(); }
    }

    /// <summary>Whitespace outside &lt;pre&gt;: a run becomes one space, or nothing when it held a line break between CJK characters.</summary>
    static string Collapse(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (!char.IsWhiteSpace(s[i])) { sb.Append(s[i]); continue; }
            var start = i;
            var newline = false;
            while (i < s.Length && char.IsWhiteSpace(s[i])) { newline |= s[i] == '\n'; i++; }
            i--;
            var before = start > 0 ? s[start - 1] : ' ';
            var after = i + 1 < s.Length ? s[i + 1] : ' ';
            if (!(newline && IsCjk(before) && IsCjk(after))) sb.Append(' ');
        }
        return sb.ToString();
    }

    static bool IsCjk(char c) => c is >= '\u2e80' and <= '\u9fff' or >= '\uf900' and <= '\ufaff' or >= '\uff00' and <= '\uffef' or >= '\u3000' and <= '\u303f';
}
