using System.Text.RegularExpressions;
using CptLab.Core;

namespace CptLab.Data.Chat;

/// <summary>
/// (English, Chinese) pairs from gettext catalogs, cleaned. Each entry is kept or dropped for the first reason that
/// applies, in this order: untranslated (empty, or equal to the msgid), no_words (nothing but printf directives,
/// digits and punctuation), accelerator (a mnemonic such as <c>_File</c>, <c>&amp;File</c> or <c>(_F)</c>: UI labels
/// whose marks would be learnt), too_long, not_chinese (no Han character in the translation), placeholder_mismatch
/// (the printf directives differ, ignoring <c>%1$</c> reordering), duplicate (an English string already kept).
/// Plural entries give the singular msgid and the first translation; fuzzy entries are never in a .mo. Both sides are
/// trimmed of surrounding whitespace (the trailing "\n" of command-line messages) and otherwise left as they are, so
/// printf directives stay intact. Catalogs are read in file-name order, entries in catalog order.
/// </summary>
static partial class TranslationPairs
{
    public sealed record Pair(string English, string Chinese, string Catalog);
    public sealed record Catalog(string File, long Entries, long Kept, string? Error);
    public sealed record Result(List<Pair> Pairs, List<Catalog> Catalogs, SortedDictionary<string, long> Dropped);

    public static Result Collect(string localeDir, int maxChars, IProgress<(int Done, int Total)>? progress = null)
    {
        if (!Directory.Exists(localeDir)) throw new CptLabException($"--locale-dir {localeDir}: no such folder (expected gettext catalogs, e.g. /usr/share/locale/zh_CN/LC_MESSAGES)");
        var files = Directory.GetFiles(localeDir, "*.mo").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new CptLabException($"--locale-dir {localeDir}: no .mo catalogs there");
        var pairs = new List<Pair>();
        var catalogs = new List<Catalog>();
        var dropped = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var f = 0; f < files.Length; f++)
        {
            MoCatalog mo;
            try { mo = MoCatalog.Read(files[f]); }
            catch (CptLabException e) { catalogs.Add(new Catalog(Path.GetFileName(files[f]), 0, 0, e.Message)); Drop("unreadable_catalog"); continue; }
            var kept = 0;
            foreach (var entry in mo.Entries)
            {
                var reason = Judge(entry.Id.Trim(), entry.Translation.Trim(), maxChars, seen);
                if (reason is not null) { Drop(reason); continue; }
                pairs.Add(new Pair(entry.Id.Trim(), entry.Translation.Trim(), Path.GetFileName(files[f])));
                kept++;
            }
            catalogs.Add(new Catalog(Path.GetFileName(files[f]), mo.Entries.Count, kept, null));
            progress?.Report((f + 1, files.Length));
        }
        return new Result(pairs, catalogs, dropped);

        void Drop(string reason) => dropped[reason] = dropped.GetValueOrDefault(reason) + 1;
    }

    static string? Judge(string en, string zh, int maxChars, HashSet<string> seen)
    {
        if (zh.Length == 0 || zh == en) return "untranslated";
        if (!Printf().Replace(en, "").Any(char.IsLetter)) return "no_words";
        if (Accelerator().IsMatch(en) || Accelerator().IsMatch(zh)) return "accelerator";
        if (en.Length > maxChars || zh.Length > maxChars) return "too_long";
        if (!zh.Any(c => c is >= '\u4e00' and <= '\u9fff' or >= '\u3400' and <= '\u4dbf')) return "not_chinese";
        if (!Directives(en).SequenceEqual(Directives(zh))) return "placeholder_mismatch";
        if (!seen.Add(en)) return "duplicate";
        return null;
    }

    /// <summary>The printf directives of a string, positions removed, sorted: translations may reorder them with %1$s.</summary>
    static IEnumerable<string> Directives(string s) =>
        Printf().Matches(s).Select(m => Position().Replace(m.Value, "%")).Where(d => d != "%%").Order(StringComparer.Ordinal);

    // C printf (glibc's flags, ' and I; length modifiers; %m) and gettext's system-dependent %<PRIu64> form.
    [GeneratedRegex(@"%(?:\d+\$)?[-+ 0#'I]*(?:\d+|\*(?:\d+\$)?)?(?:\.(?:\d+|\*(?:\d+\$)?))?(?:hh|ll|[hlLqjzt])?[diouxXeEfFgGaAcspnm%]|%(?:\d+\$)?[-+ 0#']*<\w+>")]
    private static partial Regex Printf();

    [GeneratedRegex(@"^%\d+\$")]
    private static partial Regex Position();

    // GTK's _F (not inside identifiers such as LC_ALL) and Qt/KDE's &F (not HTML entities such as &amp;).
    [GeneratedRegex(@"(?<![\p{L}\p{N}_])_[\p{L}\p{N}]|&(?![A-Za-z]+;|#\d+;)[\p{L}\p{N}]")]
    private static partial Regex Accelerator();
}
