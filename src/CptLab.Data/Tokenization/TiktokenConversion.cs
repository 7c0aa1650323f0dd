using System.Text;
using CptLab.Core;

namespace CptLab.Data.Tokenization;

/// <summary>
/// Meta's tiktoken <c>tokenizer.model</c> (lines of "base64-token rank") as a Hugging Face byte-level BPE, so that a model
/// folder whose tokenizer came as <c>tokenizer.model</c> also carries the <c>tokenizer.json</c> transformers, vLLM and
/// llama.cpp's converter read, as transformers' TikTokenConverter writes it (Meta's tokenizer.json is its output: the test
/// converts Meta's ranks back and gets Meta's file's vocabulary and 280,147 merges in order).
/// </summary>
public static class TiktokenConversion
{
    /// <param name="specialNames">The Llama-3 version whose special token names the file gets (tokenizer.model is the same file for 3.0 and 3.1).</param>
    public static TrainedBpe ToBpe(string tiktokenPath, Llama3Version specialNames = Llama3Version.V3_0)
    {
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal); // latin-1 string of the token's bytes → rank
        var tokens = new List<byte[]>();
        int lineNo = 0;
        foreach (var raw in File.ReadLines(tiktokenPath))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            var space = line.IndexOf(' ');
            byte[] bytes;
            int rank;
            try
            {
                bytes = Convert.FromBase64String(line[..space]);
                rank = int.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is FormatException or ArgumentOutOfRangeException or OverflowException)
            {
                throw new CorruptFileException(tiktokenPath, $"line {lineNo}: expected \"<base64 token> <rank>\"");
            }
            if (rank != tokens.Count)
                throw new CorruptFileException(tiktokenPath, $"line {lineNo}: rank {rank} where {tokens.Count} was expected; ranks must run 0, 1, 2, … to map onto token ids");
            if (!ranks.TryAdd(Key(bytes), rank)) throw new CorruptFileException(tiktokenPath, $"line {lineNo}: the token of rank {rank} repeats an earlier one");
            tokens.Add(bytes);
        }
        for (int b = 0; b < 256; b++)
            if (!ranks.ContainsKey(Key([(byte)b])))
                throw new CorruptFileException(tiktokenPath, $"byte 0x{b:X2} has no token of its own; a byte-level BPE needs all 256");

        // Every split of each token into two tokens is a merge, ordered by the rank of the token it makes, then by the ranks
        // of its halves; with ignore_merges (a pre-token that is itself a token is taken whole, as tiktoken does) this
        // encodes exactly as tiktoken, also for tokens that no sequence of lower-ranked merges reaches (Llama-3 has some).
        var merges = new List<(int A, int B)>();
        var local = new List<(int A, int B)>();
        for (int rank = 0; rank < tokens.Count; rank++)
        {
            var t = tokens[rank];
            local.Clear();
            for (int cut = 1; cut < t.Length; cut++)
                if (ranks.TryGetValue(Key(t.AsSpan(0, cut)), out var a) && ranks.TryGetValue(Key(t.AsSpan(cut)), out var b)) local.Add((a, b));
            local.Sort();
            merges.AddRange(local);
        }
        return new TrainedBpe(tokens, merges, Llama3Format.Pattern) { IgnoreMerges = true, SpecialNames = specialNames };
    }

    static string Key(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);
}
