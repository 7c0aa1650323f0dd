namespace CptLab.Data.Sources;

/// <summary>Why a document did not make it into the shards. The manifest counts each; the rejects file lists each.</summary>
public enum DropReason
{
    // Bad input: the record could not be read as text.
    MalformedJson,
    MissingField,
    InvalidUtf8,
    TruncatedStream,
    UnreadableFile,
    // Cleaning: the text was read and judged.
    Empty,
    TooShort,
    TooLong,
    WrongLanguage,
    ExactDuplicate,
    NearDuplicate,
}

public static class DropReasons
{
    public static bool IsBadInput(this DropReason r) => r <= DropReason.UnreadableFile;

    /// <summary>snake_case name used in manifests and the rejects file.</summary>
    public static string Key(this DropReason r) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(r.ToString());
}

/// <summary>
/// One record read from a source file: its text, or why it could not be read. <see cref="Line"/> is the
/// 1-based line (txt, jsonl), record (json) or row (parquet) where it starts.
/// </summary>
public readonly record struct RawDocument(string File, long Line, string? Text, DropReason? Error = null, string? Detail = null)
{
    public static RawDocument Bad(string file, long line, DropReason reason, string detail) => new(file, line, null, reason, detail);
}
