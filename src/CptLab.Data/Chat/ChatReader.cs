using System.Text.Json;
using CptLab.Data.Sources;
using CptLab.Data.Tokenization;
using static CptLab.Data.Chat.MessageParsing;

namespace CptLab.Data.Chat;

/// <summary>
/// Streams SFT conversations from JSONL / JSON / Parquet files (optionally .gz/.zst) in the messages, ShareGPT or
/// Alpaca layout. Every record is counted in <paramref name="rejects"/>; an unusable one is rejected there with its
/// reason, file and line, and reading goes on. Nothing throws for bad data.
/// </summary>
public static class ChatReader
{
    public static IEnumerable<ChatExample> Read(IEnumerable<string> files, ChatFormat format, ChatRejects rejects) =>
        Records.Read(files, format, rejects, preference: false, (r, f) => new ChatExample(Conversation(r.Value, f), r.File, r.Line));

    public static IEnumerable<ChatExample> Read(string file, ChatFormat format, ChatRejects rejects) => Read([file], format, rejects);

    static List<ChatMessage> Conversation(JsonElement record, ChatFormat format)
    {
        var messages = format switch
        {
            ChatFormat.Messages => OpenAiMessages(Required(record, "messages"), "messages"),
            ChatFormat.ShareGpt => WithSystem(record, ShareGptTurns(Required(record, "conversations"), "conversations")),
            _ => Alpaca(record, RequiredString(record, "output", "the record")),
        };
        RoleOrder.CheckConversation(messages);
        return messages;
    }

    /// <summary>ShareGPT's optional top-level system prompt (LLaMA-Factory's <c>system</c> column) goes first.</summary>
    internal static List<ChatMessage> WithSystem(JsonElement record, List<ChatMessage> turns)
    {
        if (OptionalString(record, "system") is { } system && !string.IsNullOrWhiteSpace(system)) turns.Insert(0, new ChatMessage("system", system));
        return turns;
    }

    /// <summary>
    /// Alpaca as LLaMA-Factory reads it: system, then the history pairs, then instruction + "\n" + input as the user
    /// turn (input left out when empty), then <paramref name="reply"/> (output; or chosen/rejected for preferences,
    /// which pass null and add the replies themselves).
    /// </summary>
    internal static List<ChatMessage> Alpaca(JsonElement record, string? reply)
    {
        var messages = WithSystem(record, []);
        if (record.TryGetProperty("history", out var history) && history.ValueKind != JsonValueKind.Null)
        {
            if (history.ValueKind != JsonValueKind.Array) throw Missing($"\"history\" is {history.ValueKind}, not a list of [user, assistant] pairs");
            var i = 0;
            foreach (var pair in history.EnumerateArray())
            {
                var at = $"history[{i++}]";
                if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2 || pair.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                    throw Missing($"{at} is not a [user, assistant] pair of strings");
                messages.Add(NonEmpty(new ChatMessage("user", pair[0].GetString()!), at + "[0]"));
                messages.Add(NonEmpty(new ChatMessage("assistant", pair[1].GetString()!), at + "[1]"));
            }
        }
        var instruction = RequiredString(record, "instruction", "the record");
        var input = OptionalString(record, "input");
        var user = string.IsNullOrEmpty(input) ? instruction : instruction + "\n" + input;
        messages.Add(NonEmpty(new ChatMessage("user", user), "instruction"));
        if (reply is not null) messages.Add(NonEmpty(new ChatMessage("assistant", reply), "output"));
        return messages;
    }
}

/// <summary>The read loop both readers share: count, detect the format once, parse, reject what does not parse.</summary>
static class Records
{
    public static IEnumerable<T> Read<T>(IEnumerable<string> files, ChatFormat format, ChatRejects rejects, bool preference, Func<JsonRecord, ChatFormat, T> parse)
    {
        ChatFormat? chosen = format == ChatFormat.Auto ? null : format;
        if (chosen is not null) rejects.Format = chosen;
        foreach (var file in files)
            foreach (var record in RecordReader.Read(file))
            {
                rejects.CountRead();
                if (record.Error is { } error)
                {
                    rejects.Reject(record.File, record.Line, ChatRejectReasons.From(error), record.Detail ?? "", record.Excerpt);
                    continue;
                }
                if (record.Value.ValueKind != JsonValueKind.Object)
                {
                    Reject(record, ChatRejectReason.MalformedJson, $"expected a JSON object, found {record.Value.ValueKind}");
                    continue;
                }
                if (chosen is null)
                {
                    chosen = ChatFormats.Detect(record.Value, preference);
                    if (chosen is null)
                    {
                        Reject(record, ChatRejectReason.UnknownFormat, preference
                            ? "no \"prompt\"/\"chosen\", \"conversations\" or \"instruction\" field to tell the format by; set the format"
                            : "no \"messages\", \"conversations\" or \"instruction\" field to tell the format by; set the format");
                        continue;
                    }
                    rejects.Format = chosen;
                }
                T item;
                try { item = parse(record, chosen.Value); }
                catch (RecordRejected r) { Reject(record, r.Reason, r.Message); continue; }
                yield return item;
            }

        void Reject(JsonRecord r, ChatRejectReason reason, string detail) =>
            rejects.Reject(r.File, r.Line, reason, detail, RecordReader.Excerpt(r.Value.GetRawText()));
    }
}
