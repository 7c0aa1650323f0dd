using CptLab.Data.Tokenization;
using Xunit.Abstractions;

namespace CptLab.Export.Tests;

/// <summary>
/// llama.cpp's own tokenizer, reading the exported vocabulary (tokens, types, merges, pre-tokenizer "llama-bpe"),
/// gives the ids CptLab's TextTokenizer gives for the same text: Meta's real 128k Llama-3 vocabulary and one
/// BpeTrainer trained here, on English, classical Chinese, code, emoji, rare CJK and whitespace runs.
/// </summary>
[Collection(nameof(ExportModels))]
public sealed class VocabularyTests(ExportModels models, ITestOutputHelper output)
{
    public static readonly TheoryData<string, string> Samples = new()
    {
        { "english", "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\"." },
        { "contractions", "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL" },
        { "chinese", "我想在苹果公司工作。今天天气很好，我们去公园散步吧！" },
        { "classical", "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。" },
        { "rare-cjk", "𠀋𠀍𪚥𫝀 〇 ㄅㄆ 鿰" },
        { "code", ExportModels.CodeSample },
        { "emoji", ExportModels.EmojiSample },
        { "whitespace", "a  b   c\n\n\n  \t\t x \r\n y     \n" },
        { "numbers", "3 33 333 3333 33333 3.3 3..3 1,000,000 ０１２３" },
        { "mixed", "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!??????" },
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public void Llama_cpp_tokenizes_like_CptLab_with_Metas_vocabulary(string kind, string text)
    {
        using var llama = new LlamaCpp(models.Gguf(models.Folder("small"), GgufWeightType.F32), 256, 1);
        var expected = models.Tokenizer.Encode(text);
        var actual = llama.Tokenize(text);
        output.WriteLine($"{kind}: {expected.Length} tokens");
        Assert.Equal(expected, actual);
    }

    /// <summary>
    /// Found by this test, 2026-12-02 (and fixed in TextTokenizer): merging by rank without the whole-piece lookup that
    /// tiktoken and Hugging Face (<c>ignore_merges: true</c> in Meta's tokenizer.json) do splits a word that is in the
    /// vocabulary but not reachable by merges: Brown document 117's " Cumhuriyet" is one token (118972) in llama.cpp,
    /// tiktoken and HF, and was four in CptLab (" Cum" "h" "uri" "yet").
    /// </summary>
    [Fact]
    public void Llama_cpp_tokenizes_real_corpus_text_like_CptLab()
    {
        using var llama = new LlamaCpp(models.Gguf(models.Folder("small"), GgufWeightType.F32), 256, 1);
        var texts = ExportModels.BrownDocuments().Skip(100).Take(40).Concat(ExportModels.TangPoems().Skip(2000).Take(400)).ToList();
        long tokens = 0, chars = 0;
        foreach (var text in texts)
        {
            var expected = models.Tokenizer.Encode(text);
            var actual = llama.Tokenize(text);
            int at = Enumerable.Range(0, Math.Min(expected.Length, actual.Length)).FirstOrDefault(i => expected[i] != actual[i], -1);
            if (at >= 0 || expected.Length != actual.Length)
            {
                at = at < 0 ? Math.Min(expected.Length, actual.Length) : at;
                string Pieces(int[] ids) => string.Join("|", ids.Skip(Math.Max(0, at - 3)).Take(8).Select(i => models.Tokenizer.Decode([i])));
                Assert.Fail($"first difference at token {at}: CptLab {Pieces(expected)} / llama.cpp {Pieces(actual)} ({System.Text.Json.JsonSerializer.Serialize(Pieces(expected))})");
            }
            tokens += expected.Length;
            chars += text.Length;
        }
        output.WriteLine($"{texts.Count} documents, {chars:N0} characters, {tokens:N0} tokens: identical");
    }

    [Fact]
    public void Special_tokens_are_control_tokens_in_llama_cpp()
    {
        using var llama = new LlamaCpp(models.Gguf(models.Folder("small"), GgufWeightType.F32), 256, 1);
        var chat = models.Tokenizer.ApplyChatTemplate([new ChatMessage("user", "你好, world!")], addGenerationPrompt: true);
        var expected = new List<int>();
        models.Tokenizer.EncodeWithSpecials(chat, expected);
        Assert.Equal(expected, llama.Tokenize(chat, addBos: false, special: true));
        // Without special parsing, llama.cpp reads the markers as text, as CptLab's plain Encode does.
        Assert.Equal(models.Tokenizer.Encode(chat), llama.Tokenize(chat, addBos: false, special: false));
        // With addBos llama.cpp puts <|begin_of_text|> first, as Llama-3 expects.
        Assert.Equal([128000, .. models.Tokenizer.Encode("Hello")], llama.Tokenize("Hello", addBos: true));
    }

    [Fact]
    public void Llama_cpp_tokenizes_like_CptLab_with_a_trained_vocabulary()
    {
        var folder = models.BpeFolder;
        var tokenizer = TextTokenizer.Load(folder);
        using var llama = new LlamaCpp(models.Gguf(folder, GgufWeightType.F32), 256, 1);
        var texts = ExportModels.BrownDocuments().Skip(200).Take(20).Concat(ExportModels.TangPoems().Skip(3000).Take(200))
            .Concat(Samples.Select(s => (string)s[1])).ToList();
        long tokens = 0;
        foreach (var text in texts)
        {
            var expected = tokenizer.Encode(text);
            Assert.Equal(expected, llama.Tokenize(text));
            tokens += expected.Length;
        }
        output.WriteLine($"trained vocabulary of {tokenizer.VocabSize}: {texts.Count} texts, {tokens:N0} tokens identical");
    }
}
