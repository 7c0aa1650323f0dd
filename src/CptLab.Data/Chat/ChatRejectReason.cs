using CptLab.Data.Sources;

namespace CptLab.Data.Chat;

/// <summary>Why a chat or preference record was not used. The summary counts each; the rejects file lists each.</summary>
public enum ChatRejectReason
{
    // The record could not be read (the same reasons as DocumentReader's).
    MalformedJson,
    MissingField,
    InvalidUtf8,
    TruncatedStream,
    UnreadableFile,
    // The record was read and is not a usable conversation.
    UnknownFormat,
    UnknownRole,
    UnsupportedContent,
    EmptyContent,
    RoleOrder,
    NoFinalAssistant,
    NotOneReply,
    ChosenEqualsRejected,
    // Decided by the trainer, which has the tokenizer and the chat template.
    /// <summary>Longer than the cut-off (dropped, or nothing trained left after truncation).</summary>
    TooLong,
    /// <summary>The model's chat template does not render a message's text where it can be found (its turns cannot be labelled).</summary>
    Unrenderable,
}

public static class ChatRejectReasons
{
    /// <summary>snake_case name used in summaries and the rejects file.</summary>
    public static string Key(this ChatRejectReason r) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(r.ToString());

    internal static ChatRejectReason From(DropReason r) => r switch
    {
        DropReason.MalformedJson => ChatRejectReason.MalformedJson,
        DropReason.MissingField => ChatRejectReason.MissingField,
        DropReason.InvalidUtf8 => ChatRejectReason.InvalidUtf8,
        DropReason.TruncatedStream => ChatRejectReason.TruncatedStream,
        _ => ChatRejectReason.UnreadableFile,
    };
}

/// <summary>Thrown inside the record parsers only; the readers turn it into a reject and go on.</summary>
sealed class RecordRejected(ChatRejectReason reason, string detail) : Exception(detail)
{
    public ChatRejectReason Reason { get; } = reason;
}
