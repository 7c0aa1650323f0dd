using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CptLab.Core;
using Microsoft.ML.Tokenizers;

namespace CptLab.Data.Tokenization;

/// <summary>
/// <see cref="ITextTokenizer"/> over Microsoft.ML.Tokenizers: a Hugging Face byte-level BPE `tokenizer.json`
/// (Llama-3, Qwen, and the ones <see cref="BpeTrainer"/> writes) or a tiktoken-format `tokenizer.model`
/// (Llama-3's original). Two library tokenizers share one vocabulary: one whose pre-tokenizer knows the
/// special tokens (chat templates) and one that does not (corpus text).
/// </summary>
public sealed class TextTokenizer : ITextTokenizer
{
    readonly Tokenizer? _plain;   // null where RankedBpe encodes plain text
    readonly Tokenizer _withSpecials;
    readonly Regex _preTokenizer;
    readonly RankedBpe? _bpe;
    readonly ThreadLocal<Dictionary<string, int[]>> _pieceIds = new(() => new Dictionary<string, int[]>(PieceCacheSize));

    // Pre-token → ids, per thread (no locks): corpus text repeats its words, so most pieces are found here and
    // never reach BPE. Once full it keeps what it has (the frequent pieces come early) rather than being cleared:
    // bounded memory, ~20 MB a thread.
    const int PieceCacheSize = 200_000;
    const int MaxCachedPiece = 64;
    readonly Dictionary<string, int> _specials;
    /// <summary>Special token id → the UTF-8 length of its string (what <see cref="RenderedByteLength"/> gives for it).</summary>
    readonly Dictionary<int, int> _specialBytes;
    readonly int[] _tokenBytes;
    /// <summary>Each id's bytes (index = id); null for special tokens and ids with no byte form.</summary>
    readonly byte[]?[] _bytes;
    readonly Dictionary<int, string> _specialText = [];

    public string SourcePath { get; }
    public int VocabSize { get; }
    public int? BosId { get; }
    public int EosId { get; }
    public int? EotId { get; }

    /// <summary>End of a message that continues with a tool result (Llama-3.1 `&lt;|eom_id|&gt;`), or null when the tokenizer has none.</summary>
    public int? EomId { get; }

    /// <summary>
    /// The ids that end generation, as Meta's tokenizer.py lists them (end_of_text, eom_id, eot_id), those this
    /// tokenizer has.
    /// </summary>
    public IReadOnlyList<int> StopTokenIds { get; }

    public IReadOnlyDictionary<string, int> SpecialTokens => _specials;

    /// <param name="tokenBytes">Each id's token bytes (index = id); null where an id has no byte form.</param>
    /// <param name="bpe">The plain path's BPE when the vocabulary is tiktoken-equivalent; else <paramref name="plain"/> encodes each piece.</param>
    TextTokenizer(string sourcePath, Tokenizer? plain, Tokenizer withSpecials, Regex preTokenizer, RankedBpe? bpe, Dictionary<string, int> specials, int vocabSize, byte[]?[] tokenBytes)
    {
        _preTokenizer = preTokenizer;
        _bpe = bpe;
        SourcePath = sourcePath;
        _plain = plain;
        _withSpecials = withSpecials;
        _specials = specials;
        _specialBytes = [];
        foreach (var (text, id) in specials)
        {
            _specialBytes.TryAdd(id, System.Text.Encoding.UTF8.GetByteCount(text));
            _specialText.TryAdd(id, text);
        }
        VocabSize = Math.Max(vocabSize, specials.Count == 0 ? 0 : specials.Values.Max() + 1);
        _bytes = new byte[]?[VocabSize];
        Array.Copy(tokenBytes, _bytes, Math.Min(tokenBytes.Length, VocabSize));
        _tokenBytes = new int[VocabSize];
        for (var id = 0; id < VocabSize; id++) _tokenBytes[id] = _bytes[id]?.Length ?? -1;
        foreach (var id in specials.Values) { _tokenBytes[id] = 0; _bytes[id] = null; } // control tokens stand for no text
        BosId = Find(specials, Llama3Format.BeginOfText, "<s>", "<|startoftext|>");
        EosId = Find(specials, Llama3Format.EndOfText, "</s>", "<|endoftext|>", "<|im_end|>")
            ?? throw new CorruptFileException(sourcePath, $"no end-of-text token among the special tokens ({string.Join(", ", specials.Keys.Take(8))}…); CptLab needs one to separate documents");
        EotId = Find(specials, Llama3Format.EotId);
        EomId = Find(specials, Llama3Format.EomId);
        StopTokenIds = new[] { (int?)EosId, EomId, EotId }.OfType<int>().Distinct().ToArray();
    }

