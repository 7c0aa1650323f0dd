using System.Text;
using System.Text.Json;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Chat;

/// <summary>
/// Fields of one record → <see cref="ChatMessage"/>s, shared by the three formats. Anything unusable throws
/// <see cref="RecordRejected"/> with the reason and where in the record it is.
/// </summary>
static class MessageParsing
{
    /// <summary>An OpenAI messages list: role system|developer|user|assistant, content a string or text parts.</summary>
    public static List<ChatMessage> OpenAiMessages(JsonElement list, string where)
    {
        if (list.ValueKind != JsonValueKind.Array) throw Missing($"\"{where}\" is {list.ValueKind}, not a list of messages");
        var messages = new List<ChatMessage>();
        var i = 0;
        foreach (var m in list.EnumerateArray())
        {
            var at = $"{where}[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw Missing($"{at} is {m.ValueKind}, not a message object");
            var role = RequiredString(m, "role", at) switch
            {
                "system" or "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                var r => throw new RecordRejected(ChatRejectReason.UnknownRole, $"{at}.role is \"{r}\": only system, user and assistant are used"),
            };
            if (!m.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
                throw Missing($"{at} has no content (tool calls are not used)");
            messages.Add(NonEmpty(new ChatMessage(role, ContentText(content, $"{at}.content")), at));
        }
        return messages;
    }

    /// <summary>A ShareGPT turn list: from human|user|gpt|assistant|system, value a string (LLaMA-Factory's tags).</summary>
    public static List<ChatMessage> ShareGptTurns(JsonElement list, string where)
    {
        if (list.ValueKind != JsonValueKind.Array) throw Missing($"\"{where}\" is {list.ValueKind}, not a list of turns");
        var messages = new List<ChatMessage>();
        var i = 0;
        foreach (var turn in list.EnumerateArray()) messages.Add(ShareGptTurn(turn, $"{where}[{i++}]"));
        return messages;
    }

    public static ChatMessage ShareGptTurn(JsonElement turn, string at)
    {
        if (turn.ValueKind != JsonValueKind.Object) throw Missing($"{at} is {turn.ValueKind}, not a {{\"from\", \"value\"}} object");
        var role = RequiredString(turn, "from", at) switch
        {
            "human" or "user" => "user",
            "gpt" or "assistant" => "assistant",
            "system" => "system",
            var r => throw new RecordRejected(ChatRejectReason.UnknownRole, $"{at}.from is \"{r}\": only system, human/user and gpt/assistant are used"),
        };
        return NonEmpty(new ChatMessage(role, RequiredString(turn, "value", at)), at);
    }

    /// <summary>Content as OpenAI sends it: a string, or text parts concatenated (any other part type is refused).</summary>
    static string ContentText(JsonElement content, string at)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw Missing($"{at} is {content.ValueKind}, not a string or a list of text parts");
        var text = new StringBuilder();
        var i = 0;
        foreach (var part in content.EnumerateArray())
        {
            var p = $"{at}[{i++}]";
            var type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type != "text") throw new RecordRejected(ChatRejectReason.UnsupportedContent, $"{p} is a \"{type ?? part.ValueKind.ToString()}\" part: only text parts are used");
            text.Append(RequiredString(part, "text", p));
        }
        return text.ToString();
    }

    public static string RequiredString(JsonElement obj, string name, string where)
    {
        if (!obj.TryGetProperty(name, out var v)) throw Missing($"{where} has no \"{name}\"");
        if (v.ValueKind != JsonValueKind.String) throw Missing($"{where}.{name} is {v.ValueKind}, not a string");
        return v.GetString()!;
    }

    public static string? OptionalString(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw Missing($"\"{name}\" is {v.ValueKind}, not a string");
        return v.GetString();
    }

    public static JsonElement Required(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : throw Missing($"no \"{name}\" field");

    public static ChatMessage NonEmpty(ChatMessage m, string at) =>
        string.IsNullOrWhiteSpace(m.Content) ? throw new RecordRejected(ChatRejectReason.EmptyContent, $"{at} ({m.Role}) has empty content") : m;

    public static RecordRejected Missing(string detail) => new(ChatRejectReason.MissingField, detail);
}
