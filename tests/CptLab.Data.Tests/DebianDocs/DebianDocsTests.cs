using System.IO.Compression;
using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Chat;
using CptLab.Data.Sources.DebianDocs;
using CptLab.Data.Tests.Chat;
using CptLab.TestKit;

namespace CptLab.Data.Tests.DebianDocs;

/// <summary>
/// The Debian documentation corpora (`cptlab data extract-docs`): the real packages scripts/fetch-debian-corpora.sh
/// unpacks (CPTLAB_DEBIAN, default .cache/debian-pkgs; a test fails when they are missing), man pages rendered by
/// mandoc, Debian Reference HTML, and zh_CN catalogs checked against GNU msgunfmt.
/// </summary>
public class DebianDocsTests
{
    static string Fetched
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("CPTLAB_DEBIAN") is { Length: > 0 } d ? d : Path.Combine(RepoPaths.Cache, "debian-pkgs");
            Assert.True(File.Exists(Path.Combine(dir, ".done")), $"the Debian packages are not in {dir}: run scripts/fetch-debian-corpora.sh");
            return dir;
        }
    }

    static string Share => Path.Combine(Fetched, "root", "usr", "share");

    static string Render(string path)
    {
        var source = ManPageText.ReadSource(path);
        Assert.Null(source.Error);
        var r = ManPageText.Render(source.Source!);
        Assert.Null(r.Error);
        return r.Text!;
    }

    [Fact]
    public void Real_zh_and_en_ls_pages_render_to_clean_text_with_their_known_phrases()
    {
        var zh = Render(Path.Combine(Share, "man", "zh_CN", "man1", "ls.1.gz"));
        var en = Render(Path.Combine(Share, "man", "man1", "ls.1.gz"));
        // manpages-zh's ls.1 source: ".SH 名称 / ls \- 列出目录内容"; the text under headings loses mandoc's 7-column indent.
        Assert.StartsWith("名称\nls - 列出目录内容\n", zh);
        Assert.Contains("-a, --all\n       不要忽略以点号（“.”）起始的条目", zh);
        Assert.StartsWith("NAME\nls - list directory contents\n", en);
        foreach (var text in new[] { zh, en })
        {
            Assert.DoesNotContain('\b', text);
            Assert.DoesNotContain('\x1b', text);
            Assert.DoesNotContain("LS(1)", text); // running header and footer removed
        }
        Assert.True(CjkShare.Of(zh) > 0.5, $"{CjkShare.Of(zh)}");
        Assert.True(CjkShare.Of(en) < 0.01);
    }

    [Fact]
    public void Overstrike_and_ANSI_are_removed_and_header_footer_dropped()
    {
        var terminal = "LS(1)    用户命令    LS(1)\n\n名\b名称\b称\n       l\bls\bs - _\b列_\b出 \x1b[1m😀\b😀\x1b[0m\n\n          deeper\n\nGNU 9.1    2022    LS(1)\n";
        Assert.Equal("名称\nls - 列出 😀\n\n   deeper", ManPageText.Clean(terminal));
    }

    [Fact]
    public void Html_text_drops_navigation_scripts_styles_and_the_table_of_contents()
    {
        const string html = """
            <html><head><title>第 2 章 软件包管理</title><style>p { color: red }</style><script>var secret = 1;</script></head>
            <body><div class="navheader"><a href="ch01.html">上一页</a></div><nav>菜单</nav>
            <div class="chapter"><h1>第 2 章 Debian
              软件包管理</h1><div class="toc"><p>目录</p><dl><dt>2.1. 前提</dt></dl></div>
            <p>使用 <code>apt</code>   安装 &amp; 升级。</p><script>alert("x")</script>
            <table><tr><th>命令</th><th>说明</th></tr><tr><td>apt update</td><td>更新</td></tr></table>
            <pre>$ apt install  vim
              indented</pre><noscript>no js</noscript></div>
            <div class="navfooter">下一页</div></body></html>
            """;
        var (title, text) = HtmlText.Extract(html);
        Assert.Equal("第 2 章 软件包管理", title);
        Assert.Equal("第 2 章 Debian 软件包管理\n\n使用 apt 安装 & 升级。\n\n命令\t说明\napt update\t更新\n\n$ apt install  vim\n  indented", text);
    }

    [Fact]
    public void Cjk_share_separates_translated_from_untranslated_text()
    {
        Assert.Equal(4.0 / 6, CjkShare.Of("列出目录 ls --all"), 6); // 4 Han, "ls" and "all": 2 words
        Assert.Equal(0, CjkShare.Of("123 --- ..."));
        Assert.Equal(1, CjkShare.Of("𠀀中")); // a supplementary-plane Han character counts once
    }

    /// <summary>A fake usr/share with each kind of page the extraction must keep or drop, and a catalog msgfmt compiles.</summary>
    [Fact]
    public void Extraction_keeps_translated_pages_and_accounts_for_every_drop()
    {
        using var dir = new TempDir();
        var share = Path.Combine(dir.Path, "usr", "share");
        var zh1 = Directory.CreateDirectory(Path.Combine(share, "man", "zh_CN", "man1")).FullName;
        var en1 = Directory.CreateDirectory(Path.Combine(share, "man", "man1")).FullName;
        var reference = Directory.CreateDirectory(Path.Combine(share, "debian-reference")).FullName;
        var locale = Directory.CreateDirectory(Path.Combine(share, "locale", "zh_CN", "LC_MESSAGES")).FullName;
        var zhBody = string.Concat(Enumerable.Repeat("这个命令列出目录的内容，并按照字母顺序排列文件。", 10)); // 240 characters: over --min-chars 200
        var enBody = string.Concat(Enumerable.Repeat("This command lists the contents of a directory, sorted by name. ", 6));
        Gz(Path.Combine(zh1, "good.1.gz"), $".TH GOOD 1\n.SH 名称\ngood \\- 好\n.SH 描述\n{zhBody}\n");
        File.WriteAllText(Path.Combine(zh1, "plain.1"), $".TH PLAIN 1\n.SH 名称\nplain \\- 纯文本\n.SH 描述\n\\fB--plain\\fP {zhBody}\n"); // not compressed
        Gz(Path.Combine(zh1, "untranslated.1.gz"), $".TH U 1\n.SH 名称\nuntranslated \\- 未翻译\n.SH DESCRIPTION\n{enBody}\n"); // Chinese title, English body
        Gz(Path.Combine(zh1, "copy.1.gz"), $".TH GOOD 1\n.SH 名称\ngood \\- 好\n.SH 描述\n{zhBody}\n");
        Gz(Path.Combine(zh1, "alias.1.gz"), ".so man1/good.1\n");
        File.CreateSymbolicLink(Path.Combine(zh1, "link.1.gz"), "good.1.gz");
        Gz(Path.Combine(zh1, "short.1.gz"), ".TH S 1\n.SH 名称\nshort \\- 短\n");
        File.WriteAllBytes(Path.Combine(zh1, "gbk.1"), Encoding.Latin1.GetBytes(".TH G 1\n.SH \xc3\xfb\xb3\xc6\n")); // GBK bytes: not UTF-8
        File.WriteAllBytes(Path.Combine(zh1, "broken.1.gz"), [0x1f, 0x8b, 8, 0, 0, 0]);
        Gz(Path.Combine(en1, "good.1.gz"), $".TH GOOD 1\n.SH NAME\ngood \\- good\n.SH DESCRIPTION\n{enBody}\n");
        File.WriteAllText(Path.Combine(reference, "ch01.zh-cn.html"), $"<html><body><div class=\"navheader\">导航 navigation menu</div><p>{zhBody}</p></body></html>");
        File.WriteAllText(Path.Combine(reference, "ch01.en.html"), $"<html><body><script>var x;</script><p>{enBody}</p></body></html>");
        File.WriteAllText(dir.File("a.po"), """
            msgid ""
            msgstr "Content-Type: text/plain; charset=UTF-8\n"

            msgctxt "menu"
            msgid "Open the file"
            msgstr "打开文件"

            msgid "%d file removed"
            msgid_plural "%d files removed"
            msgstr[0] "已删除 %d 个文件"

            msgid "not translated"
            msgstr "not translated"
            """);
        Gettext.Msgfmt(dir.File("a.po"), Path.Combine(locale, "a.mo"));

        var outDir = dir.File("out");
        var summary = DocsExtractor.Run(new DocsExtractOptions { From = dir.Path, OutputDir = outDir, Threads = 2 });

        var zhMan = summary.Sources.Single(s => s.Name == "zh-man");
        Assert.Equal(9, zhMan.Read);
        Assert.Equal(2, zhMan.Kept);
        Assert.Equal(new Dictionary<string, long> { ["alias"] = 2, ["duplicate"] = 1, ["not_chinese"] = 1, ["too_short"] = 1, ["unparseable"] = 2 }, zhMan.Dropped);
        foreach (var s in summary.Sources) Assert.Equal(s.Read, s.Kept + s.Dropped.Values.Sum());
        var zh = Records(outDir, "zh-man");
        Assert.Equal(["man1/copy.1", "man1/plain.1"], zh.Select(r => r.Id)); // files in path order: copy.1 comes first, good.1 is its duplicate
        Assert.All(zh, r => Assert.Equal(("zh-man", "zh"), (r.Source, r.Lang)));
        Assert.StartsWith("名称\ngood - 好\n\n描述\n这个命令", zh[0].Text);
        Assert.Equal(zh.Sum(r => (long)r.Text.Length), zhMan.Characters);
        Assert.Equal("man1/good.1", Assert.Single(Records(outDir, "en-man")).Id);
        Assert.Equal(zhBody, Assert.Single(Records(outDir, "zh-reference")).Text);
        Assert.Equal(enBody.Trim(), Assert.Single(Records(outDir, "en-reference")).Text);

        var zhPairs = Records(outDir, "zh-gettext");
        var enPairs = Records(outDir, "en-gettext");
        // msgfmt sorts a catalog by its original strings ("%d file…" before "menu\u0004Open…"); the context is not part of the text.
        Assert.Equal(["已删除 %d 个文件", "打开文件"], zhPairs.Select(r => r.Text));
        Assert.Equal(["%d file removed", "Open the file"], enPairs.Select(r => r.Text));
        Assert.Equal(zhPairs.Select(r => r.Id), enPairs.Select(r => r.Id));
        Assert.Equal(1, summary.Sources.Single(s => s.Name == "zh-gettext").Dropped["untranslated"]);

        var rejects = File.ReadAllLines(Path.Combine(outDir, DocsExtractor.RejectsFile)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var gbk = rejects.Single(r => r.GetProperty("id").GetString() == "man1/gbk.1");
        Assert.Contains("gbk.1: not UTF-8", gbk.GetProperty("detail").GetString());
        Assert.Contains("gzip", rejects.Single(r => r.GetProperty("id").GetString() == "man1/broken.1").GetProperty("detail").GetString());
    }

    [Fact]
    public void Missing_input_is_a_clear_error()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<CptLabException>(() => DocsExtractor.Run(new DocsExtractOptions { From = dir.File("nope"), OutputDir = dir.File("out") }));
        Assert.Contains("fetch-debian-corpora.sh", e.Message);
        Directory.CreateDirectory(Path.Combine(dir.Path, "usr", "share", "man"));
        e = Assert.Throws<CptLabException>(() => DocsExtractor.Run(new DocsExtractOptions { From = dir.Path, OutputDir = dir.File("out") }));
        Assert.Contains("zh_CN", e.Message);
    }

    [Fact]
    public void Fetched_zh_CN_catalogs_read_as_msgunfmt_decompiles_them()
    {
        var files = Directory.GetFiles(Path.Combine(Share, "locale", "zh_CN", "LC_MESSAGES"), "*.mo").Order(StringComparer.Ordinal).ToArray();
        Assert.True(files.Length >= 15, $"{files.Length} catalogs");
        foreach (var file in files)
        {
            var catalog = MoCatalog.Read(file);
            var po = Gettext.Msgunfmt(file).Where(e => e.Id.Length > 0 || e.Context is not null).ToList();
            Assert.Equal(po.Select(e => (e.Context, e.Id, e.IdPlural, string.Join('\0', e.Translations))).Order(),
                catalog.Entries.Select(e => (e.Context, e.Id, e.IdPlural, string.Join('\0', e.Translations))).Order());
        }
    }

    /// <summary>The whole real corpus: the counts docs/data.md reports, within bounds that a broken renderer or filter would leave.</summary>
    [Fact]
    public void The_real_packages_extract_to_the_documented_corpus()
    {
        using var dir = new TempDir();
        var summary = DocsExtractor.Run(new DocsExtractOptions { From = Fetched, OutputDir = dir.Path });
        var by = summary.Sources.ToDictionary(s => s.Name);
        Assert.InRange(by["zh-man"].Kept, 550, 703);
        Assert.InRange(by["zh-man"].Dropped.GetValueOrDefault("not_chinese"), 5, 100);
        Assert.InRange(by["en-man"].Kept, 1100, 1400);
        Assert.Equal(15, by["zh-reference"].Kept);
        Assert.Equal(15, by["en-reference"].Kept);
        Assert.InRange(by["zh-gettext"].Kept, 10_000, 16_000);
        Assert.InRange(by["zh-man"].Characters, 1_500_000, 3_000_000);
        Assert.Contains(summary.Packages, p => p.Package == "manpages-zh");
        foreach (var s in summary.Sources) Assert.Equal(s.Read, s.Kept + s.Dropped.Values.Sum());
        // perlfunc.7 in manpages-zh is the English original (a Chinese title only): the filter must catch it.
        Assert.Contains("\"id\":\"man7/perlfunc.7\",\"reason\":\"not_chinese\"", File.ReadAllText(Path.Combine(dir.Path, DocsExtractor.RejectsFile)));
    }

    static List<DocRecord> Records(string outDir, string source) =>
        File.ReadAllLines(Path.Combine(outDir, source + ".jsonl")).Select(l => JsonSerializer.Deserialize<DocRecord>(l, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!).ToList();

    static void Gz(string path, string text)
    {
        using var f = File.Create(path);
        using var gz = new GZipStream(f, CompressionLevel.Optimal);
        gz.Write(Encoding.UTF8.GetBytes(text));
    }
}
