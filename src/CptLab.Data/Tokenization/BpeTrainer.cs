using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CptLab.Core;

namespace CptLab.Data.Tokenization;

public sealed record BpeTrainerOptions
{
    /// <summary>Total vocabulary: 256 byte tokens + merges + Llama-3's 256 special tokens.</summary>
    public int VocabSize { get; init; } = 16_384;

    /// <summary>A pair seen fewer times than this is never merged (training stops early instead).</summary>
    public int MinPairCount { get; init; } = 2;

    public string Pattern { get; init; } = Llama3Format.Pattern;
}

/// <summary>
/// Trains a byte-level BPE vocabulary the way Hugging Face's BpeTrainer does: pre-tokenize with the Llama-3
/// pattern, count distinct words, then repeatedly merge the most frequent adjacent pair (ties: smaller ids
/// first), keeping pair counts up to date incrementally so each merge costs only the words that contain it.
/// Ids: 0–255 are the bytes, then merges in order, then Llama-3's 256 special tokens, so the saved
/// tokenizer.json works with the Llama-3 chat template and loads in Hugging Face tokenizers.
/// </summary>
public static class BpeTrainer
{
    public static TrainedBpe Train(IEnumerable<string> texts, BpeTrainerOptions options, IProgress<double>? progress = null)
    {
        var mergeBudget = options.VocabSize - 256 - Llama3Format.SpecialTokenCount;
        if (mergeBudget < 1)
            throw new CptLabException($"vocabulary size {options.VocabSize} leaves no room for merges: it must exceed 256 bytes + {Llama3Format.SpecialTokenCount} special tokens");

        var wordCounts = CountWords(texts, Llama3Format.CompilePattern(options.Pattern));
        if (wordCounts.Count == 0) throw new CptLabException("the tokenizer training sample is empty: no text was read from the sources");

        // Words as symbol arrays (initially bytes), sorted so that everything downstream is order-independent.
        var entries = wordCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToArray();
        var words = new int[entries.Length][];
        var counts = new long[entries.Length];
        for (var w = 0; w < entries.Length; w++)
        {
            var b = Encoding.UTF8.GetBytes(entries[w].Key);
            words[w] = Array.ConvertAll(b, x => (int)x);
            counts[w] = entries[w].Value;
        }

        var tokenBytes = new List<byte[]>(options.VocabSize);
        for (var i = 0; i < 256; i++) tokenBytes.Add([(byte)i]);
        var idOfBytes = new Dictionary<string, int>(); // byte-level string → id
        for (var i = 0; i < 256; i++) idOfBytes[ByteLevel.Encode(tokenBytes[i])] = i;

        var pairCount = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        for (var w = 0; w < words.Length; w++) AddPairs(words[w], counts[w], w, pairCount, where);

        // Max-heap by (count desc, pair asc) with lazy deletion: a popped entry whose count is stale is re-queued.
        var heap = new PriorityQueue<long, (long, long)>();
        foreach (var (pair, c) in pairCount) heap.Enqueue(pair, (-c, pair));

        var merges = new List<(int A, int B)>(mergeBudget);
        var changed = new HashSet<long>();
        while (merges.Count < mergeBudget && heap.TryDequeue(out var best, out var prio))
        {
            var current = pairCount.GetValueOrDefault(best);
            if (current != -prio.Item1)
            {
                if (current > 0) heap.Enqueue(best, (-current, best));
                continue;
            }
            if (current < options.MinPairCount) break;

            var (a, b) = Unpack(best);
            var merged = tokenBytes[a].Concat(tokenBytes[b]).ToArray();
            var key = ByteLevel.Encode(merged);
            if (!idOfBytes.TryGetValue(key, out var newId))
            {
                newId = tokenBytes.Count;
                tokenBytes.Add(merged);
                idOfBytes[key] = newId;
            }
            merges.Add((a, b));

            // Pair counts change only around each merge site (as in HF's Word::merge); only pairs that contain the
            // new token gain, the others keep a stale heap entry that is re-queued with its true count when it surfaces.
            changed.Clear();
            foreach (var w in where[best])
                words[w] = MergeWord(words[w], counts[w], w, a, b, newId, pairCount, where, changed);
            where.Remove(best);
            pairCount.Remove(best);
            foreach (var p in changed)
                if (pairCount.TryGetValue(p, out var c) && c > 0) heap.Enqueue(p, (-c, p));
            if ((merges.Count & 255) == 0) progress?.Report((double)merges.Count / mergeBudget);
        }
        progress?.Report(1.0);
        return new TrainedBpe(tokenBytes, merges, options.Pattern);
    }

