using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace CptLab.Reports;

/// <summary>
/// The Markdown that the sweep reports are written in, as a standalone HTML page: headings, paragraphs, pipe
/// tables, bullet lists, images, **bold** and `code`. Only that subset: it is not a general Markdown renderer.
/// </summary>
public static partial class MarkdownHtml
{
    public static string Convert(string markdown, string title)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(WebUtility.HtmlEncode(title)).Append("</title>\n");
        html.Append("<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}" +
                    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #bbb;padding:.25rem .6rem;text-align:left}" +
                    "th{background:#f2f2f2}img{max-width:100%}code{background:#f4f4f4;padding:0 .2rem}</style>\n</head>\n<body>\n");
        var lines = markdown.Replace("\r\n", "\n").Split('\n');
        var paragraph = new List<string>();
        void FlushParagraph()
        {
            if (paragraph.Count == 0) return;
            html.Append("<p>").Append(Inline(string.Join(' ', paragraph))).Append("</p>\n");
            paragraph.Clear();
        }
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (string.IsNullOrWhiteSpace(line)) { FlushParagraph(); continue; }
            if (HeadingRegex().Match(line) is { Success: true } h)
            {
                FlushParagraph();
                var level = h.Groups[1].Length;
                html.Append($"<h{level}>").Append(Inline(h.Groups[2].Value)).Append($"</h{level}>\n");
            }
            else if (line.StartsWith('|'))
            {
                FlushParagraph();
                var rows = new List<string[]>();
                for (; i < lines.Length && lines[i].StartsWith('|'); i++) rows.Add(Cells(lines[i]));
                i--;
                var hasHeader = rows.Count > 1 && rows[1].All(c => SeparatorRegex().IsMatch(c));
                html.Append("<table>\n");
                for (var r = 0; r < rows.Count; r++)
                {
                    if (hasHeader && r == 1) continue;
                    var tag = hasHeader && r == 0 ? "th" : "td";
                    html.Append("<tr>");
                    foreach (var c in rows[r]) html.Append($"<{tag}>").Append(Inline(c)).Append($"</{tag}>");
                    html.Append("</tr>\n");
                }
                html.Append("</table>\n");
            }
            else if (line.StartsWith("- ", StringComparison.Ordinal))
            {
                FlushParagraph();
                html.Append("<ul>\n");
                for (; i < lines.Length && lines[i].StartsWith("- ", StringComparison.Ordinal); i++)
                    html.Append("<li>").Append(Inline(lines[i][2..])).Append("</li>\n");
                i--;
                html.Append("</ul>\n");
            }
            else paragraph.Add(line.Trim());
        }
        FlushParagraph();
        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    static string[] Cells(string row)
    {
        var t = row.Trim();
        if (t.StartsWith('|')) t = t[1..];
        if (t.EndsWith('|')) t = t[..^1];
        return t.Split('|').Select(c => c.Trim()).ToArray();
    }

    /// <summary>Escapes the text, then turns images, bold and code spans into tags.</summary>
    static string Inline(string text)
    {
        var s = WebUtility.HtmlEncode(text);
        s = ImageRegex().Replace(s, m => $"<img src=\"{m.Groups[2].Value}\" alt=\"{m.Groups[1].Value}\">");
        s = BoldRegex().Replace(s, "<strong>$1</strong>");
        s = CodeRegex().Replace(s, "<code>$1</code>");
        return s;
    }

    [GeneratedRegex(@"^(#{1,6})\s+(.*)$")] private static partial Regex HeadingRegex();
    [GeneratedRegex(@"^:?-{3,}:?$")] private static partial Regex SeparatorRegex();
    [GeneratedRegex(@"!\[([^\]]*)\]\(([^)\s]+)\)")] private static partial Regex ImageRegex();
    [GeneratedRegex(@"\*\*(.+?)\*\*")] private static partial Regex BoldRegex();
    [GeneratedRegex(@"`([^`]+)`")] private static partial Regex CodeRegex();
}
