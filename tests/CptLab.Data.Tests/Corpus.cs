using System.IO.Compression;
using System.Text;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Tests;

/// <summary>Deterministic synthetic documents for pipeline tests (the real corpora are for demos and benchmarks).</summary>
public static class Corpus
{
    static readonly string[] Words = ("time person year way day thing man world life hand part child eye woman place work week case point " +
        "government company number group problem fact river mountain window garden letter music paper story table money history " +
        "night morning evening water light road horse winter summer market village bridge engine harbor forest island question answer").Split(' ');
    const string Han = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈剑号巨阙珠称夜光果珍李柰菜重芥姜海咸河淡鳞潜羽翔";

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

    public static string JsonLine(string text) => System.Text.Json.JsonSerializer.Serialize(new { text });

    public static byte[] Gzip(string text)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(Encoding.UTF8.GetBytes(text));
        return ms.ToArray();
    }

    static readonly Lazy<string> _tokenizerPath = new(() =>
    {
        var path = Path.Combine(Path.GetTempPath(), $"cptlab-test-tokenizer-{Environment.ProcessId}.json");
        var sample = Enumerable.Range(0, 300).Select(i => i % 2 == 0 ? English(i) : Chinese(i)).ToList();
        BpeTrainer.Train(sample, new BpeTrainerOptions { VocabSize = 1200 }).Save(path);
        return path;
    });

    /// <summary>A small byte-level BPE trained on this corpus: fast to load, uint16 shards.</summary>
    public static string TokenizerPath => _tokenizerPath.Value;
    public static TextTokenizer Tokenizer => TextTokenizer.Load(TokenizerPath);
}