    static Dictionary<string, long> CountWords(IEnumerable<string> texts, Regex regex)
    {
        var total = new Dictionary<string, long>(StringComparer.Ordinal);
        var gate = new object();
        // Chunks of texts counted in parallel; each worker has its own dictionary, merged under a lock.
        Parallel.ForEach(Chunk(texts, 256), new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, chunk =>
        {
            var local = new Dictionary<string, long>(StringComparer.Ordinal);
            var lookup = local.GetAlternateLookup<ReadOnlySpan<char>>();
            foreach (var text in chunk)
                foreach (var m in regex.EnumerateMatches(text))
                {
                    var span = text.AsSpan(m.Index, m.Length);
                    if (lookup.TryGetValue(span, out var c)) lookup[span] = c + 1;
                    else lookup[span] = 1;
                }
            lock (gate)
                foreach (var (k, v) in local) total[k] = total.GetValueOrDefault(k) + v;
        });
        return total;
    }

    static IEnumerable<List<string>> Chunk(IEnumerable<string> texts, int size)
    {
        var chunk = new List<string>(size);
        foreach (var t in texts)
        {
            chunk.Add(t);
            if (chunk.Count == size) { yield return chunk; chunk = new List<string>(size); }
        }
        if (chunk.Count > 0) yield return chunk;
    }

    static long Pack(int a, int b) => ((long)a << 32) | (uint)b;
    static (int, int) Unpack(long p) => ((int)(p >> 32), (int)(p & 0xFFFFFFFF));

    /// <summary>Adds the word's pairs to the counts; with <paramref name="onlyWith"/>, indexes only pairs containing that token.</summary>
    static void AddPairs(int[] word, long count, int w, Dictionary<long, long> pairCount, Dictionary<long, HashSet<int>> where, HashSet<long>? changed = null, int onlyWith = -1)
    {
        for (var i = 0; i + 1 < word.Length; i++)
        {
            var p = Pack(word[i], word[i + 1]);
            pairCount[p] = pairCount.GetValueOrDefault(p) + count;
            if (onlyWith >= 0 && word[i] != onlyWith && word[i + 1] != onlyWith) continue;
            if (!where.TryGetValue(p, out var set)) where[p] = set = [];
            set.Add(w);
            changed?.Add(p);
        }
    }

    static int[] MergeWord(int[] word, long count, int w, int a, int b, int id,
        Dictionary<long, long> pairCount, Dictionary<long, HashSet<int>> where, HashSet<long> changed)
    {
        int[]? merged = null;
        var j = 0;
        for (var i = 0; i < word.Length; i++)
        {
            if (i + 1 < word.Length && word[i] == a && word[i + 1] == b)
            {
                if (merged is null) { merged = new int[word.Length]; Array.Copy(word, merged, i); }   // j == i here
                if (j > 0) { Bump(merged[j - 1], a, -count); Gain(merged[j - 1], id); }
                if (i + 2 < word.Length) { Bump(b, word[i + 2], -count); Gain(id, word[i + 2]); }
                merged[j++] = id;
                i++;
            }
            else if (merged is not null) merged[j++] = word[i];
            else j++;
        }
        return merged is null ? word : merged[..j];

        void Bump(int x, int y, long delta) { var p = Pack(x, y); pairCount[p] = pairCount.GetValueOrDefault(p) + delta; }
        void Gain(int x, int y)
        {
            var p = Pack(x, y);
            pairCount[p] = pairCount.GetValueOrDefault(p) + count;
            if (!where.TryGetValue(p, out var set)) where[p] = set = [];
            set.Add(w);
            changed.Add(p);
        }
    }
}

