namespace CptLab.Templates.Tests;

/// <summary>What is outside the subset is refused when the template is compiled, naming the feature and its line:column.</summary>
public class RefusalTests
{
    [Theory]
    [InlineData("{% include 'other.jinja' %}", "statement 'include'", 1, 4)]
    [InlineData("a\n    {% break %}", "statement 'break'", 2, 8)]
    [InlineData("{% call greet() %}x{% endcall %}", "statement 'call'", 1, 4)]
    [InlineData("{% filter upper %}x{% endfilter %}", "statement 'filter'", 1, 4)]
    [InlineData("{% raw %}x{% endraw %}", "statement 'raw'", 1, 4)]
    [InlineData("{% extends 'base' %}", "statement 'extends'", 1, 4)]
    [InlineData("{% generation %}x{% endgeneration %}", "statement 'generation'", 1, 4)]
    [InlineData("line1\n  {{ x | wordcount }}", "filter 'wordcount'", 2, 10)]
    [InlineData("{% if x is divisibleby 3 %}{% endif %}", "test 'divisibleby'", 1, 12)]
    [InlineData("{% if x is sameas(y) %}{% endif %}", "test 'sameas'", 1, 12)]
    [InlineData("{{ messages.append(1) }}", "method 'append'", 1, 13)]
    [InlineData("{{ cycler('a', 'b') }}", "function 'cycler'", 1, 4)]
    [InlineData("{{ f(**kw) }}{% macro f() %}{% endmacro %}", "argument unpacking", 1, 6)]
    [InlineData("{% for x in xs recursive %}{% endfor %}", "recursive loops", 1, 16)]
    public void Unsupported_features_are_refused_at_load(string source, string feature, int line, int column)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Compile(source, "t.jinja"));
        Assert.Contains("unsupported Jinja feature", e.Message);
        Assert.Contains(feature, e.Message);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.StartsWith($"t.jinja:{line}:{column}: ", e.Message);
        Assert.IsAssignableFrom<CptLab.Core.CptLabException>(e);
    }

    [Theory]
    [InlineData("{% if x %}never closed", "'if' is never closed", 1, 1)]
    [InlineData("{{ 'unterminated }}", "never closed", 1, 4)]
    [InlineData("ok\n{% for x in %}{% endfor %}", "unexpected '%}'", 2, 13)]
    [InlineData("{% endif %}", "without its opening", 1, 4)]
    public void Syntax_errors_name_the_position(string source, string problem, int line, int column)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Compile(source, "t.jinja"));
        Assert.Contains(problem, e.Message);
        Assert.Equal((line, column), (e.Line, e.Column));
    }

    [Fact]
    public void A_macro_defined_later_may_be_called_earlier()
    {
        JinjaTemplate.Compile("{{ f() }}{% macro f() %}x{% endmacro %}");
    }
}
