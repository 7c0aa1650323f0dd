using System.Text.Json.Nodes;
using CptLab.Data.Tokenization;
using CptLab.TestKit;

namespace CptLab.Data.Tests;

/// <summary>
/// A tiktoken tokenizer.model converted to tokenizer.json gives Meta's own tokenizer.json back: Meta's vocabulary written as
/// a rank file (what Meta's original download holds), converted, and compared with Meta's file and with Hugging Face
/// tokenizers reading both.
/// </summary>
public class TiktokenConversionTests
{
    [Fact]
    public void Metas_ranks_convert_to_Metas_vocabulary_and_merges()
    {
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer.json")))!;
        var vocab = meta["model"]!["vocab"]!.AsObject();
        var dir = Directory.CreateTempSubdirectory("cptlab-tiktoken-").FullName;
        var model = Path.Combine(dir, "tokenizer.model");
        File.WriteAllLines(model, vocab.OrderBy(kv => (int)kv.Value!)
            .Select(kv => $"{Convert.ToBase64String(ByteLevel.Decode(kv.Key)!)} {(int)kv.Value!}"));

        var bpe = TiktokenConversion.ToBpe(model);
        var converted = Path.Combine(dir, "tokenizer.json");
        bpe.Save(converted);
        var ours = JsonNode.Parse(File.ReadAllText(converted))!;
        Assert.True(JsonNode.DeepEquals(vocab, ours["model"]!["vocab"]), "vocabularies differ");
        var metaMerges = meta["model"]!["merges"]!.AsArray().Select(m => m is JsonArray pair ? $"{pair[0]} {pair[1]}" : (string)m!).ToArray();
        var ourMerges = ours["model"]!["merges"]!.AsArray().Select(m => (string)m!).ToArray();
        Assert.Equal(metaMerges.Length, ourMerges.Length);
        Assert.Equal(metaMerges, ourMerges); // same merges in the same priority order

        using var hfMeta = new Tokenizers.DotNet.Tokenizer(Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer.json"));
        using var hfOurs = new Tokenizers.DotNet.Tokenizer(converted);
        foreach (var text in new[] { "This is a test sentence.", "床前明月光，疑是地上霜。", "def f(x):\n    return x ** 2  # 😀", "  spaces\t\ttabs\r\n" })
        {
            var a = hfMeta.Encode(text).Select(x => (int)x).ToArray();
            var b = hfOurs.Encode(text).Select(x => (int)x).Where(x => x != 128000).ToArray(); // our file's post-processor adds BOS
            Assert.Equal(a, b);
        }

        // A model folder whose tokenizer source is the bare tokenizer.model gets this tokenizer.json beside it.
        File.Delete(converted);
        var files = TokenizerFiles.From(model, 8192);
        var folder = Path.Combine(dir, "folder");
        files.WriteInto(folder);
        Assert.Equal(["special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"], files.FileNames);
        Assert.True(JsonNode.DeepEquals(vocab, JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer.json")))!["model"]!["vocab"]));
        Assert.Equal(128001, files.EosId);
    }

    [Fact]
    public void A_rank_file_with_a_gap_is_refused_with_its_line()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("cptlab-tiktoken-").FullName, "tokenizer.model");
        File.WriteAllLines(path, ["IQ== 0", "Ig== 2"]);
        var e = Assert.Throws<CptLab.Core.CorruptFileException>(() => TiktokenConversion.ToBpe(path));
        Assert.Contains("line 2", e.Message);
    }
}
