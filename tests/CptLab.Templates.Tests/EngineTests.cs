using System.Text.Json.Nodes;

using CptLab.TestKit;

namespace CptLab.Templates.Tests;

/// <summary>
/// The engine on its own, feature by feature. Every expected output is @huggingface/jinja's, computed in the same run;
/// none is typed here.
/// </summary>
public sealed class EngineTests(NodeJinja node) : IClassFixture<NodeJinja>
{
    static readonly string Items = """{"xs": [3, 1, 2], "names": ["b", "A", "c"], "d": {"k": "v", "n": 2, "z": null}, "s": "  Hello, World!  ", "msgs": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}], "f": 2.5, "i": 7, "t": true, "zh": "你好，世界 😀"}""";

    public static TheoryData<string, string> Cases => new()
    {
        // whitespace control, trim_blocks and lstrip_blocks
        { "trim-lstrip", "a\n  {% if true %}\n    x\n  {% endif %}\nb\n" },
        { "dash-both", "a   {%- if true -%}   x   {%- endif -%}   b" },
        { "dash-expr", "[ {{- 'x' -}} ]\n[ {{ 'y' }} ]\n" },
        { "comment", "a {# note #} b\n  {#- gone -#}  c\n{# line #}\nd" },
        { "expr-newline", "{{ 'x' }}\ny\n{{ 'z' }}\n\n" },
        { "lstrip-not-expr", "  {{ 'kept' }}\n\t{% set q = 1 %}\nafter" },
        { "crlf", "a\r\n  {% if true %}\r\nx\r\n{% endif %}\r\nb" },
        // loops
        { "loop-vars", "{% for x in xs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}|{% endfor %}" },
        { "loop-prev-next", "{% for m in msgs %}{{ loop.previtem.role if loop.previtem else '-' }}>{{ m.role }}>{{ loop.nextitem.role if loop.nextitem is defined else '-' }};{% endfor %}" },
        { "loop-else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}" },
        { "loop-filter", "{% for x in xs if x > 1 %}{{ x }}{{ loop.index }},{% endfor %}" },
        { "loop-dict", "{% for k in d %}{{ k }};{% endfor %}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | items %}{{ k }}{% endfor %}" },
        { "loop-scope", "{% set n = 0 %}{% for x in xs %}{% set n = n + x %}{{ n }}{% endfor %}|{{ n }}" },
        { "nested-loop", "{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ a }}{{ b }}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}" },
        // set and namespace
        { "namespace", "{% set ns = namespace(count=0, seen=false) %}{% for m in msgs %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}{% endif %}{% endfor %}{{ ns.count }}{{ ns.seen }}" },
        { "namespace-empty", "{% set ns = namespace() %}{% set ns.index = 0 %}{% set ns.index = ns.index + 2 %}{{ ns.index }}" },
        { "set-block", "{% set x %}in {{ 1 + 1 }}{% endset %}[{{ x }}]" },
        { "set-tuple", "{% set a, b = [1, 2] %}{{ a }}{{ b }}" },
        // if / elif / else, ternary
        { "elif", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}{% endfor %}" },
        { "ternary", "{{ 'y' if t else 'n' }}{{ 'y' if undefined_thing else 'n' }}{{ 'only' if false }}" },
        // undefined behaves as Jinja's
        { "undefined", "[{{ nope }}][{{ nope.attr }}][{{ d.missing }}]{% if nope %}x{% else %}falsy{% endif %}{{ nope is defined }}{{ nope is undefined }}" },
        { "undefined-eq", "{{ nope == none }}{{ d.z == none }}{{ d.z is none }}{{ nope is none }}" },
        // filters
        { "trim", "[{{ s | trim }}][{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}]" },
        { "tojson", "{{ d | tojson }}|{{ msgs | tojson }}|{{ zh | tojson }}|{{ 'q\"\\\\\n\t' | tojson }}|{{ f | tojson }}|{{ [] | tojson }}" },
        { "tojson-indent", "{{ msgs | tojson(indent=4) }}\n{{ {'a': [], 'b': {}, 'c': [1, {'x': none}]} | tojson(indent=2) }}" },
        { "tojson-kw", "{{ d | tojson(sort_keys=true) }}{{ zh | tojson(ensure_ascii=true) }}{{ xs | tojson(separators=(',', ':')) }}" },
        { "length", "{{ xs | length }}{{ s | length }}{{ d | length }}{{ zh | length }}{{ xs.length }}" },
        { "case", "{{ s | upper }}{{ s | lower }}{{ 'hello wORLD foo_bar' | title }}{{ 'hello' | capitalize }}{{ s.upper() }}{{ 'ab cd'.title() }}" },
        { "string", "{{ i | string }}{{ f | string }}{{ t | string }}{{ xs | string }}{{ 'x' | string }}" },
        { "default", "{{ nope | default('dflt') }}{{ '' | default('e', true) }}{{ '' | default('e') }}{{ i | default(0) }}" },
        { "join", "{{ names | join(', ') }}|{{ xs | join('-') }}|{{ names | join }}|{{ 'abc' | join('.') }}" },
        { "list-filters", "{{ xs | first }}{{ xs | last }}{{ xs | reverse | join }}{{ xs | sort | join }}{{ names | sort | join }}{{ [1, 1, 2] | unique | join }}" },
        { "selectattr", "{{ msgs | selectattr('role', 'equalto', 'user') | list | length }}{{ msgs | rejectattr('role', 'equalto', 'user') | map(attribute='content') | join }}{{ msgs | selectattr('content') | list | length }}" },
        { "items-filter", "{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}" },
        { "dict-methods", "{{ d.get('k') }}{{ d.get('missing', 'dflt') }}{{ d.keys() | join }}{{ d.values() | length }}" },
        { "int-float", "{{ '42' | int }}{{ '3.5' | float }}{{ 'x' | int }}{{ f | int }}{{ i | float }}{{ -3 | abs }}" },
        { "indent", "{{ 'a\nb\n\nc' | indent }}|{{ 'a\nb' | indent(2, true) }}" },
        // tests
        { "tests", "{{ s is string }}{{ xs is iterable }}{{ d is mapping }}{{ d is iterable }}{{ xs is sequence }}{{ i is number }}{{ i is integer }}{{ f is integer }}{{ t is boolean }}{{ i is odd }}{{ i is even }}{{ none is none }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ s is not string }}" },
        // strings
        { "string-methods", "{{ 'a,b,,c'.split(',') | join('|') }}{{ '  a  b c '.split() | join('|') }}{{ 'a-b-c'.split('-', 1) | join('|') }}{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ 'aaa'.replace('a', 'b', 2) }}{{ 'abc'.replace('', '-') }}" },
        { "think-split", "{% set c = 'reasoning</think>answer' %}{% if '</think>' in c %}{{ c.split('</think>')[-1] }}{% endif %}" },
        // indexing and slicing
        { "slices", "{{ msgs[1:] | length }}{{ xs[::-1] | join }}{{ xs[:2] | join }}{{ xs[-1] }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ zh[1:] }}{{ xs[-2:] | join }}{{ xs[5:] | length }}{{ msgs[0]['role'] }}{{ msgs[0].role }}{{ xs[10] is defined }}" },
        // operators
        { "arith", "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2.0 * 3 }} {{ 1 - -1 }} {{ (1 + 2) * 3 }} {{ 10 / 5 }} {{ 0.1 + 0.2 }}" },
        { "compare", "{{ 1 < 2 }}{{ 2 <= 2 }}{{ 3 > 4 }}{{ 'a' == 'a' }}{{ 'a' != 'b' }}{{ 1 == 1.0 }}{{ '1' == 1 }}{{ true == 1 }}{{ xs == xs }}{{ [1] == [1] }}" },
        { "logic", "{{ true and false }}{{ true or false }}{{ not true }}{{ not nope is defined }}{{ '' or 'fallback' }}{{ 'x' and 'y' }}{{ xs and 'nonempty' }}{{ [] or 'empty' }}" },
        { "in", "{{ 'a' in 'cat' }}{{ 'k' in d }}{{ 'q' not in d }}{{ 2 in xs }}{{ 5 not in xs }}{{ 'x' in nope }}{{ 'role' in msgs[0] }}" },
        { "concat", "{{ 'a' ~ 1 ~ none is none ~ t }}{{ 'n=' + i | string }}{{ 'x' + 1 }}{{ 1 ~ 2.0 }}{{ [1] + [2] | length }}" },
        { "literals", "{{ {'a': 1, 'b': [1, 2, {'c': 'd'}]} }}{{ [1, 'two', 3.5, none, true] }}{{ (1, 2) | length }}{{ \"dq\" 'sq' }}{{ 1.5 }}{{ 2.0 }}{{ -0.0 }}" },
        { "escapes", "{{ 'tab\\there' }}|{{ \"quote\\\"s\" }}|{{ 'uni\\u00e9' }}|{{ 'x\\x41' }}" },
        // macros
        { "macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C') }}" },
        { "macro-recursive", "{% macro show(v) %}{% if v is mapping %}{{ '{' }}{% for k, x in v | items %}{{ k }}:{{ show(x) }}{% endfor %}{{ '}' }}{% else %}{{ v }}{% endif %}{% endmacro %}{{ show({'a': {'b': 1}, 'c': 2}) }}" },
        { "range", "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}" },
        { "raise", "{% if xs | length > 2 %}{{ raise_exception('too many: ' + xs | length | string) }}{% endif %}" },
        { "output-types", "{{ none }}|{{ t }}|{{ i }}|{{ f }}|{{ d }}|{{ xs }}|{{ msgs[0] }}" },
        { "type-error", "{{ 'a' - 1 }}" },
        { "none-concat", "{{ 'a' + none }}" },
        { "loop-over-undefined", "{% for x in nope %}{{ x }}{% endfor %}" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_as_the_reference(string name, string template)
    {
        var vars = JsonNode.Parse(Items)!.AsObject();
        Assert.Null(Compare.Difference(node, template, vars, name));
    }

    [Fact]
    public void Strftime_now_gives_the_reference_date()
    {
        // Both read the clock: compare the date only (the reference formats local time, as CptLab does).
        Assert.Null(Compare.Difference(node, "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %B') }}", [], "strftime_now"));
    }
}
