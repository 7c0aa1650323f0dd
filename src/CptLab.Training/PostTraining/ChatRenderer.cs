using System.Text;
using CptLab.Core;
using CptLab.Data.Tokenization;

namespace CptLab.Training.PostTraining;

/// <summary>
/// A conversation rendered with the model's own chat template and tokenized as a whole, exactly the ids transformers'
/// <c>apply_chat_template(messages, tokenize=True)</c> gives, with the token span of each assistant message: its content
/// and the special token that ends its turn (Llama-3's <c>&lt;|eot_id|&gt;</c>, ChatML's <c>&lt;|im_end|&gt;</c>).
/// </summary>
/// <param name="AssistantSpans">Per assistant message, in order, [Start, End) token indices.</param>
public sealed record RenderedConversation(string Text, int[] Ids, IReadOnlyList<(int Start, int End)> AssistantSpans);

/// <summary>
/// Renders conversations and finds which tokens each assistant message became. The rendering is tokenized once (not
/// piece by piece, which can tokenize differently at the joins); each message's text is then located in the rendering,
/// in order, and mapped to tokens through their byte offsets: a token belongs to a message when it starts inside it.
/// Templates that trim content (Llama-3's <c>| trim</c>) are followed; a template that does not render a message's
/// text at all (or rewrites it) cannot be labelled this way and the conversation is refused with the message named.
/// </summary>
public sealed class ChatRenderer(TextTokenizer tokenizer, ChatTemplate template)
{
    /// <summary>
    /// The date_string a template that prints today's date (Llama-3.1's "Today Date:") is given: fixed, so the same data
    /// renders to the same ids on any day (a resumed run, DPO's stored reference); 26 Jul 2024 is the date those
    /// templates fall back to when none is passed.
    /// </summary>
    public static readonly DateTime TrainingDate = new(2024, 7, 26);

    readonly HashSet<int> _specialIds = [.. tokenizer.SpecialTokens.Values];

    public TextTokenizer Tokenizer => tokenizer;
    public ChatTemplate Template => template;

    /// <exception cref="RenderException">a message's text is not in the rendering.</exception>
    public RenderedConversation Render(IReadOnlyList<ChatMessage> messages)
    {
        var text = template.Render(tokenizer, messages, addGenerationPrompt: false, today: TrainingDate);
        var ids = new List<int>();
        tokenizer.EncodeWithSpecials(text, ids);
        // Byte offset of each token in the rendering; byte-level BPE is lossless, so they must add up to the text.
        var starts = new long[ids.Count + 1];
        for (int i = 0; i < ids.Count; i++) starts[i + 1] = starts[i] + tokenizer.RenderedByteLength(ids[i]);
        var totalBytes = Encoding.UTF8.GetByteCount(text);
        if (starts[^1] != totalBytes)
            throw new CptLabException($"{tokenizer.SourcePath}: the tokens of a rendered conversation stand for {starts[^1]} bytes, the rendering has {totalBytes}; this tokenizer does not round-trip text (not byte-level BPE?)");

        var spans = new List<(int, int)>();
        int at = 0;
        for (int m = 0; m < messages.Count; m++)
        {
            var content = messages[m].Content;
            var (index, length) = Locate(text, content, at);
            if (index < 0)
                throw new RenderException($"message {m + 1} ({messages[m].Role}) does not appear in the rendering of template {template.Name}; its turns cannot be labelled");
            at = index + length;
            if (messages[m].Role != "assistant") continue;
            int end = TokenAt(starts, ByteOffset(text, at));
            if (end < ids.Count && _specialIds.Contains(ids[end])) end++; // the special token that ends the turn
            spans.Add((TokenAt(starts, ByteOffset(text, index)), end));
        }
        return new RenderedConversation(text, [.. ids], spans);
    }

    /// <summary>The content where the template put it, searched from <paramref name="from"/>: verbatim, else trimmed as Llama-3's template does.</summary>
    static (int Index, int Length) Locate(string text, string content, int from)
    {
        if (content.Length > 0)
        {
            var i = text.IndexOf(content, from, StringComparison.Ordinal);
            if (i >= 0) return (i, content.Length);
        }
        var trimmed = content.Trim();
        if (trimmed.Length == 0) return (-1, 0);
        return (text.IndexOf(trimmed, from, StringComparison.Ordinal), trimmed.Length);
    }

    static long ByteOffset(string text, int charIndex) => Encoding.UTF8.GetByteCount(text.AsSpan(0, charIndex));

    /// <summary>The first token starting at or after byte <paramref name="offset"/>.</summary>
    static int TokenAt(long[] starts, long offset)
    {
        int i = Array.BinarySearch(starts, offset);
        return i >= 0 ? i : ~i;
    }
}

/// <summary>A conversation that cannot be rendered or labelled; the reader records it as a reject with its file and line.</summary>
public sealed class RenderException(string message) : Exception(message);
