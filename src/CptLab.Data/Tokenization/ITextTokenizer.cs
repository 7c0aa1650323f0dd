namespace CptLab.Data.Tokenization;

/// <summary>One turn of a conversation, as the chat template sees it.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// The tokenizer contract the data pipeline, the trainer and the server share. Ids are the model's ids.
/// Plain <see cref="Encode(string, List{int})"/> treats text as text: a literal "&lt;|eot_id|&gt;" in a
/// corpus is encoded as characters, never as the control token (a corpus cannot inject turn boundaries);
/// only <see cref="EncodeWithSpecials"/> (chat templates, prompts we build) maps special-token strings to ids.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>Largest id + 1: the embedding rows a model needs.</summary>
    int VocabSize { get; }

    /// <summary>Beginning of text (Llama-3 `&lt;|begin_of_text|&gt;`), or null when the tokenizer has none.</summary>
    int? BosId { get; }

    /// <summary>End of a document (Llama-3 `&lt;|end_of_text|&gt;`): appended to every pre-training document.</summary>
    int EosId { get; }

    /// <summary>End of a chat turn (Llama-3 `&lt;|eot_id|&gt;`), or null when the tokenizer has none.</summary>
    int? EotId { get; }

    /// <summary>End of a message that a tool result continues (Llama-3.1 `&lt;|eom_id|&gt;`), or null when the tokenizer has none.</summary>
    int? EomId { get; }

    /// <summary>The ids that end generation: end of text, and end of message / turn where the tokenizer has them.</summary>
    IReadOnlyList<int> StopTokenIds { get; }

    /// <summary>Special token text → id.</summary>
    IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>Appends the ids of <paramref name="text"/> (no BOS, no EOS, specials as plain text) to <paramref name="ids"/>.</summary>
    void Encode(string text, List<int> ids);

    /// <summary>Appends the ids of <paramref name="text"/>, mapping special-token strings to their ids.</summary>
    void EncodeWithSpecials(string text, List<int> ids);

    /// <summary>Text of the ids; special tokens appear as their strings.</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>
    /// The token's own bytes: for byte-level BPE they may be part of a UTF-8 character (one byte of a CJK
    /// character), where <c>Decode([id])</c> gives U+FFFD; for a special token, the UTF-8 of its string. The
    /// default (for tokenizers with no byte form) is the UTF-8 of the decoded text.
    /// </summary>
    byte[] TokenBytes(int id) => System.Text.Encoding.UTF8.GetBytes(Decode([id]));

    /// <summary>The model's chat template applied to <paramref name="messages"/>, as text ready for <see cref="EncodeWithSpecials"/>.</summary>
    string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt);
}

public static class TextTokenizerExtensions
{
    public static int[] Encode(this ITextTokenizer tokenizer, string text, bool addBos = false)
    {
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos && tokenizer.BosId is int bos) ids.Add(bos);
        tokenizer.Encode(text, ids);
        return [.. ids];
    }

    /// <summary>The chat template applied and encoded: the ids a chat model is trained on or prompted with.</summary>
    public static int[] EncodeChat(this ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var ids = new List<int>();
        tokenizer.EncodeWithSpecials(tokenizer.ApplyChatTemplate(messages, addGenerationPrompt), ids);
        return [.. ids];
    }

    public static string Decode(this ITextTokenizer tokenizer, IEnumerable<int> ids) => tokenizer.Decode([.. ids]);
}
