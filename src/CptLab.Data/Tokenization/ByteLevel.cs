namespace CptLab.Data.Tokenization;

/// <summary>
/// GPT-2's reversible byte ↔ printable-character map, which byte-level BPE vocabularies in tokenizer.json use:
/// printable Latin-1 bytes stand for themselves, the other 68 bytes are shifted to U+0100…U+0143 (space → 'Ġ').
/// </summary>
public static class ByteLevel
{
    static readonly char[] _byteToChar = BuildByteToChar();
    static readonly Dictionary<char, byte> _charToByte = BuildCharToByte();

    public static char ToChar(byte b) => _byteToChar[b];

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) chars[i] = _byteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Bytes of a vocabulary string, or null when it contains a character outside the map (not a byte-level token).</summary>
    public static byte[]? Decode(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            if (!_charToByte.TryGetValue(token[i], out var b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        var shifted = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return map;
    }

    static Dictionary<char, byte> BuildCharToByte()
    {
        var d = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++) d[_byteToChar[b]] = (byte)b;
        return d;
    }
}