/// <summary>A trained byte-level BPE: token bytes by id and the merges in rank order.</summary>
public sealed class TrainedBpe(IReadOnlyList<byte[]> tokenBytes, IReadOnlyList<(int A, int B)> merges, string pattern)
{
    public IReadOnlyList<byte[]> TokenBytes { get; } = tokenBytes;
    public IReadOnlyList<(int A, int B)> Merges { get; } = merges;
    public string Pattern { get; } = pattern;
    /// <summary>Written as the BPE model's ignore_merges: a pre-token that is itself in the vocabulary is one token (tiktoken's rule).</summary>
    public bool IgnoreMerges { get; init; }
    /// <summary>Whose names the 256 special tokens get (a tiktoken file converted for Llama-3.1 keeps 3.1's <c>&lt;|eom_id|&gt;</c>, …).</summary>
    public Llama3Version SpecialNames { get; init; } = Llama3Version.V3_0;
    public int FirstSpecialId => TokenBytes.Count;
    public int VocabSize => TokenBytes.Count + Llama3Format.SpecialTokenCount;

    /// <summary>
    /// Writes a Hugging Face tokenizer.json: BPE model over GPT-2 byte-level strings, Split(Llama-3 pattern) +
    /// ByteLevel pre-tokenizer, ByteLevel decoder, BOS added by the post-processor as Llama-3's file does.
    /// </summary>
    public void Save(string path) => AtomicFile.Write(path, Write);

    /// <summary>The tokenizer.json that <see cref="Save"/> writes, as bytes.</summary>
    public byte[] ToJsonBytes()
    {
        using var stream = new MemoryStream();
        Write(stream);
        return stream.ToArray();
    }

    void Write(Stream stream)
    {
        var specials = Llama3Format.SpecialTokenNames(SpecialNames);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        for (var i = 0; i < specials.Count; i++)
        {
            w.WriteStartObject();
            w.WriteNumber("id", FirstSpecialId + i);
            w.WriteString("content", specials[i]);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("normalizer");

        w.WriteStartObject("pre_tokenizer");
        w.WriteString("type", "Sequence");
        w.WriteStartArray("pretokenizers");
        w.WriteStartObject();
        w.WriteString("type", "Split");
        w.WriteStartObject("pattern"); w.WriteString("Regex", Pattern); w.WriteEndObject();
        w.WriteString("behavior", "Isolated");
        w.WriteBoolean("invert", false);
        w.WriteEndObject();
        WriteByteLevel(w, addPrefixSpace: false, trimOffsets: true, useRegex: false);
        w.WriteEndArray();
        w.WriteEndObject();

        var bos = Llama3Format.BeginOfText;
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        WriteSpecialPiece(w, bos); WriteSequencePiece(w, "A");
        w.WriteEndArray();
        w.WriteStartArray("pair");
        WriteSpecialPiece(w, bos); WriteSequencePiece(w, "A"); WriteSpecialPiece(w, bos); WriteSequencePiece(w, "B");
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        w.WriteStartObject(bos);
        w.WriteString("id", bos);
        w.WriteStartArray("ids"); w.WriteNumberValue(FirstSpecialId); w.WriteEndArray();
        w.WriteStartArray("tokens"); w.WriteStringValue(bos); w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();

        w.WritePropertyName("decoder");
        WriteByteLevel(w, addPrefixSpace: true, trimOffsets: true, useRegex: true);

        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        if (IgnoreMerges) w.WriteBoolean("ignore_merges", true);
        w.WriteStartObject("vocab");
        for (var id = 0; id < TokenBytes.Count; id++) w.WriteNumber(ByteLevel.Encode(TokenBytes[id]), id);
        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (var (a, b) in Merges) w.WriteStringValue($"{ByteLevel.Encode(TokenBytes[a])} {ByteLevel.Encode(TokenBytes[b])}");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    static void WriteByteLevel(Utf8JsonWriter w, bool addPrefixSpace, bool trimOffsets, bool useRegex)
    {
        w.WriteStartObject();
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", addPrefixSpace);
        w.WriteBoolean("trim_offsets", trimOffsets);
        w.WriteBoolean("use_regex", useRegex);
        w.WriteEndObject();
    }

    static void WriteSpecialPiece(Utf8JsonWriter w, string token)
    {
        w.WriteStartObject(); w.WriteStartObject("SpecialToken");
        w.WriteString("id", token); w.WriteNumber("type_id", 0);
        w.WriteEndObject(); w.WriteEndObject();
    }

    static void WriteSequencePiece(Utf8JsonWriter w, string id)
    {
        w.WriteStartObject(); w.WriteStartObject("Sequence");
        w.WriteString("id", id); w.WriteNumber("type_id", 0);
        w.WriteEndObject(); w.WriteEndObject();
    }
}
