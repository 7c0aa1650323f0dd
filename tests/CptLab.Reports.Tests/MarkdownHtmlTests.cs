namespace CptLab.Reports.Tests;

/// <summary>The report subset of Markdown against HTML written out by hand.</summary>
public class MarkdownHtmlTests
{
    static string Body(string html)
    {
        var start = html.IndexOf("<body>\n", StringComparison.Ordinal) + "<body>\n".Length;
        return html[start..html.IndexOf("</body>", StringComparison.Ordinal)];
    }

    [Fact]
    public void Headings_paragraphs_tables_lists_and_inline_spans()
    {
        var md = "# Title & more\nfirst line\nsecond **bold** `x<y`\n\n| a | b |\n|---|:---:|\n| 1 | ![fig](plots/f.png) |\n\n- one\n- two\n";
        const string expected =
            "<h1>Title &amp; more</h1>\n" +
            "<p>first line second <strong>bold</strong> <code>x&lt;y</code></p>\n" +
            "<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td>1</td><td><img src=\"plots/f.png\" alt=\"fig\"></td></tr>\n</table>\n" +
            "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n";
        var html = MarkdownHtml.Convert(md, "R&D <report>");
        Assert.StartsWith("<!DOCTYPE html>\n", html);
        Assert.Contains("<title>R&amp;D &lt;report&gt;</title>", html);
        Assert.Equal(expected, Body(html));
        Assert.EndsWith("</body>\n</html>\n", html);
    }

    [Fact]
    public void A_table_without_a_separator_row_has_no_header_and_crlf_reads_as_lf()
    {
        var html = MarkdownHtml.Convert("| x | y |\r\n| 1 | 2 |\r\n## Next\r\n", "t");
        Assert.Equal("<table>\n<tr><td>x</td><td>y</td></tr>\n<tr><td>1</td><td>2</td></tr>\n</table>\n<h2>Next</h2>\n", Body(html));
    }
}
