using System.IO.Compression;
using System.Text;
using CptLab.Data.Tokenization;
using CptLab.TestKit;

namespace CptLab.Data.Tests;

/// <summary>The shared synthetic documents (CptLab.TestKit), packaged for the pipeline tests with a small tokenizer trained on them.</summary>
public static class Corpus
{
    public static string English(int seed, int words = 60) => SyntheticText.English(seed, words);
    public static string Chinese(int seed, int chars = 80) => SyntheticText.Chinese(seed, chars);
    public static string JsonLine(string text) => SyntheticText.JsonLine(text);

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
