using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using CptLab.Core;

namespace CptLab.Data.Sources.DebianDocs;

/// <summary>
/// The plain text of a man page, rendered by mandoc (<c>mandoc -T utf8</c>, the BSD formatter Debian packages), not
/// by a parser of our own: roff is a macro language (man, mdoc, tbl, eqn, conditionals, string registers) and a
/// page's text is what a formatter makes of it. The page (gzip-compressed or not) is decompressed here and fed on
/// stdin. From mandoc's terminal output we remove the overstrike sequences it uses for bold ("X\bX") and underline
/// ("_\bX"), any ANSI escape (groff's SGR style, in case a page or a future mandoc emits one), the running header and
/// footer lines (the same on every page: "LS(1) 用户命令 LS(1)"), the body's 7-column indent and trailing spaces.
/// The width is 1000 columns, so a paragraph is one line instead of being wrapped at 78, which would cut Chinese
/// sentences with line breaks.
/// </summary>
public static partial class ManPageText
{
    public const int Width = 1000;
    const int BodyIndent = 7; // mandoc's (and groff's) default indent of the text under a section heading

    /// <summary>
    /// Reads a man page file: the source after decompression, or a reason it cannot be used. A page that is only a
    /// <c>.so</c> request (an alias of another page) comes back as <see cref="ManSource.AliasOf"/>.
    /// </summary>
    public static ManSource ReadSource(string path)
    {
        byte[] bytes;
        try
        {
            using var file = File.OpenRead(path);
            using var input = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
            using var ms = new MemoryStream();
            input.CopyTo(ms);
            bytes = ms.ToArray();
            // .NET's GZipStream returns a truncated file's data without an error: check the trailer's size field (ISIZE).
            if (input is GZipStream && (file.Length < 18 || TrailerSize(path) != (uint)bytes.Length))
                return new ManSource(null, null, "cannot read (gzip): truncated or corrupt (the trailer's size does not match the data)");
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return new ManSource(null, null, $"cannot read{(path.EndsWith(".gz", StringComparison.Ordinal) ? " (gzip)" : "")}: {e.Message}");
        }
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException) { return new ManSource(null, null, "not UTF-8 (Debian's man pages are UTF-8 since man-db 2.6; this one is in a legacy encoding)"); }
        var lines = text.Split('\n').Where(l => l.Trim().Length > 0 && !l.StartsWith(".\\\"", StringComparison.Ordinal) && !l.StartsWith("'\\\"", StringComparison.Ordinal)).ToArray();
        if (lines is [var only] && only.StartsWith(".so ", StringComparison.Ordinal)) return new ManSource(null, only[4..].Trim(), null);
        return new ManSource(text, null, null);
    }

    static uint TrailerSize(string path)
    {
        using var f = File.OpenRead(path);
        f.Seek(-4, SeekOrigin.End);
        Span<byte> b = stackalloc byte[4];
        f.ReadExactly(b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>Renders roff source with mandoc; throws <see cref="CptLabException"/> when mandoc cannot be started.</summary>
    public static ManRendering Render(string source, string mandoc = "mandoc")
    {
        var psi = new ProcessStartInfo(mandoc)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8, StandardErrorEncoding = Encoding.UTF8, StandardInputEncoding = new UTF8Encoding(false),
        };
        foreach (var a in new[] { "-T", "utf8", "-O", $"width={Width}", "-man" }) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CptLabException($"cannot run {mandoc} ({e.Message}): man pages are rendered with mandoc; install it (apt-get install mandoc) or run scripts/fetch-debian-corpora.sh");
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardInput.Write(source);
            p.StandardInput.Close();
            p.WaitForExit();
            // Without -W, mandoc exits 0 even after errors in the page; 4 and up are its own failures.
            if (p.ExitCode >= 4) return new ManRendering(null, $"mandoc exited {p.ExitCode}: {FirstLine(stderr.Result)}");
            return new ManRendering(Clean(stdout.Result), null);
        }
    }

    /// <summary>Terminal output → text: overstrike and ANSI removed, header and footer dropped, dedented.</summary>
    public static string Clean(string terminal)
    {
        var plain = Ansi().Replace(Overstrike().Replace(terminal, ""), "");
        var lines = plain.Split('\n').Select(l => l.TrimEnd()).ToList();
        var first = lines.FindIndex(l => l.Length > 0);
        var last = lines.FindLastIndex(l => l.Length > 0);
        if (first < 0) return "";
        // The running header is the first line and the footer the last; a page of one line has neither.
        var body = last > first ? lines.GetRange(first + 1, last - first - 1) : [lines[first]];
        var sb = new StringBuilder();
        var blank = 0;
        foreach (var line in body)
        {
            if (line.Length == 0) { blank++; continue; }
            if (sb.Length > 0) sb.Append(blank > 0 ? "\n\n" : "\n");
            blank = 0;
            var indent = line.Length - line.TrimStart(' ').Length;
            sb.Append(line, Math.Min(indent, BodyIndent), line.Length - Math.Min(indent, BodyIndent));
        }
        return sb.ToString();
    }

    static string FirstLine(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "(no message)";

    // A character (one code point, a surrogate pair included) followed by a backspace is overstruck by the next one.
    [GeneratedRegex(@"(?:[\uD800-\uDBFF][\uDC00-\uDFFF]|[^\n])\x08")]
    private static partial Regex Overstrike();

    [GeneratedRegex(@"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]")]
    private static partial Regex Ansi();
}

/// <summary>A man page's roff source, or the page it is an alias of (<c>.so</c>), or why it could not be read.</summary>
public sealed record ManSource(string? Source, string? AliasOf, string? Error);

/// <summary>The rendered text, or why rendering failed.</summary>
public sealed record ManRendering(string? Text, string? Error);
