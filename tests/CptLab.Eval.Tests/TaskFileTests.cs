using System.Text.Json;
using CptLab.Core;
using CptLab.Eval.Tasks;
using CptLab.TestKit;

namespace CptLab.Eval.Tests;

/// <summary>The built-in task files and the prompts they make, against text written out here from lm-eval's YAML.</summary>
public class TaskFileTests
{
    static readonly TaskRegistry Registry = new(TaskRegistry.DefaultFolder);

    [Fact]
    public void Every_built_in_task_loads()
    {
        var all = Registry.All().ToDictionary(t => t.Task);
        Assert.Equal(67, all["cmmlu"].Subjects.Count);
        Assert.Equal(52, all["ceval-valid"].Subjects.Count);
        Assert.Equal(57, all["mmlu"].Subjects.Count);
        Assert.Equal(6, all.Keys.Count(k => k.StartsWith("emobench_", StringComparison.Ordinal)));
        Assert.Equal(OutputType.GenerateUntil, all["gsm8k"].OutputType);
        Assert.Equal(["Question:", "</s>", "<|im_end|>"], all["gsm8k"].Until);
        Assert.Equal([",", "\\$", "(?s).*#### ", "\\.$"], all["gsm8k"].Metrics[0].RegexesToIgnore);
        Assert.Equal(6, Registry.Select("emobench").Tasks.Count);
        var (tasks, subjects) = Registry.Select("cmmlu_agronomy,cmmlu_anatomy");
        Assert.Equal("cmmlu", Assert.Single(tasks).Task);
        Assert.Equal(["agronomy", "anatomy"], subjects["cmmlu"].Order());
    }

    [Fact]
    public void Cmmlu_5_shot_prompt_is_lm_evals_text()
    {
        var spec = Registry.Select("cmmlu").Tasks[0];
        var unit = TaskData.Load(spec, RepoPaths.SharedData, limit: 1, subjects: ["agronomy"]).Single();
        Assert.Equal(169, File.ReadLines(Path.Combine(RepoPaths.SharedData, "cmmlu/test/agronomy.csv")).Count() - 1);
        var doc = unit.Docs[0];
        const string expected =
            "以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n" +
            "肉牛屠宰后，胴体的哪个部位肉质较好\nA. 胸\nB. 腹\nC. 大腿\nD. 小腿\n答案： C\n\n" +
            "下列鸭品种中，产蛋量最高的品种是\nA. 高邮鸭\nB. 北京鸭\nC. 樱桃谷鸭\nD. 绍鸭\n答案： D\n\n" +
            "常见家畜中输精管不形成输精管壶腹的是\nA. 马\nB. 猪\nC. 牛\nD. 羊\n答案： B\n\n" +
            "牛的发情周期平均为\nA. 16～17天\nB. 21天\nC. 28天\nD. 19～20天\n答案： B\n\n" +
            "羊胴体中，肉质较好的部位是\nA. 胸下肉\nB. 肩胛肉\nC. 后腿肉\nD. 小腿肉\n答案： C\n\n" +
            "在农业生产中被当作极其重要的劳动对象发挥作用，最主要的不可替代的基本生产资料是\nA. 农业生产工具\nB. 土地\nC. 劳动力\nD. 资金\n答案：";
        Assert.Equal(expected, doc.Prompt);
        Assert.Equal(["A", "B", "C", "D"], doc.Choices);
        Assert.Equal(1, doc.Gold);
        Assert.Equal("cmmlu_agronomy", unit.Name);
    }

    [Fact]
    public void Gsm8k_shots_are_random_sample_with_seed_1234_advancing_per_document()
    {
        var spec = Registry.Select("gsm8k").Tasks[0];
        var unit = TaskData.Load(spec, RepoPaths.SharedData, limit: 2).Single();
        var train = File.ReadLines(Path.Combine(RepoPaths.SharedData, "gsm8k/train.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var test = File.ReadLines(Path.Combine(RepoPaths.SharedData, "gsm8k/test.jsonl")).Take(2).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        string Shot(int i) => $"Question: {train[i].GetProperty("question").GetString()}\nAnswer: {train[i].GetProperty("answer").GetString()}\n\n";
        // CPython: r = random.Random(1234); r.sample(range(7473), 5) → the first document's shots, then the second's.
        int[][] shots = [[6374, 3610, 957, 61, 742], [7462, 6610, 4769, 286, 5501]];
        for (int d = 0; d < 2; d++)
        {
            var expected = string.Concat(shots[d].Select(Shot)) + $"Question: {test[d].GetProperty("question").GetString()}\nAnswer:";
            Assert.Equal(expected, unit.Docs[d].Prompt);
            Assert.Equal(test[d].GetProperty("answer").GetString(), unit.Docs[d].Target);
        }
    }

    [Fact]
    public void Emobench_prompts_split_by_language_with_option_text_choices()
    {
        var spec = Registry.Select("emobench_ea_zh").Tasks[0];
        var unit = TaskData.Load(spec, RepoPaths.SharedData).Single();
        Assert.Equal(200, unit.Docs.Count);
        var d = unit.Docs[0];
        Assert.Equal("场景：萨拉发现自己的弟弟在学校受欺负了，但他恳求她不要告诉爸妈。\n问题：在这种情况下，萨拉最有效的做法是什么？\n答案：", d.Prompt);
        Assert.Equal("建议弟弟和老师或者辅导员聊聊", d.Choices[d.Gold]);
        Assert.Equal(200, TaskData.Load(Registry.Select("emobench_eu_emotion_en").Tasks[0], RepoPaths.SharedData).Single().Docs.Count);
    }

    [Fact]
    public void An_unknown_key_is_refused_with_file_line_and_key()
    {
        var dir = Temp.Dir();
        var path = Path.Combine(dir, "bad.yaml");
        File.WriteAllText(path, File.ReadAllText(Path.Combine(TaskRegistry.DefaultFolder, "gsm8k.yaml")).Replace("num_fewshot: 5", "num_fewshot: 5\nnum_fewshots: 3"));
        var e = Assert.Throws<CptLabException>(() => TaskSpec.Load(path));
        int line = File.ReadAllLines(path).ToList().FindIndex(l => l.StartsWith("num_fewshots", StringComparison.Ordinal)) + 1;
        Assert.Contains($"bad.yaml:{line}: num_fewshots: unknown key", e.Message);

        File.WriteAllText(path, File.ReadAllText(Path.Combine(TaskRegistry.DefaultFolder, "gsm8k.yaml")).Replace("    ignore_case: true", "    ignore_case: true\n    ignore_cases: true"));
        e = Assert.Throws<CptLabException>(() => TaskSpec.Load(path));
        Assert.Contains("metric_list[0].ignore_cases: unknown key", e.Message);
    }
}

static class Temp
{
    public static string Dir()
    {
        var d = Path.Combine(Path.GetTempPath(), "cptlab-eval-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