    static int? Find(Dictionary<string, int> specials, params string[] names)
    {
        foreach (var n in names) if (specials.TryGetValue(n, out var id)) return id;
        return null;
    }

    /// <summary>
    /// Loads `tokenizer.json` or a tiktoken `tokenizer.model`; <paramref name="path"/> may be either file or a
    /// model folder holding one (tokenizer.json preferred). A tokenizer.json carries its own special token names;
    /// a tokenizer.model does not, so they are those of <paramref name="llama3Version"/>, or else of the version
    /// the file's folder says (<see cref="Llama3Format.DetectVersion"/>: config.json's llama3 rope scaling means
    /// 3.1+), or else 3.0's.
    /// </summary>
    /// <param name="whatToDo">The advice the error gives when a folder holds neither file; each caller knows its own
    /// options (a --tokenizer flag, files to copy), so the message never names one that does not exist.</param>
    public static TextTokenizer Load(string path, string whatToDo = "give a tokenizer.json or tokenizer.model file, or a folder holding one",
        Llama3Version? llama3Version = null)
    {
        if (Directory.Exists(path))
        {
            var json = Path.Combine(path, "tokenizer.json");
            var model = Path.Combine(path, "tokenizer.model");
            if (File.Exists(json)) return FromHuggingFaceJson(json);
            if (File.Exists(model)) return FromTiktokenFile(model, llama3Version ?? Llama3Format.DetectVersion(path) ?? Llama3Version.V3_0);
            throw new CptLabException($"{path}: no tokenizer.json or tokenizer.model in this folder; {whatToDo}");
        }
        if (!File.Exists(path)) throw new CptLabException($"{path}: tokenizer file not found");
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return FromHuggingFaceJson(path);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return FromTiktokenFile(path, llama3Version ?? Llama3Format.DetectVersion(folder) ?? Llama3Version.V3_0);
    }

    // ---- tiktoken ---------------------------------------------------------------------------------------

    /// <summary>
    /// A tiktoken rank file (lines of "base64-token rank"), with Llama-3's pattern and the 256 special tokens of
    /// <paramref name="version"/> (<see cref="Llama3Format.SpecialTokenNames"/>) numbered from
    /// <paramref name="firstSpecialId"/> (default: right after the largest rank, 128000 for Llama-3).
    /// </summary>
    public static TextTokenizer FromTiktokenFile(string path, Llama3Version version = Llama3Version.V3_0, int? firstSpecialId = null)
    {
        var bytes = File.ReadAllBytes(path);
        var (maxRank, tokens) = ReadTiktokenRanks(path, bytes);
        var specials = Llama3Format.SpecialTokens(firstSpecialId ?? maxRank + 1, version);
        TiktokenTokenizer Make(bool knowsSpecials) => TiktokenTokenizer.Create(
            new MemoryStream(bytes, writable: false),
            new RegexPreTokenizer(Llama3Format.Regex, knowsSpecials ? specials : null),
            normalizer: null, specialTokens: specials);
        return new TextTokenizer(path, plain: null, Make(true), Llama3Format.Regex, MakeBpe(path, tokens), specials, maxRank + 1, tokens);
    }

