using System.Text;

namespace CptLab.TestKit;

/// <summary>
/// Deterministic synthetic documents for pipeline, training and sweep tests (the real corpora are for the demo and
/// benchmarks): English-like sentences from a fixed word list and Chinese-like text from a fixed set of Han
/// characters with commas and full stops. The same seed gives the same text on every machine and .NET version
/// (System.Random with a seed is fixed by its algorithm).
/// </summary>
public static class SyntheticText
{
    static readonly string[] Words = ("time person year way day thing man world life hand part child eye woman place work week case point " +
        "government company number group problem fact river mountain window garden letter music paper story table money history " +
        "night morning evening water light road horse winter summer market village bridge engine harbor forest island question answer").Split(' ');
    const string Han = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈剑号巨阙珠称夜光果珍李柰菜重芥姜海咸河淡鳞潜羽翔";

    /// <summary>Sentences of twelve words, the first capitalised, ending in a full stop.</summary>
    public static string English(int seed, int words = 60)
    {
        var r = new Random(seed);
        var sb = new StringBuilder();
        for (var i = 0; i < words; i++)
        {
            var w = Words[r.Next(Words.Length)];
            sb.Append(i == 0 ? char.ToUpperInvariant(w[0]) + w[1..] : w);
            sb.Append(i % 12 == 11 ? ". " : " ");
        }
        return sb.ToString().Trim() + ".";
    }

    /// <summary>Han characters with a comma after every seventh and a full stop after every fourteenth.</summary>
    public static string Chinese(int seed, int chars = 80)
    {
        var r = new Random(seed);
        var sb = new StringBuilder();
        for (var i = 0; i < chars; i++)
        {
            sb.Append(Han[r.Next(Han.Length)]);
            if (i % 7 == 6) sb.Append(i % 14 == 13 ? '。' : '，');
        }
        return sb.ToString();
    }

    /// <summary>One JSONL record with the text under "text".</summary>
    public static string JsonLine(string text) => System.Text.Json.JsonSerializer.Serialize(new { text });
}
