using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CptLab.Core;
using CptLab.Data.Chat;
using CptLab.Data.Cleaning;

namespace CptLab.Data.Sources.DebianDocs;

/// <summary>What <see cref="DocsExtractor.Run"/> reads and how strictly it keeps documents.</summary>
public sealed record DocsExtractOptions
{
    /// <summary>The folder scripts/fetch-debian-corpora.sh wrote (holding root/usr/share/…), or a root holding usr/share directly.</summary>
    public required string From { get; init; }
    public required string OutputDir { get; init; }
    /// <summary>Least <see cref="CjkShare"/> of a zh document (Han characters ÷ (Han + Latin words)): an untranslated page falls below.</summary>
    public double MinCjkShare { get; init; } = 0.5;
    /// <summary>Least share of an en document's letters that are Latin.</summary>
    public double MinLatinShare { get; init; } = 0.9;
    /// <summary>Man pages and Debian Reference pages shorter than this (characters, after extraction) are dropped.</summary>
    public int MinChars { get; init; } = 200;
    /// <summary>gettext strings longer than this are dropped (a pair is kept or dropped as one).</summary>
    public int MaxPairChars { get; init; } = 2000;
    public string Mandoc { get; init; } = "mandoc";
    public int Threads { get; init; } = Math.Max(1, Environment.ProcessorCount);
}

/// <summary>One output record: <c>{"id", "source", "lang", "text"}</c>. Ids pair the languages: man1/ls.1, ch02, coreutils.mo#17.</summary>
public sealed record DocRecord(string Id, string Source, string Lang, string Text);

/// <summary>Per source: what was read, kept (documents and characters) and dropped by reason.</summary>
public sealed record DocsSourceSummary(string Name, string Lang, string File, long Read, long Kept, long Characters, SortedDictionary<string, long> Dropped);

public sealed record DocsPackage(string Package, string Version);

/// <summary>summary.json: the packages (from packages.tsv) and the account of every source.</summary>
public sealed record DocsSummary(string From, IReadOnlyList<DocsPackage> Packages, IReadOnlyList<DocsSourceSummary> Sources);

public sealed record DocsProgress(string Source, int Done, int Total);

/// <summary>
/// Modern Chinese and English text of one domain (Linux commands, system calls, Debian administration) from Debian
/// packages: man pages (zh_CN from manpages-zh; English from manpages, manpages-dev and the fetched tools' own pages),
/// Debian Reference (HTML, zh-cn and en) and zh_CN gettext catalogs (each translated message with its English msgid).
/// Writes OUT/{zh,en}-{man,reference,gettext}.jsonl, OUT/rejects.jsonl (source, id, reason, detail per dropped
/// document) and OUT/summary.json, each file atomically. For every source, read = kept + Σ dropped.
/// Drop reasons: alias (a symlink or .so page: the same text as another page), unparseable (unreadable, not UTF-8,
/// mandoc failed), empty (nothing left after extraction), too_short, not_chinese / not_english (script share of the
/// letters under the threshold: untranslated pages), duplicate (same text as a page kept before, case and whitespace
/// ignored); gettext pairs: the reasons of <see cref="TranslationPairs"/>.
/// </summary>
public static class DocsExtractor
{
    public const string SummaryFile = "summary.json";
    public const string RejectsFile = "rejects.jsonl";

    /// <summary>The sources in output order: name, language, where under usr/share.</summary>
    public static readonly IReadOnlyList<(string Name, string Lang)> Sources =
        [("zh-man", "zh"), ("en-man", "en"), ("zh-reference", "zh"), ("en-reference", "en"), ("zh-gettext", "zh"), ("en-gettext", "en")];

