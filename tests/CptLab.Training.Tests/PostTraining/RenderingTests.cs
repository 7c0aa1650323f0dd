using System.Text.Json.Nodes;
using CptLab.Data.Tokenization;
using CptLab.TestKit;
using CptLab.Training.PostTraining;

namespace CptLab.Training.Tests.PostTraining;

/// <summary>
/// Chat renderings and their labels against independent references: the text as @huggingface/jinja renders the real
/// Llama-3 and Llama-3.1 templates, its ids as Hugging Face tokenizers (Rust) encodes that text (what transformers'
/// apply_chat_template(tokenize=True) does), and each assistant span as Hugging Face encodes the message alone.
/// </summary>
public sealed class RenderingTests : IDisposable
{
    readonly NodeJinja _node = new();
    readonly Tokenizers.DotNet.Tokenizer _hf = new(Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer.json"));
    readonly TextTokenizer _tokenizer = TextTokenizer.Load(RepoPaths.Llama3TokenizerDir);
    readonly string _dir = Directory.CreateTempSubdirectory("cptlab-render-").FullName;

    static readonly ChatMessage[] Conversation =
    [
        new("system", "You are a careful translator."),
        new("user", "Translate to Chinese: Open file"),
        new("assistant", "打开文件"),
        new("user", "  And: Save as…  "),
        new("assistant", " 另存为…\n"),
    ];

    int[] Hf(string text) => [.. _hf.Encode(text).Select(x => (int)x)];

    ChatTemplate Template(string name)
    {
        if (name == "llama3") return ChatTemplate.ForModel(RepoPaths.Llama3TokenizerDir);
        var dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(RepoPaths.SharedData, "chat-templates", "meta-llama-Llama-3.1-8B-Instruct.jinja"), Path.Combine(dir, ChatTemplate.JinjaFile));
        File.Copy(Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer_config.json"), Path.Combine(dir, ChatTemplate.ConfigFile));
        return ChatTemplate.ForModel(dir);
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("llama3.1")]
    public void Rendering_and_ids_equal_huggingface_and_spans_are_the_assistant_messages(string name)
    {
        var template = Template(name);
        var rendered = new ChatRenderer(_tokenizer, template).Render(Conversation);

        var vars = new JsonObject
        {
            ["messages"] = new JsonArray([.. Conversation.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content })]),
            ["add_generation_prompt"] = false,
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = "<|end_of_text|>",
            ["date_string"] = "26 Jul 2024",
        };
        var (ok, reference) = _node.Render(template.Jinja.Source, vars);
        Assert.True(ok, reference);
        Assert.Equal(reference, rendered.Text);
        Assert.Equal(Hf(reference), rendered.Ids);

        // Each assistant span: the message's text (the templates trim it) as Hugging Face encodes it alone, then <|eot_id|>.
        var assistants = Conversation.Where(m => m.Role == "assistant").ToList();
        Assert.Equal(assistants.Count, rendered.AssistantSpans.Count);
        for (int i = 0; i < assistants.Count; i++)
        {
            var (start, end) = rendered.AssistantSpans[i];
            var expected = Hf(assistants[i].Content.Trim()).Append(_tokenizer.EotId!.Value).ToArray();
            Assert.Equal(expected, rendered.Ids[start..end]);
        }
    }

    [Fact]
    public void Labels_train_assistant_turns_by_default_the_last_with_mask_history_everything_with_train_on_prompt()
    {
        var rendered = new ChatRenderer(_tokenizer, Template("llama3")).Render(Conversation);
        var spans = rendered.AssistantSpans;
        bool[] Expected(Func<int, bool> trained) => [.. Enumerable.Range(0, rendered.Ids.Length).Select(trained)];
        bool InSpan(int i, int s) => i >= spans[s].Start && i < spans[s].End;

        var all = ExampleLabeller.Label(rendered, new LabelOptions(4096), out _, out _)!;
        Assert.Equal(Expected(i => InSpan(i, 0) || InSpan(i, 1)), all.Trained);
        var last = ExampleLabeller.Label(rendered, new LabelOptions(4096, MaskHistory: true), out _, out _)!;
        Assert.Equal(Expected(i => InSpan(i, 1)), last.Trained);
        var prompt = ExampleLabeller.Label(rendered, new LabelOptions(4096, TrainOnPrompt: true), out _, out _)!;
        Assert.Equal(Expected(i => i > 0), prompt.Trained);
    }

    [Fact]
    public void Truncation_follows_llama_factory_infer_seqlen()
    {
        // Values from LLaMA-Factory's infer_seqlen, worked by hand:
        // short target (30·2 < 64): target kept, source gets 64 − 30 = 34.
        Assert.Equal((34, 30), ExampleLabeller.InferSeqlen(100, 30, 64));
        // short source (30·2 < 64): target gets 64 − 30 = 34.
        Assert.Equal((30, 34), ExampleLabeller.InferSeqlen(30, 100, 64));
        // both long: target int(64 · 50/100) = 32, source 64 − 32 = 32.
        Assert.Equal((32, 32), ExampleLabeller.InferSeqlen(50, 50, 64));
        // both long, unequal: target int(64 · 60/100) = 38, source 26.
        Assert.Equal((26, 38), ExampleLabeller.InferSeqlen(40, 60, 64));

        var rendered = new ChatRenderer(_tokenizer, Template("llama3")).Render(Conversation);
        int cutoff = rendered.Ids.Length - 5;
        var cut = ExampleLabeller.Label(rendered, new LabelOptions(cutoff), out _, out var truncated)!;
        Assert.True(truncated);
        Assert.True(cut.Length <= cutoff);
        Assert.Null(ExampleLabeller.Label(rendered, new LabelOptions(cutoff, Truncation: TruncationMode.Drop), out var reason, out _));
        Assert.Contains("cut-off", reason);
    }

    public void Dispose()
    {
        _node.Dispose();
        _hf.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

public class PairLabellerTests
{
    static RenderedConversation Rendered(int[] ids, int start) => new("", ids, [(start, ids.Length)]);

    [Fact]
    public void A_pair_whose_completions_differ_only_past_the_cut_off_is_refused_and_a_long_pair_shares_its_cut_prompt()
    {
        int[] prompt = [.. Enumerable.Range(100, 20)];
        int[] chosen = [.. prompt, .. Enumerable.Range(1, 30), 7];
        int[] rejected = [.. prompt, .. Enumerable.Range(1, 30), 8];
        Assert.Null(PairLabeller.Label(Rendered(chosen, 20), Rendered(rejected, 20), 40, TruncationMode.InferSeqlen, out var reason, out _));
        Assert.StartsWith("chosen and rejected are identical", reason);

        // Differing early: both cut by infer_seqlen(20, 31, 40) = (16, 24) over the prompt and the longer completion, the same prompt kept, completions trained only.
        int[] early = [.. prompt, 99, .. Enumerable.Range(2, 29), 7];
        var pair = PairLabeller.Label(Rendered(chosen, 20), Rendered(early, 20), 40, TruncationMode.InferSeqlen, out _, out var truncated)!;
        Assert.True(truncated);
        var (source, target) = ExampleLabeller.InferSeqlen(20, 31, 40);
        Assert.Equal(source + target, pair.Chosen.Length);
        Assert.Equal(pair.Chosen.Ids[..source], pair.Rejected.Ids[..source]);
        Assert.Equal(target, pair.Chosen.TrainedCount);
        Assert.All(pair.Chosen.Trained[..source], t => Assert.False(t));
    }
}