    /// <summary>Checks a tiktoken rank file; returns its largest rank and each rank's token bytes (null where a rank is unused).</summary>
    static (int MaxRank, byte[]?[] Tokens) ReadTiktokenRanks(string path, byte[] bytes)
    {
        var maxRank = -1;
        var lineNo = 0;
        var read = new List<(int Rank, byte[] Bytes)>();
        Span<byte> buf = stackalloc byte[256];
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            lineNo++;
            if (line.TrimEnd('\r').Length == 0) continue;
            var parts = line.TrimEnd('\r').Split(' ');
            if (parts.Length != 2 || !int.TryParse(parts[1], out var rank) || rank < 0 || !Convert.TryFromBase64String(parts[0], buf, out var length))
                throw new CorruptFileException(path, $"line {lineNo}: expected \"<base64 token> <rank>\" as tiktoken files have; is this a SentencePiece model rather than Llama-3's tiktoken file?");
            maxRank = Math.Max(maxRank, rank);
            read.Add((rank, buf[..length].ToArray()));
        }
        if (maxRank < 0) throw new CorruptFileException(path, "empty tiktoken file");
        var tokens = new byte[]?[maxRank + 1];
        foreach (var (rank, token) in read) tokens[rank] = token;
        return (maxRank, tokens);
    }

    static RankedBpe MakeBpe(string path, byte[]?[] tokens)
    {
        try { return new RankedBpe(tokens); }
        catch (ArgumentException e) { throw new CorruptFileException(path, e.Message); }
    }

    // ---- Hugging Face tokenizer.json -------------------------------------------------------------------

    /// <summary>A Hugging Face tokenizer.json with a byte-level BPE model.</summary>
    public static TextTokenizer FromHuggingFaceJson(string path)
    {
        using var doc = Json.ParseFile(path);
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new CorruptFileException(path, "no \"model\" object; is this a Hugging Face tokenizer.json?");
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "BPE")
            throw new CorruptFileException(path, $"model type '{type}' is not supported; CptLab reads byte-level BPE tokenizers (Llama-3, Qwen, GPT-2 style)");
        if (!IsByteLevel(root))
            throw new CorruptFileException(path, "the BPE model is not byte-level (no ByteLevel pre-tokenizer or decoder); SentencePiece-style BPE is not supported");

        var vocab = new Dictionary<string, int>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();
        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var m))
            foreach (var e in m.EnumerateArray())
                merges.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : $"{e[0].GetString()} {e[1].GetString()}");

        var specials = new Dictionary<string, int>();
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                var content = a.GetProperty("content").GetString()!;
                specials[content] = a.GetProperty("id").GetInt32();
                vocab.Remove(content);
            }

        var regex = Llama3Format.CompilePattern(FindSplitPattern(root) ?? Gpt2Pattern);
        var vocabSize = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        var tokenBytes = new byte[]?[vocabSize];
        foreach (var (token, id) in vocab) tokenBytes[id] = ByteLevel.Decode(token);

        // Microsoft.ML.Tokenizers' BPE starts from whole characters where the vocabulary has them, so it misses
        // merges into tokens that hold part of a character (",\xE5\x8F"), which Hugging Face (starting from
        // bytes) makes, and it has no ignore_merges. When ids follow merge order — tiktoken-derived vocabularies
        // such as Llama-3's, and every one BpeTrainer writes — byte-level BPE is tiktoken's rank merging, so load it as that.
        var ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
        if (TiktokenRanks(vocab, merges, ignoreMerges) is { } ranks)
        {
            TiktokenTokenizer MakeTiktoken(bool knowsSpecials) => TiktokenTokenizer.Create(new MemoryStream(ranks, writable: false),
                new RegexPreTokenizer(regex, knowsSpecials ? specials : null), normalizer: null, specialTokens: specials);
            var bpe = MakeBpe(path, ReadTiktokenRanks(path, ranks).Tokens);
            return new TextTokenizer(path, plain: null, MakeTiktoken(true), regex, bpe, specials, vocabSize, tokenBytes);
        }

        BpeTokenizer Make(bool knowsSpecials) => BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(regex, knowsSpecials ? specials : null),
            SpecialTokens = specials,
        });
        return new TextTokenizer(path, Make(false), Make(true), regex, bpe: null, specials, vocabSize, tokenBytes);
    }

    /// <summary>
    /// The vocabulary as a tiktoken rank file (rank = id) when Hugging Face's BPE over these merges is tiktoken's
    /// rank merging; otherwise null. Every token maps to bytes, the 256 single bytes are there, and either
    /// <list type="bullet">
    /// <item>each merge yields a new token whose id grows with the merge's rank (one merge per token: BpeTrainer's files), or</item>
    /// <item>the merges are every split of every token into two tokens, ordered by the id of the token they make,
    /// and <c>ignore_merges</c> is set: what Hugging Face's converter writes for a tiktoken vocabulary (Llama-3's
    /// 280,147 merges for 128,000 tokens). Merging the lowest-ranked pair is then tiktoken's rule, and ignore_merges
    /// (a pre-token that is itself a token is taken whole: " Cumhuriyet" is 118972, which no merge path reaches)
    /// is tiktoken's whole-piece lookup.</item>
    /// </list>
    /// </summary>
    static byte[]? TiktokenRanks(Dictionary<string, int> vocab, List<string> merges, bool ignoreMerges)
    {
        var lastId = -1;
        var oneMergePerToken = true;
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (var m in merges)
        {
            var space = m.IndexOf(' ');
            if (space <= 0 || !vocab.TryGetValue(string.Concat(m.AsSpan(0, space), m.AsSpan(space + 1)), out var id) || id < lastId) return null;
            // (A part may rank after the token it makes — " Cumhur" + "iyet" — in both rules alike: merge priority is the made token's rank.)
            if (!lookup.ContainsKey(m.AsSpan(0, space)) || !lookup.ContainsKey(m.AsSpan(space + 1))) return null;
            if (id == lastId) oneMergePerToken = false;
            lastId = id;
        }
        if (!oneMergePerToken)
        {
            // Every split is listed (no more, no fewer): tiktoken tries every adjacent pair whose join is a token.
            if (!ignoreMerges || merges.Distinct().Count() != merges.Count) return null;
            long splits = 0;
            foreach (var token in vocab.Keys)
                for (var i = 1; i < token.Length; i++)
                    if (lookup.ContainsKey(token.AsSpan(0, i)) && lookup.ContainsKey(token.AsSpan(i))) splits++;
            if (splits != merges.Count) return null;
        }
        var sb = new StringBuilder(vocab.Count * 16);
        var singleBytes = 0;
        foreach (var (token, id) in vocab.OrderBy(kv => kv.Value))
        {
            if (ByteLevel.Decode(token) is not { } bytes) return null;
            if (bytes.Length == 1) singleBytes++;
            sb.Append(Convert.ToBase64String(bytes)).Append(' ').Append(id).Append('\n');
        }
        return singleBytes == 256 && lastId < vocab.Count + 1 ? Encoding.UTF8.GetBytes(sb.ToString()) : null;
    }

    const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    static bool IsByteLevel(JsonElement root)
    {
        static bool Has(JsonElement e) => e.ValueKind switch
        {
            JsonValueKind.Object => (e.TryGetProperty("type", out var t) && t.GetString() == "ByteLevel")
                || e.EnumerateObject().Any(p => Has(p.Value)),
            JsonValueKind.Array => e.EnumerateArray().Any(Has),
            _ => false,
        };
        return (root.TryGetProperty("pre_tokenizer", out var pre) && Has(pre)) || (root.TryGetProperty("decoder", out var dec) && Has(dec));
    }

    static string? FindSplitPattern(JsonElement root)
    {
        static string? Find(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                if (e.TryGetProperty("type", out var t) && t.GetString() == "Split" && e.TryGetProperty("pattern", out var p)
                    && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("Regex", out var r)) return r.GetString();
                foreach (var prop in e.EnumerateObject()) if (Find(prop.Value) is { } s) return s;
            }
            else if (e.ValueKind == JsonValueKind.Array)
                foreach (var x in e.EnumerateArray()) if (Find(x) is { } s) return s;
            return null;
        }
        return root.TryGetProperty("pre_tokenizer", out var pre) ? Find(pre) : null;
    }

    // ---- ITextTokenizer -------------------------------------------------------------------------------

    public void Encode(string text, List<int> ids)
    {
        if (text.Length == 0) return;
        text = WellFormed(text);
        // The library's own loop (pre-tokenize, then BPE each piece on its own) with a lock-free cache in front,
        // and tiktoken's merging done by RankedBpe where the vocabulary allows (see there).
        var cache = _pieceIds.Value!;
        var lookup = cache.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (var m in _preTokenizer.EnumerateMatches(text))
        {
            var piece = text.AsSpan(m.Index, m.Length);
            if (lookup.TryGetValue(piece, out var known)) { ids.AddRange(known); continue; }
            var start = ids.Count;
            if (_bpe is not null) _bpe.Encode(piece, ids);
            else ids.AddRange(_plain!.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
            if (piece.Length > MaxCachedPiece) continue;
            if (cache.Count >= PieceCacheSize) continue;
            lookup[piece] = CollectionsMarshal.AsSpan(ids)[start..].ToArray();
        }
    }

    public void EncodeWithSpecials(string text, List<int> ids)
    {
        if (text.Length == 0) return;
        ids.AddRange(_withSpecials.EncodeToIds(WellFormed(text), considerPreTokenization: true, considerNormalization: true));
    }

    /// <summary>
    /// <paramref name="text"/> with each unpaired surrogate replaced by U+FFFD, as a UTF-8 encoder writes it.
    /// A .NET string can hold one; Hugging Face tokenizers cannot take one at all (Rust strings are UTF-8), and
    /// Microsoft.ML.Tokenizers would encode it as a 3-byte surrogate form no UTF-8 text has. The scan is vectorized
    /// and finds nothing in ordinary text.
    /// </summary>
    static string WellFormed(string text)
    {
        var at = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (at < 0) return text;
        char[]? copy = null;
        for (var i = at; i < text.Length; i++)
        {
            var c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            (copy ??= text.ToCharArray())[i] = '\uFFFD';
        }
        return copy is null ? text : new string(copy);
    }

    public string Decode(ReadOnlySpan<int> ids) => _withSpecials.Decode(ids.ToArray());

    /// <summary>
    /// The token's bytes as the vocabulary holds them (tokenizer.json: its string mapped back through GPT-2's
    /// byte-level table; tiktoken: the rank file's bytes), which may be part of a UTF-8 character; a special
    /// token's are the UTF-8 of its string.
    /// </summary>
    public byte[] TokenBytes(int id)
    {
        if (_specialText.TryGetValue(id, out var special)) return Encoding.UTF8.GetBytes(special);
        if ((uint)id < (uint)_bytes.Length && _bytes[id] is { } bytes) return (byte[])bytes.Clone();
        throw new CptLabException($"{SourcePath}: token id {id} has no bytes in this tokenizer (outside its vocabulary of {VocabSize}, or an unused id)");
    }

    /// <summary>
    /// The UTF-8 bytes of text that <paramref name="ids"/> stand for: each token's byte length, 0 for special tokens
    /// (BOS, EOS, chat markers), which stand for no text. Encoding is lossless (byte-level BPE, no normalizer), so for a
    /// document's ids this is the byte count of the text that was tokenized, and a sequence cut inside a character
    /// counts the bytes on its side of the cut (decoding such a piece would count U+FFFD's three bytes instead).
    /// </summary>
    public long TextByteCount(ReadOnlySpan<int> ids)
    {
        long bytes = 0;
        foreach (var id in ids)
        {
            var n = (uint)id < (uint)_tokenBytes.Length ? _tokenBytes[id] : -1;
            if (n < 0) throw new CptLabException($"{SourcePath}: token id {id} has no byte form in this tokenizer (outside its vocabulary of {VocabSize}, or not a byte-level token); the data was tokenized with a different tokenizer");
            bytes += n;
        }
        return bytes;
    }

    /// <summary>
    /// The UTF-8 length of what token <paramref name="id"/> stands for in rendered text (a chat template's output): its
    /// bytes, or for a special token the bytes of its string. Summed over the ids of a rendering, the byte offset of each
    /// token in it — how the post-training labels find which tokens an assistant message's text became.
    /// </summary>
    public int RenderedByteLength(int id)
    {
        var n = (uint)id < (uint)_tokenBytes.Length ? _tokenBytes[id] : -1;
        if (n > 0) return n;
        if (_specialBytes.TryGetValue(id, out var special)) return special;
        if (n == 0) return 0;
        throw new CptLabException($"{SourcePath}: token id {id} is outside this tokenizer's vocabulary of {VocabSize}");
    }

    public string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        if (!_specials.ContainsKey(Llama3Format.StartHeader) || !_specials.ContainsKey(Llama3Format.EotId) || BosId is null)
            throw new CptLabException($"{SourcePath}: this tokenizer has no Llama-3 header/eot special tokens, so the Llama-3 chat template cannot be applied");
        return Llama3Format.ApplyChatTemplate(messages, addGenerationPrompt);
    }
}
