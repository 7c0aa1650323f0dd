using CptLab.Eval.Tasks;
using Parquet.Serialization;

namespace CptLab.Eval.Tests;

/// <summary>
/// The readers of the Hub schemas that have no copy here (ceval/ceval-exam, cais/mmlu), on fixtures written in those
/// schemas, and bad inputs: skipped with file, line and reason, and counted.
/// </summary>
public class BadInputTests
{
    static readonly TaskRegistry Registry = new(TaskRegistry.DefaultFolder);

    sealed class CevalRow
    {
        public string id { get; set; } = "";
        public string question { get; set; } = "";
        public string A { get; set; } = "";
        public string B { get; set; } = "";
        public string C { get; set; } = "";
        public string D { get; set; } = "";
        public string answer { get; set; } = "";
        public string explanation { get; set; } = "";
    }

    sealed class MmluRow
    {
        public string question { get; set; } = "";
        public string subject { get; set; } = "";
        public string[] choices { get; set; } = [];
        public long answer { get; set; }
    }

    static CevalRow Ceval(int i, string answer) => new() { id = i.ToString(), question = $" 问题{i} ", A = "甲", B = "乙", C = "丙", D = "丁", answer = answer };

    [Fact]
    public async Task Ceval_parquet_in_the_hub_schema_with_a_bad_answer_skipped()
    {
        var data = Temp.Dir();
        var dir = Path.Combine(data, "ceval-exam", "accountant");
        Directory.CreateDirectory(dir);
        await ParquetSerializer.SerializeAsync(new[] { Ceval(0, "A"), Ceval(1, "E"), Ceval(2, "C") }, Path.Combine(dir, "val-00000-of-00001.parquet"));
        await ParquetSerializer.SerializeAsync(Enumerable.Range(10, 5).Select(i => Ceval(i, "B")), Path.Combine(dir, "dev-00000-of-00001.parquet"));
        var spec = Registry.Select("ceval-valid").Tasks[0];
        var unit = TaskData.Load(spec, data, numFewshot: 1, subjects: ["accountant"]).Single();
        Assert.Equal(2, unit.Docs.Count);
        Assert.Equal("以下是中国关于注册会计师的单项选择题，请选出其中的正确答案。\n\n问题10\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案： B\n\n问题0\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案：", unit.Docs[0].Prompt);
        Assert.Equal([0, 2], unit.Docs.Select(d => d.Gold));
        var bad = Assert.Single(unit.Skipped);
        Assert.EndsWith("val-00000-of-00001.parquet", bad.File);
        Assert.Equal(2, bad.Line);
        Assert.Contains("answer 'E' is not one of the choices", bad.Reason);
    }

    [Fact]
    public void Ceval_csv_release_is_read_when_there_is_no_parquet()
    {
        var data = Temp.Dir();
        Directory.CreateDirectory(Path.Combine(data, "ceval-exam", "val"));
        File.WriteAllText(Path.Combine(data, "ceval-exam", "val", "accountant_val.csv"),
            "id,question,A,B,C,D,answer,explanation\n0,\"多行\n问题\",甲,\"乙,丙\",丙,丁,D,\n1,问题二,甲,乙,丙,丁,A,\n");
        var unit = TaskData.Load(Registry.Select("ceval-valid").Tasks[0], data, numFewshot: 0, subjects: ["accountant"]).Single();
        Assert.Equal(2, unit.Docs.Count);
        Assert.Equal("以下是中国关于注册会计师的单项选择题，请选出其中的正确答案。\n\n多行\n问题\nA. 甲\nB. 乙,丙\nC. 丙\nD. 丁\n答案：", unit.Docs[0].Prompt);
        Assert.Equal(4, unit.Docs[1].Doc.Line); // header line 1, the first record on lines 2-3 (a quoted newline), the second on 4
    }

    [Fact]
    public async Task Mmlu_parquet_with_a_list_column_and_an_int_answer()
    {
        var data = Temp.Dir();
        var dir = Path.Combine(data, "mmlu", "abstract_algebra");
        Directory.CreateDirectory(dir);
        await ParquetSerializer.SerializeAsync(new[]
        {
            new MmluRow { question = "Find the order of Z_4.", subject = "abstract_algebra", choices = ["1", "2", "3", "4"], answer = 3 },
            new MmluRow { question = "Bad index.", subject = "abstract_algebra", choices = ["1", "2", "3", "4"], answer = 7 },
        }, Path.Combine(dir, "test-00000-of-00001.parquet"));
        var unit = TaskData.Load(Registry.Select("mmlu").Tasks[0], data, numFewshot: 0, subjects: ["abstract_algebra"]).Single();
        var d = Assert.Single(unit.Docs);
        Assert.Equal("The following are multiple choice questions (with answers) about abstract algebra.\n\nFind the order of Z_4.\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:", d.Prompt);
        Assert.Equal(3, d.Gold);
        Assert.Contains("answer index 7 is outside the 4 choices", Assert.Single(unit.Skipped).Reason);
    }

    [Fact]
    public void Missing_column_bad_answer_and_unreadable_file_are_skipped_with_file_line_reason()
    {
        var data = Temp.Dir();
        Directory.CreateDirectory(Path.Combine(data, "cmmlu", "test"));
        Directory.CreateDirectory(Path.Combine(data, "cmmlu", "dev"));
        File.WriteAllText(Path.Combine(data, "cmmlu", "test", "agronomy.csv"),
            ",Question,A,B,C,D,Answer\n0,问一,甲,乙,丙,丁,A\n1,问二,甲,乙,丙,丁,E\n2,问三,甲,乙,丙\n3,问四,甲,乙,丙,丁,D\n");
        File.WriteAllText(Path.Combine(data, "cmmlu", "test", "anatomy.csv"), ",Question,A,B,C,Answer\n0,问一,甲,乙,丙,A\n");  // no D column
        File.WriteAllBytes(Path.Combine(data, "cmmlu", "test", "arts.csv"), [0x2c, 0x51, 0xff, 0xfe, 0x0a, 0xc3]); // not UTF-8
        var units = TaskData.Load(Registry.Select("cmmlu").Tasks[0], data, numFewshot: 0, subjects: ["agronomy", "anatomy", "arts"]).ToDictionary(u => u.Subject!.Name);

        Assert.Equal(2, units["agronomy"].Docs.Count);
        var s = units["agronomy"].Skipped.OrderBy(x => x.Line).Select(x => x.ToString()).ToArray();
        Assert.Equal(2, s.Length);
        Assert.Matches(@"agronomy\.csv:3: answer 'E' is not one of the choices", s[0]);
        Assert.Matches(@"agronomy\.csv:4: 5 fields where the header has 7", s[1]);

        var missing = Assert.Single(units["anatomy"].Skipped);
        Assert.Equal(2, missing.Line);
        Assert.Contains("missing field 'D'", missing.Reason);

        var unreadable = Assert.Single(units["arts"].Skipped);
        Assert.Equal(0, unreadable.Line);
        Assert.Contains("unreadable file", unreadable.Reason);
        Assert.Empty(units["arts"].Docs);
    }
}
