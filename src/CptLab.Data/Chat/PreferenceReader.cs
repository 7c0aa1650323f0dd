using System.Text.Json;
using CptLab.Data.Tokenization;
using static CptLab.Data.Chat.MessageParsing;

namespace CptLab.Data.Chat;

/// <summary>
/// Streams DPO preference pairs, with the same files, counting and rejects as <see cref="ChatReader"/>. Layouts:
/// TRL's explicit prompt (<c>prompt</c>, <c>chosen</c>, <c>rejected</c>, each a string or a messages list), TRL's
/// implicit prompt (only <c>chosen</c>/<c>rejected</c> conversations; their longest common prefix is the prompt),
/// LLaMA-Factory's ShareGPT pairs (<c>conversations</c> + <c>chosen</c>/<c>rejected</c> turns) and Alpaca pairs
/// (<c>instruction</c>, <c>input</c>, <c>chosen</c>/<c>rejected</c> strings). A completion is one assistant message.
/// </summary>
public static class PreferenceReader
{
    public static IEnumerable<PreferenceExample> Read(IEnumerable<string> files, ChatFormat format, ChatRejects rejects) =>
        Records.Read(files, format, rejects, preference: true, (r, f) => Pair(r.Value, f, r.File, r.Line));

    public static IEnumerable<PreferenceExample> Read(string file, ChatFormat format, ChatRejects rejects) => Read([file], format, rejects);

    static PreferenceExample Pair(JsonElement record, ChatFormat format, string file, long line)
    {
        var (prompt, chosen, rejected) = format switch
        {
            ChatFormat.Messages when record.TryGetProperty("prompt", out var p) && p.ValueKind != JsonValueKind.Null => Explicit(record, p),
            ChatFormat.Messages => Implicit(record),
            ChatFormat.ShareGpt => (ChatReader.WithSystem(record, ShareGptTurns(Required(record, "conversations"), "conversations")),
                ShareGptReply(Required(record, "chosen"), "chosen"), ShareGptReply(Required(record, "rejected"), "rejected")),
            _ => (ChatReader.Alpaca(record, reply: null), StringReply(record, "chosen"), StringReply(record, "rejected")),
        };
        RoleOrder.CheckPrompt(prompt);
        if (chosen.Content == rejected.Content)
            throw new RecordRejected(ChatRejectReason.ChosenEqualsRejected, "chosen and rejected are the same reply: the pair teaches nothing");
        return new PreferenceExample(prompt, chosen, rejected, file, line);
    }

    static (List<ChatMessage>, ChatMessage, ChatMessage) Explicit(JsonElement record, JsonElement prompt)
    {
        var messages = prompt.ValueKind == JsonValueKind.String
            ? [NonEmpty(new ChatMessage("user", prompt.GetString()!), "prompt")]
            : OpenAiMessages(prompt, "prompt");
        return (messages, Completion(Required(record, "chosen"), "chosen"), Completion(Required(record, "rejected"), "rejected"));
    }

    /// <summary>A completion: a string, or a messages list holding exactly one assistant message.</summary>
    static ChatMessage Completion(JsonElement value, string name)
    {
        if (value.ValueKind == JsonValueKind.String) return NonEmpty(new ChatMessage("assistant", value.GetString()!), name);
        var messages = OpenAiMessages(value, name);
        return OneReply(messages, name, $"\"{name}\" has {messages.Count} messages");
    }

    /// <summary>TRL's implicit prompt: the longest common prefix of the two conversations; what follows is each reply.</summary>
    static (List<ChatMessage>, ChatMessage, ChatMessage) Implicit(JsonElement record)
    {
        var chosenValue = Required(record, "chosen");
        var rejectedValue = Required(record, "rejected");
        if (chosenValue.ValueKind == JsonValueKind.String || rejectedValue.ValueKind == JsonValueKind.String)
            throw Missing("no \"prompt\": string chosen/rejected need one (an implicit prompt needs both to be messages lists)");
        var chosen = OpenAiMessages(chosenValue, "chosen");
        var rejected = OpenAiMessages(rejectedValue, "rejected");
        var shared = 0;
        while (shared < chosen.Count && shared < rejected.Count && chosen[shared] == rejected[shared]) shared++;
        if (shared == chosen.Count && shared == rejected.Count)
            throw new RecordRejected(ChatRejectReason.ChosenEqualsRejected, "chosen and rejected are the same conversation");
        var what = $"chosen and rejected share {shared} message(s), then chosen has {chosen.Count - shared} and rejected {rejected.Count - shared}";
        var c = OneReply(chosen[shared..], "chosen", what);
        var r = OneReply(rejected[shared..], "rejected", what);
        return (chosen[..shared], c, r);
    }

    static ChatMessage OneReply(List<ChatMessage> messages, string name, string what)
    {
        if (messages.Count != 1)
            throw new RecordRejected(ChatRejectReason.NotOneReply, $"{what}: a completion must be one assistant message");
        if (messages[0].Role != "assistant")
            throw new RecordRejected(ChatRejectReason.RoleOrder, $"\"{name}\" is a {messages[0].Role} message, not the assistant's reply");
        return messages[0];
    }

    /// <summary>LLaMA-Factory's pair: <c>{"from": "gpt", "value": …}</c> (a bare string is taken as the reply too).</summary>
    static ChatMessage ShareGptReply(JsonElement value, string name)
    {
        var m = value.ValueKind == JsonValueKind.String ? NonEmpty(new ChatMessage("assistant", value.GetString()!), name) : ShareGptTurn(value, name);
        return OneReply([m], name, name);
    }

    static ChatMessage StringReply(JsonElement record, string name) =>
        NonEmpty(new ChatMessage("assistant", RequiredString(record, name, "the record")), name);
}
