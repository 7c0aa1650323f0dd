using System.Text.Json;
using System.Text.RegularExpressions;
using CptLab.Data.Chat;
using CptLab.TestKit;

namespace CptLab.Data.Tests.Chat;

/// <summary>The post-training sets on the real GSM8K train file and the machine's zh_CN catalogs, and on a catalog with one entry per drop reason.</summary>
public class PostTrainSetsTests
{
    static string Gsm8k => Path.Combine(RepoPaths.SharedData, "gsm8k", "train.jsonl");
    const string LocaleDir = "/usr/share/locale/zh_CN/LC_MESSAGES";

    static List<T> ReadAll<T>(Func<ChatRejects, IEnumerable<T>> read)
    {
        using var rejects = new ChatRejects();
        var items = read(rejects).ToList();
        Assert.Equal(0, rejects.Read - rejects.Kept); // everything the builder writes, the readers accept
        return items;
    }

    static long FinalNumber(string solution) => long.Parse(Regex.Match(solution, @"\n#### (-?[\d,]+)$").Groups[1].Value.Replace(",", ""));

    [Fact]
    public void GSM8K_sets_hold_every_problem_once_with_a_wrong_final_answer_in_each_rejected_solution()
    {
        using var dir = new TempDir();
        var m = PostTrainSets.Build(new PostTrainSetOptions { OutputDir = dir.Path, Gsm8kFile = Gsm8k, Seed = 7 });
        var lines = File.ReadAllLines(Gsm8k);
        var truth = lines.Select(l => JsonDocument.Parse(l).RootElement).ToDictionary(e => e.GetProperty("question").GetString()!, e => e.GetProperty("answer").GetString()!);
        var source = Assert.Single(m.Sources);
        Assert.Equal(7473, lines.Length);
        Assert.Equal(lines.Length, source.Records);
        Assert.Equal(lines.Length - source.Dropped.Values.Sum(), source.Used);
        Assert.Empty(source.Dropped); // the real file has no bad or duplicate record
        var sft = m.Sets["gsm8k_sft"];
        Assert.Equal(lines.Length, sft.Train + sft.Validation);
        Assert.InRange(sft.Validation, 0.01 * lines.Length, 0.03 * lines.Length);
        Assert.Equal((sft.Train, sft.Validation), (m.Sets["gsm8k_dpo"].Train, m.Sets["gsm8k_dpo"].Validation));

        var chats = ReadAll(r => ChatReader.Read([dir.File("gsm8k_sft.jsonl"), dir.File("gsm8k_sft.val.jsonl")], ChatFormat.Messages, r));
        var pairs = ReadAll(r => PreferenceReader.Read([dir.File("gsm8k_dpo.jsonl"), dir.File("gsm8k_dpo.val.jsonl")], ChatFormat.Messages, r));
        Assert.Equal(lines.Length, chats.Count);
        Assert.Equal(truth.Keys.Order(), chats.Select(c => c.Messages[0].Content).Order());
        foreach (var c in chats)
        {
            var answer = truth[c.Messages[0].Content];
            Assert.Equal(Regex.Replace(answer, "<<[^<>]*>>", ""), c.Messages[1].Content); // annotations stripped, the rest verbatim
        }
        long bodyChanged = 0;
        foreach (var p in pairs)
        {
            var n = FinalNumber(truth[p.Prompt[0].Content]);
            Assert.Equal(n, FinalNumber(p.Chosen.Content));
            var wrong = FinalNumber(p.Rejected.Content);
            Assert.NotEqual(n, wrong);
            Assert.InRange(Math.Abs(wrong - n), 1, 10);
            Assert.True(n < 0 || wrong >= 0);
            if (p.Chosen.Content.Split("\n####")[0] != p.Rejected.Content.Split("\n####")[0]) bodyChanged++;
        }
        Assert.Equal(lines.Length - (long)source.Notes["rejected_final_line_only"], bodyChanged);
    }