    public static DocsSummary Run(DocsExtractOptions options, IProgress<DocsProgress>? progress = null)
    {
        var root = RootOf(options.From);
        var share = root + "/usr/share";
        var rejects = new List<Reject>();
        var results = new List<(string Name, string Lang, List<DocRecord> Kept, DocsSourceSummary Summary)>();

        void Add(string name, string lang, Account account) => results.Add((name, lang, account.Kept, account.Summary(name, lang)));

        var zhMan = Folder(share + "/man/zh_CN", "zh_CN man pages (package manpages-zh)");
        var enMan = Folder(share + "/man", "English man pages (packages manpages, manpages-dev)");
        ManPageText.Render(".TH CHECK 1\n", options.Mandoc); // a missing mandoc is one clear error here, not one per page on worker threads
        Add("zh-man", "zh", ManPages("zh-man", "zh", ManFiles(zhMan), zhMan, options, rejects, progress));
        Add("en-man", "en", ManPages("en-man", "en", ManFiles(enMan), enMan, options, rejects, progress));

        var reference = Folder(share + "/debian-reference", "Debian Reference (packages debian-reference-zh-cn, debian-reference-en)");
        Add("zh-reference", "zh", Reference("zh-reference", "zh", Pages(reference, "*.zh-cn.html"), options, rejects, progress));
        Add("en-reference", "en", Reference("en-reference", "en", Pages(reference, "*.en.html"), options, rejects, progress));

        var locale = Folder(share + "/locale/zh_CN/LC_MESSAGES", "zh_CN gettext catalogs");
        var (zhPairs, enPairs) = Gettext(locale, options, rejects, progress);
        Add("zh-gettext", "zh", zhPairs);
        Add("en-gettext", "en", enPairs);

        Directory.CreateDirectory(options.OutputDir);
        foreach (var (name, _, kept, _) in results)
            AtomicFile.Write(Path.Combine(options.OutputDir, name + ".jsonl"), s => WriteLines(s, kept.Select(r => JsonSerializer.Serialize(r, Line))));
        AtomicFile.Write(Path.Combine(options.OutputDir, RejectsFile), s => WriteLines(s, rejects.Select(r => JsonSerializer.Serialize(r, Line))));
        var summary = new DocsSummary(root, ReadPackages(options.From), results.Select(r => r.Summary).ToList());
        AtomicFile.WriteAllText(Path.Combine(options.OutputDir, SummaryFile), JsonSerializer.Serialize(summary, Json.SnakeCase) + "\n");
        return summary;
    }

    static readonly JsonSerializerOptions Line = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // Chinese as UTF-8, not \uXXXX
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    static void WriteLines(Stream s, IEnumerable<string> lines)
    {
        using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        foreach (var line in lines) { w.Write(line); w.Write('\n'); }
    }

    static string RootOf(string from)
    {
        var full = Path.GetFullPath(from);
        if (!Directory.Exists(full)) throw new CptLabException($"--from {from}: no such folder; run scripts/fetch-debian-corpora.sh (it writes .cache/debian-pkgs)");
        if (Directory.Exists(Path.Combine(full, "root", "usr", "share"))) return Path.Combine(full, "root");
        if (Directory.Exists(Path.Combine(full, "usr", "share"))) return full;
        throw new CptLabException($"--from {from}: neither {from}/root/usr/share nor {from}/usr/share exists; point it at the folder scripts/fetch-debian-corpora.sh wrote");
    }

    static string Folder(string path, string what) =>
        Directory.Exists(path) ? path : throw new CptLabException($"{path}: missing ({what}); run scripts/fetch-debian-corpora.sh, which downloads and unpacks the packages");

    static IReadOnlyList<DocsPackage> ReadPackages(string from)
    {
        var tsv = Path.Combine(Path.GetFullPath(from), "packages.tsv");
        if (!File.Exists(tsv)) return [];
        return File.ReadAllLines(tsv).Skip(1).Select(l => l.Split('\t')).Where(f => f.Length >= 2).Select(f => new DocsPackage(f[0], f[1])).ToList();
    }

    /// <summary>man*/… under a man folder (English: usr/share/man/man1…; Chinese: usr/share/man/zh_CN/man1…), by path.</summary>
    static string[] ManFiles(string manDir) =>
        Directory.GetDirectories(manDir, "man*").SelectMany(d => Directory.GetFiles(d))
            .Select(f => Path.GetRelativePath(manDir, f)).Order(StringComparer.Ordinal).ToArray();

    static string[] Pages(string dir, string pattern) => Directory.GetFiles(dir, pattern).Order(StringComparer.Ordinal).ToArray();

    static Account ManPages(string name, string lang, string[] files, string manDir, DocsExtractOptions options, List<Reject> rejects, IProgress<DocsProgress>? progress)
    {
        var account = new Account(name, lang, options, rejects);
        // Render on all cores (one mandoc process per page), then judge in file order so the output does not depend on timing.
        var rendered = new (string Id, string? Text, string Reason, string? Detail)[files.Length];
        var done = 0;
        Parallel.For(0, files.Length, new ParallelOptions { MaxDegreeOfParallelism = options.Threads }, i =>
        {
            var path = Path.Combine(manDir, files[i]);
            var id = files[i].EndsWith(".gz", StringComparison.Ordinal) ? files[i][..^3] : files[i];
            if (new FileInfo(path).LinkTarget is { } target) rendered[i] = (id, null, "alias", $"symlink to {target}");
            else
            {
                var source = ManPageText.ReadSource(path);
                if (source.Error is { } readError) rendered[i] = (id, null, "unparseable", $"{path}: {readError}");
                else if (source.AliasOf is { } alias) rendered[i] = (id, null, "alias", $".so {alias}");
                else
                {
                    var r = ManPageText.Render(source.Source!, options.Mandoc);
                    rendered[i] = r.Error is { } renderError ? (id, null, "unparseable", $"{path}: {renderError}") : (id, r.Text, "", null);
                }
            }
            var n = Interlocked.Increment(ref done);
            if (n % 50 == 0 || n == files.Length) progress?.Report(new DocsProgress(name, n, files.Length));
        });
        foreach (var (id, text, reason, detail) in rendered)
        {
            if (text is null) account.Drop(id, reason, detail);
            else account.Offer(id, text);
        }
        return account;
    }

