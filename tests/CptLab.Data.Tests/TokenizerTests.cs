using CptLab.Core;
using CptLab.Data.Tokenization;
using Microsoft.ML.Tokenizers;

namespace CptLab.Data.Tests;

public class TokenizerTests
{
    static readonly string[] OddTexts =
    [
        "hello world",
        "The quick brown fox jumps over the lazy dog. It's 2024; don't panic!",
        "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
        "混合 mixed 文本 with numbers 12345 and 标点！？",
        "emoji 👩‍👩‍👧‍👦 🇨🇳 😀😀 ✨",
        "odd: \u0000\u0007 zero-width\u200b joiner\u200d e\u0301 (combining) ﬁ ligature",
        "tabs\tand\r\nnewlines\n\n\n   trailing spaces   ",
        "math ∑_{i=1}^n x_i² ≤ ∞ and code: for (int i = 0; i < n; i++) { x += y[i]; }",
        "Ελληνικά, русский, العربية, हिन्दी, 한국어, 日本語のテキスト",
        "<|eot_id|> literal special text in a document",
        "古詩𠀋，且復尋諸孫。𪚥𠮷",   // CJK Extension B: surrogate pairs in .NET strings, letters to Hugging Face
        "",
        " ",
    ];

    static readonly Lazy<string> Llama3ShapedModel = new(() =>
        Cl100k.WriteLlama3Shaped(Path.Combine(Path.GetTempPath(), $"cptlab-llama3-shaped-{Environment.ProcessId}.model")));

    [Fact]
    public void Tiktoken_file_with_llama3_specials_gives_known_ids()
    {
        var tok = TextTokenizer.FromTiktokenFile(Llama3ShapedModel.Value);
        Assert.Equal([15339, 1917], tok.Encode("hello world"));
        Assert.Equal([128000, 15339, 1917], tok.Encode("hello world", addBos: true));
        Assert.Equal(128000, tok.BosId);
        Assert.Equal(128001, tok.EosId);
        Assert.Equal(128009, tok.EotId);
        Assert.Equal(128006, tok.SpecialTokens["<|start_header_id|>"]);
        Assert.Equal(128007, tok.SpecialTokens["<|end_header_id|>"]);
        Assert.Equal(128255, tok.SpecialTokens["<|reserved_special_token_250|>"]);
        Assert.Equal(128256, tok.VocabSize);
    }

    [Fact]
    public void Tiktoken_file_matches_library_cl100k_on_varied_text()
    {
        var ours = TextTokenizer.FromTiktokenFile(Llama3ShapedModel.Value);
        var reference = TiktokenTokenizer.CreateForEncoding("cl100k_base");
        // The library's own cl100k pre-tokenizer treats CJK Extension B as symbols (UTF-16); ours does not (see Llama3Format.CompilePattern).
        foreach (var text in OddTexts.Where(t => !t.Contains("<|") && !t.Contains("𠀋")))
        {
            Assert.Equal(reference.EncodeToIds(text), ours.Encode(text));
            Assert.Equal(text, ours.Decode(ours.Encode(text)));
        }
    }

    [Fact]
    public void Chat_template_is_llama3s_and_specials_only_count_in_templates()
    {
        var tok = TextTokenizer.FromTiktokenFile(Llama3ShapedModel.Value);
        var text = tok.ApplyChatTemplate([new("system", "Be brief."), new("user", " hi ")], addGenerationPrompt: true);
        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
                     "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", text);
        var ids = tok.EncodeChat([new("user", "hello world")], addGenerationPrompt: false);
        // "user" and "\n\n" ids are cl100k's: 882 and 271.
        Assert.Equal([128000, 128006, 882, 128007, 271, 15339, 1917, 128009], ids);

