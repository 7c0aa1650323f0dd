using CptLab.Core;
using CptLab.Data.Tokenization;

namespace CptLab.Serving.Tests;

/// <summary>Streaming text pieces, stop strings, penalties and chat template detection, without a server.</summary>
public class TextTests
{
    [Fact]
    public void Incremental_decoding_never_splits_a_character_and_adds_up_to_the_text()
    {
        var tok = TextTokenizer.Load(TestModelDir.Path);
        const string text = "你好，世界！😀 café über 12345 新しい";
        var decoder = new IncrementalDecoder(tok, tok.SpecialTokens.Values.ToHashSet());
        var pieces = tok.Encode(text).Select(decoder.Push).ToList();
        pieces.Add(decoder.Flush());
        Assert.Equal(text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        Assert.True(pieces.Count(p => p.Length == 0) > 0, "some tokens end mid-character, so some pushes release nothing");
    }

    [Fact]
    public void Stop_strings_hold_back_possible_prefixes_and_cut_at_the_first_match()
    {
        var m = new StopStringMatcher(["STOP", "\n\n"]);
        Assert.Equal(("Hello ", false), m.Push("Hello S"));
        Assert.Equal(("STX", false), m.Push("TX")); // "STX" cannot start STOP any more: released
        Assert.Equal(("a", false), m.Push("a\n"));
        Assert.Equal(("", true), m.Push("\nb"));
        var n = new StopStringMatcher(["STOP"]);
        Assert.Equal(("ab", false), n.Push("abST"));
        Assert.Equal(("", true), n.Push("OP and more"));
        var k = new StopStringMatcher(["<end>"]);
        Assert.Equal(("x", false), k.Push("x<en"));
        Assert.Equal("<en", k.Flush());
    }

    [Fact]
    public void Frequency_and_presence_penalties_subtract_by_count_and_presence()
    {
        var p = new LogitPenalties(frequency: 0.5, presence: 1.0);
        p.Record(3);
        p.Record(3);
        p.Record(5);
        float[] logits = [1, 1, 1, 1, 1, 1];
        p.Apply(logits);
        Assert.Equal([1f, 1f, 1f, 1f - 2.0f, 1f, 1f - 1.5f], logits);
    }

    [Fact]
    public void Chat_template_family_comes_from_tokenizer_config()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-template-").FullName;
        Assert.Same(ChatTemplate.Llama3, ChatTemplate.ForModel(dir));
        File.WriteAllText(Path.Combine(dir, ChatTemplate.ConfigFile), "{\"chat_template\": \"{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n{% endfor %}\"}");
        Assert.Same(ChatTemplate.ChatMl, ChatTemplate.ForModel(dir));
        File.WriteAllText(Path.Combine(dir, ChatTemplate.ConfigFile), "{\"chat_template\": \"[INST] {{ m.content }} [/INST]\"}");
        Assert.Contains("--chat-template", Assert.Throws<CptLabException>(() => ChatTemplate.ForModel(dir)).Message);
        Assert.Same(ChatTemplate.Llama3, ChatTemplate.ForModel(dir, "llama3"));
        Assert.Same(ChatTemplate.Llama3, ChatTemplate.ForModel(TestModelDir.Path));

        var tok = TextTokenizer.Load(TestModelDir.Path);
        var rendered = ChatTemplate.Llama3.Render(tok, [new ChatMessage("user", "hi")]);
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", rendered);
    }
}
