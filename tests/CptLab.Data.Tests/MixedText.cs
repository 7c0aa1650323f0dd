using System.IO.Compression;
using System.Text;
using System.Text.Json;
using CptLab.TestKit;

namespace CptLab.Data.Tests;

/// <summary>One document of the mixed tokenizer corpus and where it came from (for failure messages and counts).</summary>
public sealed record TextSample(string Kind, string Source, string Text);

/// <summary>
/// Several megabytes of real and adversarial text for comparing tokenizers: English prose (Brown), modern Chinese
/// (CMMLU questions, EmoBench zh), classical Chinese (Tang poems), code (HumanEval), math word problems (GSM8K),
/// and generated text that targets the places where a UTF-16 regex and a code-point regex part ways: emoji and ZWJ
/// sequences, letters and digits outside the BMP (CJK Extension B–G, Gothic, Deseret, mathematical alphanumerics,
/// Adlam…), whitespace runs, control characters, NUL, U+FFFD, BOM, lone surrogates, and literal special-token text.
/// Real text is taken raw, as the files hold it (no NFC), so combining sequences survive.
/// </summary>
public static class MixedText
{
    /// <summary>Documents in a fixed order; roughly <paramref name="scale"/> × 6 MB of UTF-8.</summary>
    public static IReadOnlyList<TextSample> Build(double scale = 1.0)
    {
        var docs = new List<TextSample>();
        var corpora = Path.Combine(RepoPaths.Cache, "corpora");
        var data = RepoPaths.SharedData;
        long Mb(double mb) => (long)(mb * scale * 1e6);

        Take(docs, "english", JsonLines(Path.Combine(corpora, "brown", "brown.jsonl"), "text"), Mb(1.6));
        Take(docs, "classical-chinese", Directory.GetFiles(Path.Combine(corpora, "chinese-poetry", "dist", "quantangshi"), "poet.tang.*.json")
            .Order(StringComparer.Ordinal).SelectMany(f => JsonArrayTexts(f, "paragraphs")), Mb(1.0));
        Take(docs, "modern-chinese", Directory.GetFiles(Path.Combine(data, "cmmlu"), "*.csv", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).SelectMany(f => LineGroups(f, 25)), Mb(1.2));
        Take(docs, "emobench", new[] { "EU.jsonl", "EA.jsonl" }.SelectMany(f => JsonLinesAllStrings(Path.Combine(data, "emobench", f))), Mb(0.6));
        Take(docs, "code", HumanEval(Path.Combine(data, "humaneval", "HumanEval.jsonl.gz")), Mb(0.3));
        Take(docs, "math", new[] { "test.jsonl", "train.jsonl" }.SelectMany(f => JsonLinesAllStrings(Path.Combine(data, "gsm8k", f))), Mb(0.8));
        foreach (var (kind, text) in Generated(scale)) docs.Add(new TextSample(kind, "generated", text));
        return docs;
    }

    static void Take(List<TextSample> docs, string kind, IEnumerable<(string Source, string Text)> source, long bytes)
    {
        long taken = 0;
        foreach (var (src, text) in source)
        {
            if (taken >= bytes) break;
            if (text.Length == 0) continue;
            docs.Add(new TextSample(kind, src, text));
            taken += Encoding.UTF8.GetByteCount(text);
        }
        if (taken == 0) throw new InvalidOperationException($"no {kind} text found");
    }

