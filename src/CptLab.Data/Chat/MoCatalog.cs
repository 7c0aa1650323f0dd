using System.Buffers.Binary;
using System.Text;
using CptLab.Core;

namespace CptLab.Data.Chat;

/// <summary>
/// One message of a gettext catalog. <see cref="Context"/> is msgctxt (null when there is none); a plural entry has
/// <see cref="IdPlural"/> and one translation per plural form, a singular one exactly one translation.
/// </summary>
public sealed record MoEntry(string? Context, string Id, string? IdPlural, IReadOnlyList<string> Translations)
{
    /// <summary>The singular translation (the first plural form).</summary>
    public string Translation => Translations[0];
}

/// <summary>A GNU gettext binary catalog: its header (the translation of the empty msgid), charset and messages.</summary>
public sealed record MoCatalog(string File, string Header, string Charset, IReadOnlyList<MoEntry> Entries)
{
    /// <summary>
    /// Reads a <c>.mo</c> file (GNU gettext's format, either byte order, revisions 0 and 1 with their system-dependent
    /// strings). Strings are decoded with the header's charset; one .NET cannot decode is refused, as is a damaged file.
    /// </summary>
    public static MoCatalog Read(string path)
    {
        byte[] bytes;
        try { bytes = System.IO.File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CptLabException($"{path}: cannot read the catalog: {e.Message}"); }
        return MoParser.Parse(bytes, path);
    }
}

/// <summary>
/// The layout (gettext's gmo.h): magic 0x950412de, revision, N, offsets of the original and translation tables
/// (N × (length, offset) each, strings NUL-terminated), hash table size and offset; revision 1 adds, from byte 28,
/// the system-dependent segments (PRIu64 and friends) and strings built from them.
/// </summary>
static class MoParser
{
    const uint Magic = 0x950412de;
    const uint SegmentsEnd = 0xffffffff;

    public static MoCatalog Parse(byte[] data, string path)
    {
        var reader = new Reader(data, path);
        var raw = new List<(byte[] Original, byte[] Translation)>();
        var n = reader.U32(8);
        uint originals = reader.U32(12), translations = reader.U32(16);
        for (uint i = 0; i < n; i++)
            raw.Add((reader.String(originals + 8 * i, $"original string {i}"), reader.String(translations + 8 * i, $"translation {i}")));
        var revision = reader.U32(4);
        if (revision >> 16 == 0 && (revision & 0xffff) >= 1 && data.Length >= 48) raw.AddRange(SystemDependent(reader));

        var header = raw.FirstOrDefault(r => r.Original.Length == 0).Translation ?? [];
        var headerText = Encoding.UTF8.GetString(header); // the header itself is ASCII in every charset gettext allows
        var charset = CharsetOf(headerText);
        var encoding = EncodingFor(charset, path);
        var entries = new List<MoEntry>(raw.Count);
        foreach (var (original, translation) in raw)
        {
            if (original.Length == 0) continue;
            var o = Decode(encoding, original, path, charset);
            string? context = null;
            if (o.IndexOf('\u0004') is var eot and >= 0) { context = o[..eot]; o = o[(eot + 1)..]; }
            var ids = o.Split('\0');
            var forms = Decode(encoding, translation, path, charset).Split('\0');
            entries.Add(new MoEntry(context, ids[0], ids.Length > 1 ? ids[1] : null, forms));
        }
        return new MoCatalog(path, Decode(encoding, header, path, charset), charset, entries);
    }

    /// <summary>
    /// Revision 1's system-dependent strings: static pieces with segment names between them. They are rebuilt as a
    /// .po file spells them (msgunfmt does the same): "&lt;PRIu64&gt;" for a named segment, the bare "I" flag for "I".
    /// </summary>
    static IEnumerable<(byte[], byte[])> SystemDependent(Reader r)
    {
        uint segCount = r.U32(28), segTable = r.U32(32), strCount = r.U32(36), origTable = r.U32(40), transTable = r.U32(44);
        var segments = new byte[segCount][];
        for (uint i = 0; i < segCount; i++)
        {
            var name = r.String(segTable + 8 * i, $"system-dependent segment {i}");
            segments[i] = name is [.., 0] ? name[..^1] : name; // segment lengths count their NUL
        }
        for (uint i = 0; i < strCount; i++)
            yield return (Build(r.U32(origTable + 4 * i)), Build(r.U32(transTable + 4 * i)));

        byte[] Build(uint at)
        {
            var offset = r.U32(at);
            var result = new List<byte>();
            for (var p = at + 4; ; p += 8)
            {
                uint size = r.U32(p), reference = r.U32(p + 4);
                result.AddRange(r.Span(offset, size));
                offset += size;
                if (reference == SegmentsEnd) break;
                if (reference >= segCount) r.Fail($"system-dependent string at {at} refers to segment {reference} of {segCount}");
                var name = segments[reference];
                if (name is [(byte)'I']) result.Add((byte)'I');
                else { result.Add((byte)'<'); result.AddRange(name); result.Add((byte)'>'); }
            }
            // The static pieces keep the NULs between plural forms and after a context; the string ends before its last NUL.
            if (result.Count > 0 && result[^1] == 0) result.RemoveAt(result.Count - 1);
            return [.. result];
        }
    }

