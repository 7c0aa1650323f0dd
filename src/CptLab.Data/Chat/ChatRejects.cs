using System.Text.Json;
using CptLab.Core;

namespace CptLab.Data.Chat;

/// <summary>What one read of chat or preference data kept and rejected, by reason; Read = Kept + rejected.</summary>
public sealed record ChatReadSummary(long Read, long Kept, IReadOnlyDictionary<string, long> Rejected, string? Format, string? RejectsFile);

/// <summary>
/// The rejects file (JSONL: file, line, reason, detail, excerpt) and the counts behind <see cref="ChatReadSummary"/>.
/// The readers count every record they read and reject the unusable ones here; a trainer that later drops a kept
/// example (longer than its cut-off, which needs the tokenizer) calls <see cref="Reject"/> with the example's file
/// and line, and the summary moves it from kept to rejected. The file is written to a temporary name and renamed
/// on <see cref="Dispose"/>, so a crashed read leaves no half file under the real name. Thread-safe.
/// </summary>
public sealed class ChatRejects : IDisposable
{
    static readonly JsonSerializerOptions OneLine = new(Json.SnakeCase) { WriteIndented = false };

    readonly object _lock = new();
    readonly StreamWriter? _writer;
    readonly string? _tmp;
    readonly Dictionary<ChatRejectReason, long> _rejected = [];
    long _read;

    /// <param name="path">The rejects file to write, or null to count only.</param>
    public ChatRejects(string? path = null)
    {
        Path = path is null ? null : System.IO.Path.GetFullPath(path);
        if (Path is null) return;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _tmp = Path + ".tmp";
        _writer = new StreamWriter(_tmp, false, new System.Text.UTF8Encoding(false));
    }

    public string? Path { get; }

    /// <summary>The format the reader used: the one asked for, or the one detected from the first good record.</summary>
    public ChatFormat? Format { get; internal set; }

    public long Read { get { lock (_lock) return _read; } }
    public long Kept { get { lock (_lock) return _read - _rejected.Values.Sum(); } }

    public void Reject(string file, long line, ChatRejectReason reason, string detail, string? excerpt = null)
    {
        lock (_lock)
        {
            _rejected[reason] = _rejected.GetValueOrDefault(reason) + 1;
            _writer?.WriteLine(JsonSerializer.Serialize(new { file, line, reason = reason.Key(), detail, excerpt }, OneLine));
        }
    }

    internal void CountRead() { lock (_lock) _read++; }

    public ChatReadSummary Summary()
    {
        lock (_lock)
        {
            var byReason = _rejected.OrderBy(kv => kv.Key).ToDictionary(kv => kv.Key.Key(), kv => kv.Value);
            return new ChatReadSummary(_read, _read - _rejected.Values.Sum(), byReason, Format?.Key(), Path);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_writer is null || !File.Exists(_tmp)) return;
            _writer.Dispose();
            File.Move(_tmp!, Path!, overwrite: true);
        }
    }
}
