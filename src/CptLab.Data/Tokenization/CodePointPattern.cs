using System.Globalization;
using System.Text;

namespace CptLab.Data.Tokenization;

/// <summary>
/// Rewrites a pre-tokenization pattern written for a regex engine that matches code points (Rust's and
/// Oniguruma's in Hugging Face tokenizers, Python's <c>regex</c> in tiktoken) into a .NET pattern that matches the
/// same text, although .NET matches UTF-16 code units.
/// <para>
/// The trap: in .NET a character outside the BMP (𠀋 U+2000B, 𝐀 U+1D400, 𐌰 U+10330, 😀 U+1F600) is two code
/// units, each in category Cs, so <c>\p{L}</c> misses a CJK Extension B letter and <c>[^\s\p{L}\p{N}]?</c> takes
/// half of an emoji. Every <c>\p{…}</c> / <c>\P{…}</c> atom and every character class that holds one or is
/// negated becomes a group with three branches:
/// the original class over BMP characters (surrogates removed), the surrogate pairs of the supplementary code
/// points the class holds (computed from .NET's Unicode tables, grouped by high surrogate), and — when the class
/// holds U+FFFD — a lone surrogate, which a .NET string can carry but UTF-8 cannot, so that both libraries'
/// UTF-8 encoders turn it into U+FFFD and the regex must treat it as that character.
/// </para>
/// Only the constructs the Hub's byte-level BPE patterns use are understood inside classes: literal characters,
/// ranges, the escapes <c>\r \n \t \f \v \uXXXX \xXX</c>, <c>\s \S \d \D \w \W</c> and <c>\p{…} \P{…}</c>;
/// anything else in a class is refused, naming the pattern and position, rather than approximated.
/// </summary>
public static class CodePointPattern
{
    const string LoneSurrogate = @"[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]";