        var plain = tok.Encode("<|eot_id|>");
        Assert.DoesNotContain(128009, plain);
        Assert.Equal("<|eot_id|>", tok.Decode(plain));
    }

    [Fact]
    public void Trainer_merges_the_most_frequent_pair_first()
    {
        // "abababab": pairs ab×4, ba×3 → merge (a,b)=256; then (256,256)×3 → 257; then (257,257)×1.
        var bpe = BpeTrainer.Train(["abababab"], new BpeTrainerOptions { VocabSize = 512 + 3, MinPairCount = 1 });
        Assert.Equal([('a', 'b'), (256, 256), (257, 257)], bpe.Merges.Select(m => (m.A, m.B)).ToArray());
        Assert.Equal("abababab"u8.ToArray(), bpe.TokenBytes[258]);
        var stopped = BpeTrainer.Train(["abababab"], new BpeTrainerOptions { VocabSize = 600, MinPairCount = 2 });
        Assert.Equal(2, stopped.Merges.Count);
    }

    [Fact]
    public void Trained_tokenizer_round_trips_and_loads_in_huggingface_tokenizers()
    {
        using var dir = new TempDir();
        var sample = Enumerable.Range(0, 200).SelectMany(i => OddTexts.Select(t => $"{t} {i}")).ToList();
        var bpe = BpeTrainer.Train(sample, new BpeTrainerOptions { VocabSize = 1024 });
        var path = dir.File("tokenizer.json");
        bpe.Save(path);

        var ours = TextTokenizer.Load(path);
        Assert.Equal(bpe.VocabSize, ours.VocabSize);
        Assert.Equal(bpe.FirstSpecialId, ours.BosId);
        Assert.Equal(bpe.FirstSpecialId + 9, ours.EotId);

        using var hf = new Tokenizers.DotNet.Tokenizer(path);
        foreach (var text in OddTexts.Concat(["unseen words: quizzical zephyr", "生僻字：龘靐齉"]))
        {
            var ids = ours.Encode(text);
            Assert.Equal(text, ours.Decode(ids));
            Assert.True(text.Length < 8 || ids.Length < System.Text.Encoding.UTF8.GetByteCount(text), $"no compression on '{text}'");
            if (text.Length == 0) continue;
            var hfIds = hf.Encode(text).Select(x => (int)x).ToArray();
            if (hfIds.Length > 0 && hfIds[0] == ours.BosId) hfIds = hfIds[1..];   // HF's post-processor adds BOS
            // HF always matches added tokens inside text; our plain Encode deliberately does not (see ITextTokenizer).
            var withSpecials = new List<int>();
            ours.EncodeWithSpecials(text, withSpecials);
            Assert.Equal(hfIds, text.Contains("<|") ? [.. withSpecials] : ids);
        }
    }

    [Fact]
    public void Text_byte_counts_are_the_utf8_bytes_of_the_text_and_none_for_special_tokens()
    {
        using var dir = new TempDir();
        var bpe = BpeTrainer.Train(Enumerable.Range(0, 50).SelectMany(i => OddTexts.Select(t => $"{t} {i}")), new BpeTrainerOptions { VocabSize = 700 });
        bpe.Save(dir.File("tokenizer.json"));
        foreach (var tok in new[] { TextTokenizer.FromTiktokenFile(Llama3ShapedModel.Value), TextTokenizer.Load(dir.File("tokenizer.json")) })
        {
            foreach (var text in OddTexts.Concat(["生僻字：龘靐齉"]))
            {
                var ids = tok.Encode(text);
                Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), tok.TextByteCount(ids));
                Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), tok.TextByteCount([tok.BosId!.Value, .. ids, tok.EosId, tok.EotId!.Value]));
                // Summed token by token: a cut inside a character counts the bytes on each side, no more.
                Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), ids.Sum(id => tok.TextByteCount([id])));
            }
            var e = Assert.Throws<CptLabException>(() => tok.TextByteCount([tok.VocabSize + 5]));
            Assert.Contains($"token id {tok.VocabSize + 5}", e.Message);
        }
    }

    [Fact]
    public void Bad_tokenizer_files_give_clear_errors()
    {
        using var dir = new TempDir();
        var bad = dir.File("tokenizer.model");
        File.WriteAllText(bad, "aGVsbG8= 0\nnot a rank line\n");
        var e = Assert.Throws<CorruptFileException>(() => TextTokenizer.Load(bad));
        Assert.Contains("line 2", e.Message);
        Assert.Throws<CptLabException>(() => TextTokenizer.Load(dir.File("missing.json")));
        File.WriteAllText(dir.File("wp.json"), """{"model":{"type":"WordPiece","vocab":{}}}""");
        Assert.Contains("WordPiece", Assert.Throws<CorruptFileException>(() => TextTokenizer.Load(dir.File("wp.json"))).Message);
    }
}

public class CodePointPatternTests
{
    [Theory]
    // What a code-point regex (Rust, Python) splits: supplementary letters are letters, an emoji is one character.
    [InlineData("a𠀋，", new[] { "a𠀋", "，" })]
    [InlineData("😀abc", new[] { "😀abc" })]
    [InlineData("𝐀𝐁𝐂 𝟎𝟏𝟐𝟑", new[] { "𝐀𝐁𝐂", " ", "𝟎𝟏𝟐", "𝟑" })]
    [InlineData("𐐀'll", new[] { "𐐀", "'ll" })]
    public void Llama3_pattern_splits_by_code_points(string text, string[] pieces) =>
        Assert.Equal(pieces, Llama3Format.Regex.Matches(text).Select(m => m.Value));

    [Fact]
    public void A_lone_surrogate_is_one_non_letter_like_the_replacement_character()
    {
        // (Not InlineData: attribute strings are stored as UTF-8, which cannot hold a lone surrogate.)
        Assert.Equal(["x", "\uD800y"], Llama3Format.Regex.Matches("x\uD800y").Select(m => m.Value));
        Assert.Equal(["x", "\uFFFDy"], Llama3Format.Regex.Matches("x\uFFFDy").Select(m => m.Value));
        Assert.Equal(["\uDC00\uD83D\uDE00", "a"], Llama3Format.Regex.Matches("\uDC00\uD83D\uDE00a").Select(m => m.Value));
        Assert.Equal(["\uFFFD\uD83D\uDE00", "a"], Llama3Format.Regex.Matches("\uFFFD\uD83D\uDE00a").Select(m => m.Value));
    }

    [Fact]
    public void Constructs_outside_the_supported_subset_are_refused_with_their_position()
    {
        var e = Assert.Throws<FormatException>(() => CodePointPattern.Translate(@"\p{L}+|[a-z-[aeiou]]"));
        Assert.Contains("position 12", e.Message);
        Assert.Contains("class subtraction", e.Message);
        Assert.Contains("unclosed", Assert.Throws<FormatException>(() => CodePointPattern.Translate(@"[^\p{L}")).Message);
    }
}
