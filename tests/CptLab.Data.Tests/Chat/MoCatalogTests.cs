using System.Text;
using CptLab.Core;
using CptLab.Data.Chat;

namespace CptLab.Data.Tests.Chat;

/// <summary>The .mo reader against GNU msgunfmt, on the machine's real zh_CN catalogs and on catalogs msgfmt compiles here.</summary>
public class MoCatalogTests
{
    const string LocaleDir = "/usr/share/locale/zh_CN/LC_MESSAGES";

    static string[] Keys(MoCatalog c) => c.Entries.Select(e => new PoEntry(e.Context, e.Id, e.IdPlural, e.Translations).Key).Order(StringComparer.Ordinal).ToArray();
    static string[] Keys(IEnumerable<PoEntry> po) => po.Where(e => e.Id.Length > 0 || e.Context is not null).Select(e => e.Key).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void Every_real_zh_CN_catalog_reads_as_msgunfmt_decompiles_it()
    {
        var files = Directory.GetFiles(LocaleDir, "*.mo").Order(StringComparer.Ordinal).ToArray();
        Assert.True(files.Length >= 5, $"expected the Debian zh_CN catalogs in {LocaleDir}");
        long entries = 0, sysdepFiles = 0;
        foreach (var file in files)
        {
            var catalog = MoCatalog.Read(file);
            var po = Gettext.Msgunfmt(file);
            Assert.Equal(Keys(po), Keys(catalog));
            Assert.Equal(po.Single(e => e.Id.Length == 0 && e.Context is null).Translations[0], catalog.Header);
            entries += catalog.Entries.Count;
            if ((BitConverter.ToUInt32(File.ReadAllBytes(file), 4) & 0xffff) >= 1) sysdepFiles++;
        }
        Assert.True(entries > 10_000, $"{entries} entries in {files.Length} catalogs");
        Assert.True(sysdepFiles > 0, "no revision-1 catalog (with <PRIu64>-style strings) was compared");
    }

    const string Po = """
        msgid ""
        msgstr ""
        "Content-Type: text/plain; charset=UTF-8\n"
        "Plural-Forms: nplurals=2; plural=(n != 1);\n"

        msgid "Open"
        msgstr "打开"

        msgctxt "menu"
        msgid "Open"
        msgstr "打开(菜单)"

        msgid "%d file"
        msgid_plural "%d files"
        msgstr[0] "%d 个文件"
        msgstr[1] "%d 個文件們"

        msgctxt "disk"
        msgid "%'lu byte free"
        msgid_plural "%'lu bytes free"
        msgstr[0] "剩余 %'lu 字节"
        msgstr[1] "剩餘 %'lu 位元組"

        msgid "Tab\tquote\" backslash\\ line\nend"
        msgstr "制表\t引号\" 反斜杠\\ 行\n尾 — é ü 😀"

        msgid "untranslated"
        msgstr ""
        """;

    static readonly MoEntry[] Expected =
    [
        new(null, "Open", null, ["打开"]),
        new("menu", "Open", null, ["打开(菜单)"]),
        new(null, "%d file", "%d files", ["%d 个文件", "%d 個文件們"]),
        new("disk", "%'lu byte free", "%'lu bytes free", ["剩余 %'lu 字节", "剩餘 %'lu 位元組"]),
        new(null, "Tab\tquote\" backslash\\ line\nend", null, ["制表\t引号\" 反斜杠\\ 行\n尾 — é ü 😀"]),
    ];

    static string[] Keys(IEnumerable<MoEntry> e) => e.Select(x => new PoEntry(x.Context, x.Id, x.IdPlural, x.Translations).Key).Order(StringComparer.Ordinal).ToArray();

    [Theory]
    [InlineData("little")]
    [InlineData("big")]
    public void A_catalog_msgfmt_compiles_reads_back_with_contexts_plurals_and_non_ASCII(string endianness)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("t.po"), Po + "\n");
        var mo = Gettext.Msgfmt(dir.File("t.po"), dir.File("t.mo"), $"--endianness={endianness}");
        var bytes = File.ReadAllBytes(mo);
        Assert.Equal(endianness == "big" ? 0xde120495u : 0x950412deu, BitConverter.ToUInt32(bytes, 0));

        var catalog = MoCatalog.Read(mo);
        Assert.Equal(Keys(Expected), Keys(catalog.Entries)); // msgfmt leaves untranslated entries out
        Assert.Equal(Keys(Gettext.Msgunfmt(mo)), Keys(catalog));
        Assert.Equal("UTF-8", catalog.Charset);
        Assert.Equal("%d 个文件", catalog.Entries.Single(e => e.Id == "%d file").Translation);
    }

    [Fact]
    public void A_GBK_catalog_is_converted_and_an_unknown_charset_is_refused_by_name()
    {
        using var dir = new TempDir();
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        var gbkPo = Po.Replace("charset=UTF-8", "charset=GBK").Replace(" — é ü 😀", "");
        File.WriteAllBytes(dir.File("gbk.po"), Encoding.GetEncoding("GBK").GetBytes(gbkPo + "\n"));
        var catalog = MoCatalog.Read(Gettext.Msgfmt(dir.File("gbk.po"), dir.File("gbk.mo")));
        Assert.Equal("GBK", catalog.Charset);
        Assert.Equal(Keys(Expected.Select(e => e with { Translations = e.Translations.Select(t => t.Replace(" — é ü 😀", "")).ToArray() })), Keys(catalog.Entries));

        // Same length as "GBK", so the patched file stays well-formed: only the charset name is unknown.
        var bytes = File.ReadAllBytes(dir.File("gbk.mo"));
        var at = bytes.AsSpan().IndexOf("charset=GBK"u8);
        "charset=QQQ"u8.CopyTo(bytes.AsSpan(at));
        File.WriteAllBytes(dir.File("unknown.mo"), bytes);
        var e = Assert.Throws<CptLabException>(() => MoCatalog.Read(dir.File("unknown.mo")));
        Assert.Contains("charset \"QQQ\"", e.Message);
        Assert.Contains("msgconv", e.Message);
    }

    [Fact]
    public void A_damaged_catalog_is_refused_with_the_file_and_the_fault()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("t.po"), Po + "\n");
        var bytes = File.ReadAllBytes(Gettext.Msgfmt(dir.File("t.po"), dir.File("t.mo")));
        File.WriteAllBytes(dir.File("cut.mo"), bytes[..(bytes.Length / 2)]);
        File.WriteAllText(dir.File("text.mo"), "not a catalog at all, just some text");
        var cut = Assert.Throws<CptLabException>(() => MoCatalog.Read(dir.File("cut.mo")));
        Assert.Contains("cut.mo: not a readable .mo catalog", cut.Message);
        var text = Assert.Throws<CptLabException>(() => MoCatalog.Read(dir.File("text.mo")));
        Assert.Contains("magic", text.Message);
    }
}
