using System.Text;

namespace CptLab.Data.Sources.DebianDocs;

/// <summary>
/// How Chinese a text is: Han characters ÷ (Han characters + Latin words). A share of letters (ScriptCheck) counts
/// "--no-dereference" as 15 letters against one Han character per syllable, so a fully translated man page full of
/// option names scores under 30% (whoami.1: 22%); counting a Latin word as one unit puts translated pages at 0.55 and
/// more and untranslated ones (perlfunc.7: 0.03, keysyms.3tk: 0.05) far below. Measured on manpages-zh 1.6.4.0:
/// docs/data.md.
/// </summary>
public static class CjkShare
{
    public static double Of(string text)
    {
        long han = 0, words = 0;
        var inWord = false;
        foreach (var rune in text.EnumerateRunes())
        {
            var v = rune.Value;
            var latin = v is >= 'A' and <= 'Z' or >= 'a' and <= 'z' || v is >= 0xC0 and <= 0x24F && Rune.IsLetter(rune);
            if (latin && !inWord) words++;
            inWord = latin;
            if (v is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0xF900 and <= 0xFAFF or >= 0x20000 and <= 0x323AF) han++;
        }
        return han + words == 0 ? 0 : (double)han / (han + words);
    }
}
