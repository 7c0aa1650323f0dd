using System.IO.Compression;

namespace CptLab.Data.Tests;

/// <summary>A fresh temporary folder per test, removed afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cptlab-data-" + Guid.NewGuid().ToString("N")[..10]);
    public TempDir() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}

public static class Cl100k
{
    /// <summary>The cl100k_base rank file (tiktoken text format) shipped inside Microsoft.ML.Tokenizers.Data.Cl100kBase.</summary>
    public static byte[] RankFile()
    {
        var asm = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Cl100kBase");
        using var s = asm.GetManifestResourceStream("cl100k_base.tiktoken.deflate")!;
        using var d = new DeflateStream(s, CompressionMode.Decompress);
        using var ms = new MemoryStream();
        d.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>
    /// A Llama-3-shaped tiktoken file: cl100k's 100,256 ranks (which Llama-3's vocabulary starts with) padded to
    /// 128,000 with tokens that contain byte 0xFF — never valid UTF-8, so never produced from text — so that the
    /// special tokens land on Llama-3's ids 128000–128255.
    /// </summary>
    public static string WriteLlama3Shaped(string path)
    {
        // The package stores "Capacity: N" then one base64 token per line, the rank being the line's index;
        // tiktoken files (and Llama-3's tokenizer.model) are "base64 rank" lines.
        var raw = System.Text.Encoding.ASCII.GetString(RankFile()).Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var lines = raw.Skip(1).Select((b64, rank) => $"{b64} {rank}").ToList();
        var next = lines.Count;
        for (var i = 0; next < 128_000; i++, next++)
            lines.Add($"{Convert.ToBase64String([0xFF, (byte)(i >> 8), (byte)i])} {next}");
        System.IO.File.WriteAllText(path, string.Join('\n', lines) + "\n");
        return path;
    }
}
