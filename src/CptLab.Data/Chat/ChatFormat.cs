using System.Text.Json;
using CptLab.Core;

namespace CptLab.Data.Chat;

/// <summary>
/// The record layouts the chat and preference readers accept (docs/post-training-data.md). <see cref="Auto"/> decides
/// from the first record that parses as a JSON object and keeps that choice for the rest of the read.
/// </summary>
public enum ChatFormat
{
    Auto,
    /// <summary>OpenAI / TRL: <c>messages</c> (SFT) or <c>prompt</c>/<c>chosen</c>/<c>rejected</c> (preferences).</summary>
    Messages,
    /// <summary>ShareGPT: <c>conversations</c> of <c>from</c>/<c>value</c> turns (+ <c>chosen</c>/<c>rejected</c> for preferences).</summary>
    ShareGpt,
    /// <summary>Alpaca: <c>instruction</c>, <c>input</c>, <c>output</c> (or <c>chosen</c>/<c>rejected</c>), <c>system</c>, <c>history</c>.</summary>
    Alpaca,
}

public static class ChatFormats
{
    /// <summary>The name used on the command line and in summaries: messages, sharegpt, alpaca, auto.</summary>
    public static string Key(this ChatFormat f) => f.ToString().ToLowerInvariant();

    public static ChatFormat Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "auto" => ChatFormat.Auto,
        "messages" or "openai" => ChatFormat.Messages,
        "sharegpt" => ChatFormat.ShareGpt,
        "alpaca" => ChatFormat.Alpaca,
        _ => throw new CptLabException($"unknown chat format '{name}': use messages, sharegpt, alpaca or auto"),
    };

    /// <summary>The format a record's keys announce, or null when it names none of them.</summary>
    internal static ChatFormat? Detect(JsonElement record, bool preference)
    {
        if (record.TryGetProperty("conversations", out _)) return ChatFormat.ShareGpt;
        if (record.TryGetProperty("instruction", out _)) return ChatFormat.Alpaca;
        if (!preference && record.TryGetProperty("messages", out _)) return ChatFormat.Messages;
        if (preference && (record.TryGetProperty("chosen", out _) || record.TryGetProperty("prompt", out _))) return ChatFormat.Messages;
        return null;
    }
}