    static Account Reference(string name, string lang, string[] pages, DocsExtractOptions options, List<Reject> rejects, IProgress<DocsProgress>? progress)
    {
        var account = new Account(name, lang, options, rejects);
        for (var i = 0; i < pages.Length; i++)
        {
            var file = Path.GetFileName(pages[i]);
            var id = file[..file.IndexOf('.')]; // ch02.zh-cn.html → ch02, the same id in both languages
            string html;
            try { html = File.ReadAllText(pages[i], new UTF8Encoding(false, throwOnInvalidBytes: true)); }
            catch (Exception e) when (e is IOException or DecoderFallbackException or UnauthorizedAccessException) { account.Drop(id, "unparseable", $"{pages[i]}: {e.Message}"); continue; }
            var (_, text) = HtmlText.Extract(html);
            account.Offer(id, text);
            progress?.Report(new DocsProgress(name, i + 1, pages.Length));
        }
        return account;
    }

    /// <summary>
    /// Each kept pair is one record in each language with the same id (catalog#n). The pair rules are those of the
    /// translation SFT sets (<see cref="TranslationPairs"/>); the min-chars bound is not applied (a message is short).
    /// </summary>
    static (Account Zh, Account En) Gettext(string localeDir, DocsExtractOptions options, List<Reject> rejects, IProgress<DocsProgress>? progress)
    {
        var zh = new Account("zh-gettext", "zh", options, rejects);
        var en = new Account("en-gettext", "en", options, rejects);
        var result = TranslationPairs.Collect(localeDir, options.MaxPairChars, new SyncProgress<(int Done, int Total)>(p => progress?.Report(new DocsProgress("gettext", p.Done, p.Total))));
        foreach (var c in result.Catalogs.Where(c => c.Error is not null))
            rejects.Add(new Reject("gettext", c.File, "unreadable_catalog", c.Error));
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var pair in result.Pairs)
        {
            var n = index[pair.Catalog] = index.GetValueOrDefault(pair.Catalog) + 1;
            var id = $"{pair.Catalog}#{n}";
            zh.Keep(id, pair.Chinese);
            en.Keep(id, pair.English);
        }
        foreach (var (reason, count) in result.Dropped) { zh.Count(reason, count); en.Count(reason, count); }
        return (zh, en);
    }

    sealed record Reject(string Source, string Id, string Reason, string? Detail);

    /// <summary>Keeps or drops the documents of one source, counting both.</summary>
    sealed class Account(string name, string lang, DocsExtractOptions options, List<Reject> rejects)
    {
        readonly HashSet<ulong> _seen = [];
        readonly SortedDictionary<string, long> _dropped = new(StringComparer.Ordinal);
        long _read, _chars;
        public List<DocRecord> Kept { get; } = [];

        public void Offer(string id, string text)
        {
            text = text.Trim();
            if (text.Length == 0) { Drop(id, "empty", null); return; }
            if (text.Length < options.MinChars) { Drop(id, "too_short", $"{text.Length} characters < {options.MinChars}"); return; }
            if (lang == "zh" && CjkShare.Of(text) is var cjk && cjk < options.MinCjkShare)
            {
                Drop(id, "not_chinese", FormattableString.Invariant($"Han share {cjk:0.000} (Han characters ÷ (Han + Latin words)) < {options.MinCjkShare}"));
                return;
            }
            if (lang == "en" && ScriptCheck.Share(text, "en") is var latin && latin < options.MinLatinShare)
            {
                Drop(id, "not_english", FormattableString.Invariant($"{latin:P1} of letters Latin < {options.MinLatinShare:P0}"));
                return;
            }
            var key = TextCleaner.DedupKey(text);
            if (!_seen.Add(XxHash64.HashToUInt64(MemoryMarshal.AsBytes(key.AsSpan())))) { Drop(id, "duplicate", null); return; }
            Keep(id, text);
        }

        public void Keep(string id, string text)
        {
            _read++;
            _chars += text.Length;
            Kept.Add(new DocRecord(id, name, lang, text));
        }

        public void Drop(string id, string reason, string? detail)
        {
            Count(reason, 1);
            rejects.Add(new Reject(name, id, reason, detail));
        }

        public void Count(string reason, long count)
        {
            _read += count;
            _dropped[reason] = _dropped.GetValueOrDefault(reason) + count;
        }

        public DocsSourceSummary Summary(string source, string language) => new(source, language, source + ".jsonl", _read, Kept.Count, _chars, _dropped);
    }
}
