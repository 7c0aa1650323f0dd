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
    public void Chat_template_comes_from_the_model_folder()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-template-").FullName;
        Assert.Same(ChatTemplate.Llama3, ChatTemplate.ForModel(dir));
        var tok = TextTokenizer.Load(TestModelDir.Path);
        ChatMessage[] hi = [new("user", "hi")];

        // A string template, rendered by the Jinja engine (ChatML here).
        File.WriteAllText(Path.Combine(dir, ChatTemplate.ConfigFile), "{\"chat_template\": \"{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n{% endfor %}\"}");
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n", ChatTemplate.ForModel(dir).Render(tok, hi));

        // A list of named templates: "default" is the chat one; bos_token may be an AddedToken object.
        File.WriteAllText(Path.Combine(dir, ChatTemplate.ConfigFile), """
            {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ bos_token }}[{{ messages[0].content }}]{{ eos_token }}"}]}
            """);
        Assert.Equal("<s>[hi]</s>", ChatTemplate.ForModel(dir).Render(tok, hi));

        // chat_template.jinja beside the config wins, as in newer transformers.
        File.WriteAllText(Path.Combine(dir, ChatTemplate.JinjaFile), "{%- for m in messages %}{{ m.role | upper }}: {{ m.content }}\n{%- endfor %}");
        Assert.Equal("USER: hi", ChatTemplate.ForModel(dir).Render(tok, hi));
        Assert.EndsWith(ChatTemplate.JinjaFile, ChatTemplate.ForModel(dir).Name);

        // Outside the subset: refused at load, naming the file, the position and the way out.
        File.WriteAllText(Path.Combine(dir, ChatTemplate.JinjaFile), "line one\n{% include 'other' %}");
        var e = Assert.Throws<CptLabException>(() => ChatTemplate.ForModel(dir));
        Assert.Contains($"{ChatTemplate.JinjaFile}:2:4: unsupported Jinja feature: statement 'include'", e.Message);
        Assert.Contains("--chat-template", e.Message);
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", ChatTemplate.ForModel(dir, "chatml").Render(tok, hi));
        Assert.Equal("llama3", ChatTemplate.ForModel(dir, "llama3").Name);
        Assert.Throws<CptLabException>(() => ChatTemplate.ForModel(dir, "vicuna"));

        var rendered = ChatTemplate.Llama3.Render(tok, hi);
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", rendered);
        Assert.Equal(rendered, ChatTemplate.ForModel(TestModelDir.Path).Render(tok, hi));
    }

    [Fact]
    public void The_built_in_Llama3_template_is_Metas()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestKit.RepoPaths.Llama3TokenizerDir, "tokenizer_config.json")));
        Assert.Equal(ChatTemplate.Llama3Source, doc.RootElement.GetProperty("chat_template").GetString());
    }

    [Fact]
    public void Llama31_template_gets_the_date_and_stops_at_eom()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-template-").FullName;
        File.Copy(Path.Combine(TestKit.RepoPaths.SharedData, "chat-templates", "meta-llama-Llama-3.1-8B-Instruct.jinja"), Path.Combine(dir, ChatTemplate.JinjaFile));
        File.WriteAllText(Path.Combine(dir, ChatTemplate.ConfigFile), """{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}""");
        var tok = TextTokenizer.Load(TestModelDir.Path);
        var t = ChatTemplate.ForModel(dir);
        var text = t.Render(tok, [new("system", " Be brief. "), new("user", "hi")], addGenerationPrompt: true, today: new DateTime(2026, 3, 5));
        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 05 Mar 2026\n\n" +
                     "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", text);
        Assert.Equal([tok.EotId!.Value], t.TurnEndIds(tok));
        // A Llama-3.1 tokenizer has <|eom_id|> (128008), which ends a tool-call turn.
        Assert.Equal([128009, 128008], t.TurnEndIds(new SpecialsOnly(new() { ["<|eot_id|>"] = 128009, ["<|eom_id|>"] = 128008, ["<|im_end|>"] = 7 })));
        Assert.Equal([128009, 7], ChatTemplate.ChatMl.TurnEndIds(new SpecialsOnly(new() { ["<|eot_id|>"] = 128009, ["<|im_end|>"] = 7 })));
    }

    /// <summary>A tokenizer that only knows its special tokens (for stop-token rules).</summary>
    sealed class SpecialsOnly(Dictionary<string, int> specials) : ITextTokenizer
    {
        public int VocabSize => specials.Values.Max() + 1;
        public int? BosId => null;
        public int EosId => 0;
        public int? EotId => specials.TryGetValue("<|eot_id|>", out var e) ? e : null;
        public int? EomId => specials.TryGetValue("<|eom_id|>", out var e) ? e : null;
        public IReadOnlyList<int> StopTokenIds => [EosId, .. new[] { EomId, EotId }.OfType<int>()];
        public IReadOnlyDictionary<string, int> SpecialTokens => specials;
        public void Encode(string text, List<int> ids) => throw new NotSupportedException();
        public void EncodeWithSpecials(string text, List<int> ids) => throw new NotSupportedException();
        public string Decode(ReadOnlySpan<int> ids) => throw new NotSupportedException();
        public string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) => throw new NotSupportedException();
    }
}
