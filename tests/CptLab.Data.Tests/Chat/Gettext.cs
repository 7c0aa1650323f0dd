using System.Diagnostics;
using System.Text;

namespace CptLab.Data.Tests.Chat;

/// <summary>
/// GNU gettext's own tools as the independent reference: msgfmt compiles the catalogs the tests write, msgunfmt
/// decompiles .mo files into .po text, which <see cref="PoFile"/> parses. scripts/ensure-gettext.sh installs them.
/// </summary>
static class Gettext
{
    public static string Run(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, StandardOutputEncoding = Encoding.UTF8 };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception) { throw new InvalidOperationException($"{tool} is not installed: run scripts/ensure-gettext.sh"); }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}");
        return stdout.Result;
    }

    public static string Msgfmt(string po, string mo, params string[] extra)
    {
        Run("msgfmt", [.. extra, "-o", mo, po]);
        return mo;
    }

    public static List<PoEntry> Msgunfmt(string mo) => PoFile.Parse(Run("msgunfmt", "--no-wrap", mo));
}

/// <summary>One .po entry as msgunfmt prints it; translations in plural-form order.</summary>
sealed record PoEntry(string? Context, string Id, string? IdPlural, IReadOnlyList<string> Translations)
{
    public string Key => $"{Context}\u0004{Id}\0{IdPlural}\0{string.Join("\0", Translations)}";
}

/// <summary>A .po parser just large enough for msgunfmt's output (no wrapping, no obsolete entries).</summary>
static class PoFile
{
    public static List<PoEntry> Parse(string text)
    {
        var entries = new List<PoEntry>();
        string? ctx = null, id = null, plural = null;
        var forms = new SortedDictionary<int, string>();
        Action<string>? append = null;
        foreach (var raw in text.Split('\n').Append(""))
        {
            var line = raw.Trim();
            if (line.StartsWith('#')) continue;
            if (line.Length == 0) { Flush(); continue; }
            if (line.StartsWith('"')) { append!(Unquote(line)); continue; }
            var space = line.IndexOf(' ');
            var keyword = line[..space];
            var value = Unquote(line[(space + 1)..]);
            if (keyword == "msgctxt") { Flush(); ctx = value; append = s => ctx += s; }
            else if (keyword == "msgid") { if (ctx is null) Flush(); id = value; append = s => id += s; }
            else if (keyword == "msgid_plural") { plural = value; append = s => plural += s; }
            else if (keyword == "msgstr") { forms[0] = value; append = s => forms[0] += s; }
            else if (keyword.StartsWith("msgstr[")) { var n = int.Parse(keyword[7..^1]); forms[n] = value; append = s => forms[n] += s; }
            else throw new FormatException($"unexpected .po line: {raw}");
        }
        return entries;

        void Flush()
        {
            if (id is not null) entries.Add(new PoEntry(ctx, id, plural, forms.Values.ToList()));
            ctx = id = plural = null;
            forms = [];
        }
    }

    static string Unquote(string quoted)
    {
        if (quoted.Length < 2 || quoted[0] != '"' || quoted[^1] != '"') throw new FormatException($"not a quoted .po string: {quoted}");
        var s = quoted[1..^1];
        var sb = new StringBuilder();
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\') { sb.Append(s[i]); continue; }
            var c = s[++i];
            switch (c)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case >= '0' and <= '7':
                    var end = i;
                    while (end < s.Length && end < i + 3 && s[end] is >= '0' and <= '7') end++;
                    sb.Append((char)Convert.ToInt32(s[i..end], 8));
                    i = end - 1;
                    break;
                default: sb.Append(c); break; // \" \\ and any other escaped character stand for themselves
            }
        }
        return sb.ToString();
    }
}