    [Fact]
    public void Two_runs_with_the_same_seed_write_identical_files_and_another_seed_other_rejected_replies()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using var c = new TempDir();
        foreach (var (dir, seed) in new[] { (a, 3), (b, 3), (c, 4) })
            PostTrainSets.Build(new PostTrainSetOptions { OutputDir = dir.Path, Gsm8kFile = Gsm8k, LocaleDir = LocaleDir, Seed = seed });
        var files = Directory.GetFiles(a.Path).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(9, files.Length); // 4 sets × (train, val) + manifest
        foreach (var f in files) Assert.True(File.ReadAllBytes(a.File(f!)).AsSpan().SequenceEqual(File.ReadAllBytes(b.File(f!))), f);
        Assert.NotEqual(File.ReadAllText(a.File("gsm8k_dpo.jsonl")), File.ReadAllText(c.File("gsm8k_dpo.jsonl")));
        Assert.Equal(File.ReadAllText(a.File("gsm8k_sft.jsonl")), File.ReadAllText(c.File("gsm8k_sft.jsonl"))); // SFT and the split do not depend on the seed
    }

    [Fact]
    public void Real_catalogs_give_translation_pairs_with_every_entry_kept_or_dropped_for_a_reason()
    {
        using var dir = new TempDir();
        var m = PostTrainSets.Build(new PostTrainSetOptions { OutputDir = dir.Path, LocaleDir = LocaleDir });
        var source = Assert.Single(m.Sources);
        var entries = Directory.GetFiles(LocaleDir, "*.mo").Sum(f => (long)MoCatalog.Read(f).Entries.Count);
        Assert.Equal(entries, source.Records);
        Assert.Equal(entries, source.Used + source.Dropped.Values.Sum());
        Assert.True(source.Used > 5_000, $"{source.Used} pairs kept of {entries}");
        var pairs = ReadAll(r => PreferenceReader.Read([dir.File("translation_dpo.jsonl"), dir.File("translation_dpo.val.jsonl")], ChatFormat.Messages, r));
        var chats = ReadAll(r => ChatReader.Read([dir.File("translation_sft.jsonl"), dir.File("translation_sft.val.jsonl")], ChatFormat.Messages, r));
        Assert.Equal(source.Used, pairs.Count);
        Assert.Equal(source.Used, chats.Count);
        Assert.All(pairs, p => Assert.NotEqual(p.Chosen.Content, p.Rejected.Content));
        var toChinese = chats.Count(c => Regex.IsMatch(c.Messages[1].Content, @"[\u4e00-\u9fff]"));
        Assert.InRange(toChinese, 0.45 * chats.Count, 0.55 * chats.Count);
    }

    [Fact]
    public void Each_cleaning_rule_drops_what_it_names_and_keeps_printf_directives_intact()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("t.po"), """
            msgid ""
            msgstr "Content-Type: text/plain; charset=UTF-8\n"

            msgid "Open the file %s\n"
            msgstr "打开文件 %s\n"

            msgid "copied %1$s to %2$s"
            msgstr "已将 %2$s 复制自 %1$s"

            msgid "Same in both"
            msgstr "Same in both"

            msgid "%s: %d%%"
            msgstr "%s：%d%%"

            msgid "_File"
            msgstr "文件(_F)"

            msgid "E&xit"
            msgstr "退出"

            msgid "Only English here"
            msgstr "Only English, too"

            msgid "%d items of %s"
            msgstr "%d 个项目"

            msgctxt "again"
            msgid "Open the file %s\n"
            msgstr "打开该文件 %s\n"

            msgid "LC_ALL is set"
            msgstr "已设置 LC_ALL"

            """ + $"msgid \"{new string('x', 401)} long\"\nmsgstr \"很长\"\n");
        var locale = Directory.CreateDirectory(dir.File("locale")).FullName;
        Gettext.Msgfmt(dir.File("t.po"), Path.Combine(locale, "t.mo"));
        var m = PostTrainSets.Build(new PostTrainSetOptions { OutputDir = dir.File("out"), LocaleDir = locale, ValidationFraction = 0 });
        var source = Assert.Single(m.Sources);
        Assert.Equal(new Dictionary<string, long>
        {
            ["accelerator"] = 2, ["duplicate"] = 1, ["no_words"] = 1, ["not_chinese"] = 1, ["placeholder_mismatch"] = 1, ["too_long"] = 1, ["untranslated"] = 1,
        }, source.Dropped);
        var kept = ReadAll(r => ChatReader.Read(Path.Combine(dir.File("out"), "translation_sft.jsonl"), ChatFormat.Messages, r));
        var texts = kept.SelectMany(k => k.Messages).Select(x => x.Content).ToList();
        Assert.Equal(3, kept.Count);
        Assert.Contains(texts, t => t == "打开文件 %s" || t.EndsWith("\n打开文件 %s") || t == "Open the file %s" || t.EndsWith("\nOpen the file %s"));
        Assert.Contains(texts, t => t.Contains("已将 %2$s 复制自 %1$s"));
        Assert.Contains(texts, t => t.Contains("已设置 LC_ALL"));
    }
}