    /// <summary>The .NET form of <paramref name="pattern"/>; see the type's remarks.</summary>
    public static string Translate(string pattern)
    {
        var sb = new StringBuilder(pattern.Length * 2);
        var i = 0;
        while (i < pattern.Length)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length && (pattern[i + 1] == 'p' || pattern[i + 1] == 'P'))
            {
                var start = i;
                var item = ReadProperty(pattern, ref i);
                sb.Append(Group(pattern.Substring(start, i - start), negated: false, cp => item.Contains(cp), Loops(pattern, i)));
            }
            else if (c == '\\' && i + 1 < pattern.Length)
            {
                sb.Append(pattern, i, 2);
                i += 2;
            }
            else if (c == '[')
            {
                var start = i;
                var (negated, items) = ReadClass(pattern, ref i);
                var text = pattern.Substring(start, i - start);
                if (!negated && !items.Any(x => x.IsProperty)) sb.Append(text);   // a BMP-only class matches as written
                else sb.Append(Group(negated ? "[" + text[2..] : text, negated, cp => items.Any(x => x.Contains(cp)) != negated, Loops(pattern, i)));
            }
            else
            {
                sb.Append(c);
                i++;
            }
        }
        return sb.ToString();
    }

    // A '+' or '*' follows: the group's BMP branch may then take a whole run at once, which .NET matches as a
    // vectorized set loop; (?:[x]+|pair)+ matches the same strings as (?:[x]|pair)+, longest first.
    static bool Loops(string pattern, int after) => after < pattern.Length && pattern[after] is '+' or '*';

    /// <param name="positiveClass">The class, written without negation.</param>
    /// <param name="loop">Whether a '+' or '*' follows the group.</param>
    static string Group(string positiveClass, bool negated, Func<int, bool> contains, bool loop)
    {
        var body = positiveClass.StartsWith('[') ? positiveClass[1..^1] : positiveClass;
        // Surrogate code units never stand for themselves: pairs and lone ones have their own branches.
        var bmp = negated ? $@"[^{body}\uD800-\uDFFF]" : contains(0xD800) ? $@"[{body}-[\uD800-\uDFFF]]" : $"[{body}]";
        var sb = new StringBuilder("(?:").Append(bmp);
        if (loop) sb.Append('+');
        var pairs = SupplementaryAlternation(contains);
        if (pairs.Length > 0) sb.Append(@"|(?=[\uD800-\uDBFF])(?:").Append(pairs).Append(')');
        if (contains(0xFFFD)) sb.Append('|').Append(LoneSurrogate);
        return sb.Append(')').ToString();
    }

    static readonly Dictionary<string, string> _alternations = [];

    /// <summary>
    /// The supplementary code points where <paramref name="contains"/> holds, as surrogate pairs:
    /// <c>\uD835[\uDC00-\uDC54\uDC56-…]|[\uD840-\uD868][\uDC00-\uDFFF]|…</c>, high surrogates with equal low sets merged.
    /// </summary>
    static string SupplementaryAlternation(Func<int, bool> contains)
    {
        var lows = new string[1024];
        var sb = new StringBuilder();
        for (var high = 0; high < 1024; high++)
        {
            sb.Clear();
            var first = 0x10000 + (high << 10);
            for (var low = 0; low < 1024; low++)
            {
                if (!contains(first + low)) continue;
                var end = low;
                while (end + 1 < 1024 && contains(first + end + 1)) end++;
                sb.Append(Unit(0xDC00 + low));
                if (end > low) sb.Append('-').Append(Unit(0xDC00 + end));
                low = end;
            }
            lows[high] = sb.ToString();
        }
        var key = string.Join('|', lows);
        lock (_alternations)
            if (_alternations.TryGetValue(key, out var cached)) return cached;

        var alt = new StringBuilder();
        for (var high = 0; high < 1024; high++)
        {
            if (lows[high].Length == 0) continue;
            var last = high;
            while (last + 1 < 1024 && lows[last + 1] == lows[high]) last++;
            if (alt.Length > 0) alt.Append('|');
            alt.Append(last == high ? Unit(0xD800 + high) : $"[{Unit(0xD800 + high)}-{Unit(0xD800 + last)}]");
            alt.Append(lows[high] == @"\uDC00-\uDFFF" ? @"[\uDC00-\uDFFF]" : $"[{lows[high]}]");
            high = last;
        }
        var result = alt.ToString();
        lock (_alternations) _alternations[key] = result;
        return result;
    }

    static string Unit(int u) => $@"\u{u:X4}";

    // ---- reading the source pattern -----------------------------------------------------------------

    /// <summary>One member of a character class: a range of BMP characters, or a Unicode property / class escape.</summary>
    readonly record struct ClassItem(int Lo, int Hi, Func<int, bool>? Predicate)
    {
        public bool IsProperty => Predicate is not null;
        public bool Contains(int cp) => Predicate?.Invoke(cp) ?? (cp >= Lo && cp <= Hi);
    }

    static (bool Negated, List<ClassItem> Items) ReadClass(string p, ref int i)
    {
        var open = i++;
        var negated = i < p.Length && p[i] == '^';
        if (negated) i++;
        var items = new List<ClassItem>();
        var first = true;
        while (i < p.Length && (p[i] != ']' || first))
        {
            first = false;
            var item = ReadClassAtom(p, ref i, open);
            if (item.Predicate is null && i + 1 < p.Length && p[i] == '-' && p[i + 1] != ']')
            {
                i++;
                var hi = ReadClassAtom(p, ref i, open);
                if (hi.Predicate is not null) throw Unsupported(p, i, "a range ending in a class escape");
                item = new ClassItem(item.Lo, hi.Hi, null);
            }
            items.Add(item);
        }
        if (i >= p.Length) throw Unsupported(p, open, "an unclosed character class");
        i++;   // ']'
        return (negated, items);
    }

    static ClassItem ReadClassAtom(string p, ref int i, int open)
    {
        var c = p[i];
        if (c == '[') throw Unsupported(p, i, "a nested class or class subtraction");
        if (char.IsSurrogate(c)) throw Unsupported(p, i, "a supplementary character written inside a class");
        if (c != '\\') { i++; return new ClassItem(c, c, null); }
        if (i + 1 >= p.Length) throw Unsupported(p, i, "a trailing backslash");
        var e = p[i + 1];
        switch (e)
        {
            case 'p' or 'P': return ReadProperty(p, ref i);
            case 's': i += 2; return new ClassItem(0, 0, IsSpace);
            case 'S': i += 2; return new ClassItem(0, 0, cp => !IsSpace(cp));
            case 'd': i += 2; return new ClassItem(0, 0, cp => Category(cp) == UnicodeCategory.DecimalDigitNumber);
            case 'D': i += 2; return new ClassItem(0, 0, cp => Category(cp) != UnicodeCategory.DecimalDigitNumber);
            case 'w': i += 2; return new ClassItem(0, 0, IsWord);
            case 'W': i += 2; return new ClassItem(0, 0, cp => !IsWord(cp));
            case 'r': i += 2; return Char('\r');
            case 'n': i += 2; return Char('\n');
            case 't': i += 2; return Char('\t');
            case 'f': i += 2; return Char('\f');
            case 'v': i += 2; return Char('\v');
            case 'u' when i + 6 <= p.Length && int.TryParse(p.AsSpan(i + 2, 4), NumberStyles.HexNumber, null, out var u):
                i += 6; return Char(u);
            case 'x' when i + 4 <= p.Length && int.TryParse(p.AsSpan(i + 2, 2), NumberStyles.HexNumber, null, out var x):
                i += 4; return Char(x);
            default:
                if (char.IsLetterOrDigit(e)) throw Unsupported(p, i, $"the class escape \\{e}");
                i += 2; return Char(e);   // an escaped punctuation character stands for itself
        }
        static ClassItem Char(int c) => new(c, c, null);
    }

    /// <summary>Reads <c>\p{Name}</c>, <c>\P{Name}</c> or <c>\pL</c> at <paramref name="i"/>.</summary>
    static ClassItem ReadProperty(string p, ref int i)
    {
        var start = i;
        var negated = p[i + 1] == 'P';
        string name;
        if (i + 2 < p.Length && p[i + 2] == '{')
        {
            var close = p.IndexOf('}', i + 3);
            if (close < 0) throw Unsupported(p, start, "an unclosed \\p{");
            name = p[(i + 3)..close];
            i = close + 1;
        }
        else if (i + 2 < p.Length)
        {
            name = p[i + 2].ToString();
            i += 3;
        }
        else throw Unsupported(p, start, "a bare \\p");
        var categories = Categories(name);
        // .NET's other property names are BMP blocks (IsGreek…): they hold no supplementary code point, and Rust's
        // script names (\p{Han}) do not compile in .NET at all, which the Regex constructor reports.
        Func<int, bool> holds = categories is null ? _ => false : cp => categories.Contains(Category(cp));
        return new ClassItem(0, 0, negated ? cp => !holds(cp) : holds);
    }

    static HashSet<UnicodeCategory>? Categories(string name) => _categories.TryGetValue(name, out var cats) ? [.. cats] : null;

    static readonly Dictionary<string, UnicodeCategory[]> _categories = new()
    {
        ["L"] = [UnicodeCategory.UppercaseLetter, UnicodeCategory.LowercaseLetter, UnicodeCategory.TitlecaseLetter, UnicodeCategory.ModifierLetter, UnicodeCategory.OtherLetter],
        ["Lu"] = [UnicodeCategory.UppercaseLetter], ["Ll"] = [UnicodeCategory.LowercaseLetter], ["Lt"] = [UnicodeCategory.TitlecaseLetter],
        ["Lm"] = [UnicodeCategory.ModifierLetter], ["Lo"] = [UnicodeCategory.OtherLetter],
        ["M"] = [UnicodeCategory.NonSpacingMark, UnicodeCategory.SpacingCombiningMark, UnicodeCategory.EnclosingMark],
        ["Mn"] = [UnicodeCategory.NonSpacingMark], ["Mc"] = [UnicodeCategory.SpacingCombiningMark], ["Me"] = [UnicodeCategory.EnclosingMark],
        ["N"] = [UnicodeCategory.DecimalDigitNumber, UnicodeCategory.LetterNumber, UnicodeCategory.OtherNumber],
        ["Nd"] = [UnicodeCategory.DecimalDigitNumber], ["Nl"] = [UnicodeCategory.LetterNumber], ["No"] = [UnicodeCategory.OtherNumber],
        ["P"] = [UnicodeCategory.ConnectorPunctuation, UnicodeCategory.DashPunctuation, UnicodeCategory.OpenPunctuation, UnicodeCategory.ClosePunctuation,
                 UnicodeCategory.InitialQuotePunctuation, UnicodeCategory.FinalQuotePunctuation, UnicodeCategory.OtherPunctuation],
        ["Pc"] = [UnicodeCategory.ConnectorPunctuation], ["Pd"] = [UnicodeCategory.DashPunctuation], ["Ps"] = [UnicodeCategory.OpenPunctuation],
        ["Pe"] = [UnicodeCategory.ClosePunctuation], ["Pi"] = [UnicodeCategory.InitialQuotePunctuation], ["Pf"] = [UnicodeCategory.FinalQuotePunctuation],
        ["Po"] = [UnicodeCategory.OtherPunctuation],
        ["S"] = [UnicodeCategory.MathSymbol, UnicodeCategory.CurrencySymbol, UnicodeCategory.ModifierSymbol, UnicodeCategory.OtherSymbol],
        ["Sm"] = [UnicodeCategory.MathSymbol], ["Sc"] = [UnicodeCategory.CurrencySymbol], ["Sk"] = [UnicodeCategory.ModifierSymbol], ["So"] = [UnicodeCategory.OtherSymbol],
        ["Z"] = [UnicodeCategory.SpaceSeparator, UnicodeCategory.LineSeparator, UnicodeCategory.ParagraphSeparator],
        ["Zs"] = [UnicodeCategory.SpaceSeparator], ["Zl"] = [UnicodeCategory.LineSeparator], ["Zp"] = [UnicodeCategory.ParagraphSeparator],
        ["C"] = [UnicodeCategory.Control, UnicodeCategory.Format, UnicodeCategory.Surrogate, UnicodeCategory.PrivateUse, UnicodeCategory.OtherNotAssigned],
        ["Cc"] = [UnicodeCategory.Control], ["Cf"] = [UnicodeCategory.Format], ["Cs"] = [UnicodeCategory.Surrogate],
        ["Co"] = [UnicodeCategory.PrivateUse], ["Cn"] = [UnicodeCategory.OtherNotAssigned],
    };

    static UnicodeCategory Category(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp);

    // .NET's \s: [\f\n\r\t\v\x85\p{Z}]. All of it is in the BMP.
    static bool IsSpace(int cp) => cp is '\f' or '\n' or '\r' or '\t' or '\v' or 0x85
        || Category(cp) is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;

    // .NET's \w: [\p{L}\p{Mn}\p{Nd}\p{Pc}].
    static bool IsWord(int cp) => Category(cp) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
        or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark or UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.ConnectorPunctuation;

    static FormatException Unsupported(string pattern, int at, string what) =>
        new($"pre-tokenization pattern, position {at}: {what} is not supported by CptLab's UTF-16 adaptation (pattern: {pattern})");
}