    static IEnumerable<(string, string)> JsonLines(string path, string field)
    {
        var n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            yield return ($"{Path.GetFileName(path)}:{n}", doc.RootElement.GetProperty(field).GetString()!);
        }
    }

    /// <summary>Every string value of each JSON line, one per line: questions with their answers, scenarios with their choices.</summary>
    static IEnumerable<(string, string)> JsonLinesAllStrings(string path)
    {
        var n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var sb = new StringBuilder();
            AppendStrings(doc.RootElement, sb);
            yield return ($"{Path.GetFileName(path)}:{n}", sb.ToString());
        }
    }

    static void AppendStrings(JsonElement e, StringBuilder sb)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String: sb.Append(e.GetString()).Append('\n'); break;
            case JsonValueKind.Object: foreach (var p in e.EnumerateObject()) AppendStrings(p.Value, sb); break;
            case JsonValueKind.Array: foreach (var x in e.EnumerateArray()) AppendStrings(x, sb); break;
        }
    }

    static IEnumerable<(string, string)> JsonArrayTexts(string path, string field)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var i = 0;
        foreach (var poem in doc.RootElement.EnumerateArray())
        {
            i++;
            var lines = poem.GetProperty(field).EnumerateArray().Select(x => x.GetString());
            var title = poem.TryGetProperty("title", out var t) ? t.GetString() + "\n" : "";
            yield return ($"{Path.GetFileName(path)}#{i}", title + string.Join('\n', lines));
        }
    }

    /// <summary>The raw lines of a CSV file in groups, line ends included (CMMLU's files end lines with \r\n or \n).</summary>
    static IEnumerable<(string, string)> LineGroups(string path, int linesPerGroup)
    {
        var text = File.ReadAllText(path);
        var start = 0;
        var group = 0;
        while (start < text.Length)
        {
            var end = start;
            for (var k = 0; k < linesPerGroup && end < text.Length; k++)
            {
                var nl = text.IndexOf('\n', end);
                end = nl < 0 ? text.Length : nl + 1;
            }
            yield return ($"{Path.GetRelativePath(RepoPaths.SharedData, path)}#{group++}", text[start..end]);
            start = end;
        }
    }

    static IEnumerable<(string, string)> HumanEval(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new StreamReader(gz, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            yield return (r.GetProperty("task_id").GetString()!, r.GetProperty("prompt").GetString() + r.GetProperty("canonical_solution").GetString() + r.GetProperty("test").GetString());
        }
    }

    // ---- generated text -------------------------------------------------------------------------------

    /// <summary>Hand-written hard cases, then seeded random strings drawn from pools of tricky characters.</summary>
    static IEnumerable<(string Kind, string Text)> Generated(double scale)
    {
        foreach (var t in HandWritten) yield return ("hand-written", t);
        var rng = new Random(20260411);
        var pools = Pools;
        var count = (int)(3000 * scale);
        for (var i = 0; i < count; i++)
        {
            // Each string mixes a few pools, so supplementary letters meet punctuation, digits, spaces and emoji.
            var mix = Enumerable.Range(0, 1 + rng.Next(4)).Select(_ => pools[rng.Next(pools.Length)]).ToArray();
            var sb = new StringBuilder();
            var length = 1 + rng.Next(rng.Next(8) == 0 ? 600 : 80);
            for (var k = 0; k < length; k++)
            {
                var (_, items) = mix[rng.Next(mix.Length)];
                sb.Append(items[rng.Next(items.Length)]);
            }
            yield return ("random:" + string.Join('+', mix.Select(m => m.Name)), sb.ToString());
        }
    }

    static string Cp(int codePoint) => char.ConvertFromUtf32(codePoint);
    static string[] Range(int first, int last, int step = 1) => Enumerable.Range(0, (last - first) / step + 1).Select(k => Cp(first + k * step)).ToArray();

    /// <summary>Named pools of text atoms (characters or short sequences).</summary>
    static readonly (string Name, string[] Items)[] Pools =
    [
        ("ascii-letters", Range('a', 'z').Concat(Range('A', 'Z')).ToArray()),
        ("digits", [.. Range('0', '9'), "١", "٢", "३", "１", "２", "²", "³", "½", "Ⅻ", "〇"]),
        ("spaces", [" ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u3000", "\u2028", "\u2029", "\u0085", "\v", "\f", "\u2009", "\u200A", "\u1680"]),
        ("punctuation", [".", ",", "!", "?", "'", "\"", "'s", "'S", "'ll", "'LL", "'Re", "'ve", "'m", "'d", "'t", "’s", "，", "。", "！", "、", "「", "」", "(", ")", "{", "}", "#", "$", "%", "&", "*", "-", "_", "=", "+", "/", "\\", "|", "<", ">", "@", "^", "`", "~", "…", "—", "«", "»"]),
        ("cjk", [.. Range(0x4E00, 0x4E80), "，", "。", "龘", "靐", "齉"]),
        // CJK Unified Ideographs Extensions B, C, D, E, F, G (Unicode ≤ 13, so both libraries' tables know them).
        ("cjk-ext-b-g", [.. Range(0x20000, 0x2A6DF, 911), .. Range(0x2A700, 0x2B739, 397), .. Range(0x2B740, 0x2B81D, 23), .. Range(0x2B820, 0x2CEA1, 613),
                         .. Range(0x2CEB0, 0x2EBE0, 331), .. Range(0x30000, 0x3134A, 199), "𠀋", "𪚥", "𠮷", "𡈽", "𤆬", "𫝀"]),
        ("gothic-deseret-italic", [.. Range(0x10330, 0x1034A), .. Range(0x10400, 0x1044F), .. Range(0x10300, 0x10323), .. Range(0x10341, 0x10341), .. Range(0x104B0, 0x104D3)]),
        ("math-alphanumerics", [.. Range(0x1D400, 0x1D454), .. Range(0x1D456, 0x1D49C, 3), .. Range(0x1D7CE, 0x1D7FF), .. Range(0x1D6A8, 0x1D6C0)]),
        ("other-supplementary-letters", [.. Range(0x1E900, 0x1E943), .. Range(0x1E950, 0x1E959), .. Range(0x12000, 0x12399, 37), .. Range(0x13000, 0x1342E, 41),
                                         .. Range(0x10000, 0x1005D), .. Range(0x1B000, 0x1B11E, 7), .. Range(0x16A40, 0x16A5E), .. Range(0x10107, 0x10133, 5), .. Range(0x1D360, 0x1D378)]),
        ("emoji", ["😀", "😂", "🤖", "🎉", "✨", "❤️", "👍🏽", "👩‍👩‍👧‍👦", "👨‍💻", "🏳️‍🌈", "🇨🇳", "🇺🇸", "1️⃣", "#️⃣", "🧑🏿‍🦰", "🫠", "☃", "⚡", "\u200D", "\uFE0F", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"]),
        ("marks", ["e\u0301", "n\u0303", "\u0915\u093F", "\u0E01\u0E34", "\u05E9\u05C1\u05B8", "\u1100\u1161\u11A8", "\u0627\u064E", "a\u20DD", "\u0301", "\u0489", "\U0001D165", "\U000E0100"]),
        ("controls", ["\u0000", "\u0001", "\u0007", "\u001B", "\u001F", "\u007F", "\u0080", "\u009F", "\uFFFD", "\uFEFF", "\u200B", "\u200C", "\u200E", "\u2060", "\uE000", "\uF8FF", "\uFFFE", "\uFFFF", "\U000F0000", "\U0010FFFD", "\u00AD"]),
        ("special-text", ["<|eot_id|>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_7|>", "<|eom_id|>", "<|python_tag|>", "<|", "|>", "<|eot_id", "eot_id|>"]),
        ("scripts", ["Ελληνικά", "русский", "العربية", "हिन्दी", "한국어", "日本語のテキスト", "ภาษาไทย", "עברית", "ქართული", "Ծ", "ǅ", "ß", "İ", "ſ", "K", "Å", "ﬁ"]),
    ];

    static readonly string[] HandWritten =
    [
        "This is a test sentence.",
        "hello world", " hello", "hello ", "  hello  ", "\thello\t", "\n", "\n\n\n", "\r\n\r\n", " \n ", "a\r\n\r\n\r\nb",
        "trailing spaces   ", "   leading", "many" + new string(' ', 40) + "spaces", new string(' ', 257), new string('\t', 33) + "x", "x" + new string('\n', 20),
        "tabs\tand\r\nnewlines\n\n\n   trailing spaces   \t\r\n",
        "It's 2024; don't panic! I'LL go, you'RE late, they've, I'm, he'd. 'S 'T 'Ve",
        "'ſ 'ſt 'K", "x'ſ", "ǅemal 'Ǆ", "ＡＢＣ'ｓ",
        "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
        "古詩𠀋，且復尋諸孫。𪚥𠮷", "𠀋，", "，𠀋", "a𠀋b", "𠀋123", "123𠀋", " 𠀋", "𠀋 𠀋", "\"𠀋\"", "𠀋😀", "😀𠀋",
        "𐌰𐌱𐌲 𐌳𐌴, 𐐀𐐨𐐩 Deseret! 𝐀𝐁𝐂 𝑎𝑏𝑐 𝟎𝟏𝟐𝟑𝟒𝟓 𞤀𞤢 𞥑𞥒",
        "x𝟎𝟏𝟐𝟑 𝟗𝟗𝟗𝟗", "𐄇𐄈𐄉 counting 𝍠𝍡", "'𐐀", "'𝐬",
        "emoji 👩‍👩‍👧‍👦 🇨🇳 😀😀 ✨", "😀abc", "abc😀", "😀123", "123😀", "👍🏽ok", " 😀 ", "😀\n", "\n😀", "😀，", "❤️love", "1️⃣2️⃣", "🏳️‍🌈flag",
        "odd: \u0000\u0007 zero-width\u200b joiner\u200d e\u0301 (combining) ﬁ ligature",
        "\u0000", "\u0000\u0000\u0000", "a\u0000b", "\u0000 x", "NUL\u0000in\u0000text",
        "\uFEFFbom at start", "bom\uFEFFin middle", "\uFFFD replacement \uFFFD\uFFFD", "\uFFFDabc", "abc\uFFFD",
        "\u0001\u0002\u0003\u001B[31mred\u001B[0m", "\u007F\u0080\u0085\u009F", "\u2028line\u2029para",
        "<|eot_id|> literal special text in a document",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
        "text<|end_of_text|>text", "<|reserved_special_token_250|>", "<|eot_id|<|eot_id|>|>", "< |eot_id| >", "<|EOT_ID|>",
        "math ∑_{i=1}^n x_i² ≤ ∞ and code: for (int i = 0; i < n; i++) { x += y[i]; }",
        "1234567890123 1,234,567.89 3.14159 -42 1e-9 0x1F ١٢٣٤٥ १२३ １２３",
        "Ελληνικά, русский, العربية, हिन्दी, 한국어, 日本語のテキスト",
        "def f(x):\n    return x ** 2\n\n\n\tif x:\r\n\t\tpass  \n",
    ];

    /// <summary>Strings holding unpaired UTF-16 surrogates: a .NET string can, UTF-8 cannot, so both sides see U+FFFD.</summary>
    public static IReadOnlyList<string> LoneSurrogates { get; } =
    [
        "\uD800", "\uDC00", "a\uD83Db", "x\uDE00y", "\uD840，", "，\uDC0B", "abc\uD800", "\uDFFF\uD800", "\uD83D\uD83D\uDE00", "😀\uDE00", "𠀋\uD840", " \uD800 ", "'\uD800",
    ];
}
