using System.Text;

namespace CptLab.Eval.Execution;

/// <summary>
/// Drains a child's stdout or stderr to the end (so a chatty program never blocks on a full pipe) while keeping only
/// its first <c>headBytes</c> and last 1 KiB: the head for the excerpt, the tail because the line that explains a
/// failure (a traceback's last line) comes last.
/// </summary>
internal sealed class BoundedOutput
{
    const int TailBytes = 1024;
    readonly int _headBytes;
    readonly MemoryStream _head = new();
    readonly byte[] _tail = new byte[TailBytes];
    int _tailStart, _tailLength;
    long _total;

    BoundedOutput(int headBytes) => _headBytes = headBytes;

    public static async Task<BoundedOutput> ReadToEndAsync(Stream stream, int headBytes)
    {
        var output = new BoundedOutput(headBytes);
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer).ConfigureAwait(false)) > 0) output.Append(buffer.AsSpan(0, n));
        return output;
    }

    void Append(ReadOnlySpan<byte> chunk)
    {
        var toHead = (int)Math.Min(chunk.Length, Math.Max(0, _headBytes - _head.Length));
        _head.Write(chunk[..toHead]);
        foreach (var b in chunk)
        {
            _tail[(_tailStart + _tailLength) % TailBytes] = b;
            if (_tailLength < TailBytes) _tailLength++; else _tailStart = (_tailStart + 1) % TailBytes;
        }
        _total += chunk.Length;
    }

    /// <summary>All of it when it fits, else the head, a marker with the count of bytes left out, and the tail.</summary>
    public string Excerpt()
    {
        if (_total <= _head.Length) return Decode(_head.ToArray());
        var tail = TailArray();
        var leftOut = _total - _head.Length - tail.Length;
        if (leftOut <= 0) return Decode([.. _head.ToArray(), .. tail[(int)(-leftOut)..]]);
        return Decode(_head.ToArray()) + $"\n[… {leftOut} bytes left out …]\n" + Decode(tail);
    }

    /// <summary>The last non-blank line of everything written (e.g. "AssertionError"), or "" when there is none.</summary>
    public string LastLine()
    {
        var lines = Decode(TailArray()).Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return lines.Length == 0 ? "" : lines[^1];
    }

    /// <summary>The first line of the output (bwrap and prlimit report set-up errors there).</summary>
    public string FirstLine()
    {
        var text = Decode(_head.ToArray());
        var end = text.IndexOf('\n');
        return (end < 0 ? text : text[..end]).Trim();
    }

    byte[] TailArray()
    {
        var tail = new byte[_tailLength];
        for (var i = 0; i < _tailLength; i++) tail[i] = _tail[(_tailStart + i) % TailBytes];
        return tail;
    }

    static string Decode(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
