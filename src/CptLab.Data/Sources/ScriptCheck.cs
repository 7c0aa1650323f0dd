using System.Globalization;
using System.Text;

namespace CptLab.Data.Sources;

/// <summary>
/// The language check by script share: of a document's letters, the share in the script its language is
/// written in (Han for Chinese, Latin for English, …). Cheap, needs no model, and catches the usual
/// contamination (an English page in a Chinese crawl, a mojibake file).
/// </summary>
public static class ScriptCheck
{
    static readonly Dictionary<string, Func<int, bool>> _scripts = new(StringComparer.OrdinalIgnoreCase)
    {
        ["zh"] = IsHan,
        ["ja"] = c => IsHan(c) || (c >= 0x3040 && c <= 0x30FF),
        ["ko"] = c => (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || IsHan(c),
        ["en"] = IsLatin, ["de"] = IsLatin, ["fr"] = IsLatin, ["es"] = IsLatin, ["it"] = IsLatin, ["pt"] = IsLatin, ["vi"] = IsLatin,
        ["ru"] = c => c >= 0x0400 && c <= 0x04FF,
        ["ar"] = c => c >= 0x0600 && c <= 0x06FF,
        ["el"] = c => c >= 0x0370 && c <= 0x03FF,
        ["hi"] = c => c >= 0x0900 && c <= 0x097F,
    };

    public static bool Knows(string language) => _scripts.ContainsKey(language);

    /// <summary>Share of the letters of <paramref name="text"/> in <paramref name="language"/>'s script; 1 when it has no letters.</summary>
    public static double Share(string text, string language)
    {
        if (!_scripts.TryGetValue(language, out var inScript)) return 1.0;
        int letters = 0, hits = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            var cat = Rune.GetUnicodeCategory(rune);
            if (cat is not (UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter)) continue;
            letters++;
            if (inScript(rune.Value)) hits++;
        }
        return letters == 0 ? 1.0 : (double)hits / letters;
    }

    static bool IsHan(int c) =>
        (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x3134F) || (c >= 0xF900 && c <= 0xFAFF);

    static bool IsLatin(int c) => (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x1E00 && c <= 0x1EFF);
}