    static string CharsetOf(string header)
    {
        foreach (var line in header.Split('\n'))
        {
            if (!line.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase)) continue;
            var at = line.IndexOf("charset=", StringComparison.OrdinalIgnoreCase);
            if (at >= 0) return line[(at + 8)..].Trim().TrimEnd(';');
        }
        return "UTF-8"; // no header (or no charset): gettext treats the strings as they are; strict UTF-8 still checks them
    }

    static Encoding EncodingFor(string charset, string path)
    {
        if (charset.Equals("UTF-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("CHARSET", StringComparison.Ordinal))
            return new UTF8Encoding(false, throwOnInvalidBytes: true);
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance); // GBK, GB18030, Big5, KOI8-R, ISO-8859-*
        try { return Encoding.GetEncoding(charset, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback); }
        catch (ArgumentException)
        {
            throw new CptLabException($"{path}: the catalog's charset \"{charset}\" is not one .NET can decode; convert it first: msgunfmt {System.IO.Path.GetFileName(path)} | msgconv -t UTF-8 | msgfmt -o out.mo -");
        }
    }

    static string Decode(Encoding encoding, byte[] bytes, string path, string charset)
    {
        try { return encoding.GetString(bytes); }
        catch (DecoderFallbackException)
        {
            throw new CptLabException($"{path}: a string is not valid {charset} (\"{RecordReaderExcerpt(bytes)}\"); the catalog is damaged or its header names the wrong charset");
        }
    }

    static string RecordReaderExcerpt(byte[] bytes) => Sources.RecordReader.Excerpt(Encoding.Latin1.GetString(bytes));

    /// <summary>Bounds-checked access in the file's byte order.</summary>
    sealed class Reader
    {
        readonly byte[] _data;
        readonly string _path;
        readonly bool _bigEndian;

        public Reader(byte[] data, string path)
        {
            _data = data;
            _path = path;
            if (data.Length < 28) Fail($"{data.Length} bytes is shorter than a .mo header (28)");
            var magic = BinaryPrimitives.ReadUInt32LittleEndian(data);
            _bigEndian = magic != Magic;
            if (_bigEndian && BinaryPrimitives.ReadUInt32BigEndian(data) != Magic) Fail($"magic 0x{magic:x8} is not a GNU .mo file's (0x950412de in either byte order)");
            var revision = U32(4);
            if (revision >> 16 > 1) Fail($"revision {revision >> 16}.{revision & 0xffff} is newer than this reader knows (0 and 1)");
        }

        public uint U32(uint at)
        {
            if ((ulong)at + 4 > (ulong)_data.Length) Fail($"offset {at} is past the end of the file ({_data.Length} bytes)");
            var span = _data.AsSpan((int)at, 4);
            return _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span) : BinaryPrimitives.ReadUInt32LittleEndian(span);
        }

        public ReadOnlySpan<byte> Span(uint offset, uint length)
        {
            if ((ulong)offset + length > (ulong)_data.Length) Fail($"a string at {offset} of {length} bytes runs past the end of the file ({_data.Length} bytes)");
            return _data.AsSpan((int)offset, (int)length);
        }

        /// <summary>The string a (length, offset) descriptor at <paramref name="descriptor"/> points to, without its NUL.</summary>
        public byte[] String(uint descriptor, string what)
        {
            uint length = U32(descriptor), offset = U32(descriptor + 4);
            if ((ulong)offset + length >= (ulong)_data.Length) Fail($"{what} (at {offset}, {length} bytes) runs past the end of the file");
            return Span(offset, length).ToArray();
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        public void Fail(string why) => throw new CptLabException($"{_path}: not a readable .mo catalog: {why}");
    }
}
