using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Tokenization;

namespace CptLab.Export;

/// <summary>llama.cpp's token types (llama.cpp <c>enum llama_token_type</c>, gguf-py TokenType), stored as int32.</summary>
public enum GgufTokenType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>
/// A model folder's Hugging Face tokenizer as the GGUF keys llama.cpp reads: <c>tokenizer.ggml.model = gpt2</c>
/// (byte-level BPE) with <c>pre = llama-bpe</c> (Llama-3's pre-tokenizer), one token string and type per id, the
/// merges, the special ids and the chat template. It follows what llama.cpp's convert_hf_to_gguf.py writes for a
/// Llama-3 tokenizer, and refuses a tokenizer llama.cpp would tokenize differently: not byte-level BPE, a split
/// pattern other than Llama-3's, a normalizer, ids beyond the model's vocabulary.
/// </summary>
public sealed class GgufVocabulary
{
    public const string TokenizerFile = "tokenizer.json";
    public const string TokenizerConfigFile = "tokenizer_config.json";

    public required IReadOnlyList<string> Tokens { get; init; }
    public required IReadOnlyList<int> TokenTypes { get; init; }
    public required IReadOnlyList<string> Merges { get; init; }
    public int? BosId { get; init; }
    public int? EosId { get; init; }
    public int? EotId { get; init; }
    public int? PadId { get; init; }
    public bool AddBos { get; init; }
    public string? ChatTemplate { get; init; }

    /// <summary>Writes the tokenizer keys.</summary>
    public void AddTo(GgufWriter w)
    {
        w.Add("tokenizer.ggml.model", GgufValue.Str("gpt2"));
        w.Add("tokenizer.ggml.pre", GgufValue.Str("llama-bpe"));
        w.Add("tokenizer.ggml.tokens", GgufValue.Strings(Tokens));
        w.Add("tokenizer.ggml.token_type", GgufValue.Int32s(TokenTypes));
        w.Add("tokenizer.ggml.merges", GgufValue.Strings(Merges));
        if (BosId is { } bos) w.Add("tokenizer.ggml.bos_token_id", GgufValue.U32((uint)bos));
        if (EosId is { } eos) w.Add("tokenizer.ggml.eos_token_id", GgufValue.U32((uint)eos));
        if (EotId is { } eot) w.Add("tokenizer.ggml.eot_token_id", GgufValue.U32((uint)eot));
        if (PadId is { } pad) w.Add("tokenizer.ggml.padding_token_id", GgufValue.U32((uint)pad));
        w.Add("tokenizer.ggml.add_bos_token", GgufValue.Bool(AddBos));
        if (ChatTemplate is { } t) w.Add("tokenizer.chat_template", GgufValue.Str(t));
    }

    /// <summary>
    /// Reads <c>tokenizer.json</c> (and <c>tokenizer_config.json</c> when present) from <paramref name="modelDir"/>
    /// for a model of <paramref name="vocabSize"/> embedding rows; ids the tokenizer lacks become
    /// <c>[PAD{id}]</c> tokens of type unused, as the converter writes them.
    /// </summary>
    /// <param name="configBos">config.json's bos_token_id, used when tokenizer_config.json names none (the converter's fallback).</param>
    /// <param name="configEos">config.json's first eos_token_id, likewise.</param>
    public static GgufVocabulary Read(string modelDir, int vocabSize, int? configBos = null, int? configEos = null)
    {
        var path = Path.Combine(modelDir, TokenizerFile);
        if (!File.Exists(path))
        {
            var hint = File.Exists(Path.Combine(modelDir, "tokenizer.model"))
                ? "the folder has only a tiktoken tokenizer.model; GGUF export needs the Hugging Face tokenizer.json of the same vocabulary"
                : "copy the tokenizer.json the model was trained with into the folder";
            throw new CptLabException($"{modelDir}: no {TokenizerFile}; {hint}");
        }
        using var doc = Json.ParseFile(path);
        var root = doc.RootElement;
        var model = Object(root, "model", path);
        CheckRepresentable(root, model, path);

        var tokens = new string?[vocabSize];
        var types = new int[vocabSize];
        foreach (var p in model.GetProperty("vocab").EnumerateObject())
        {
            int id = p.Value.GetInt32();
            if (id < 0 || id >= vocabSize)
                throw new CorruptFileException(path, $"token '{p.Name}' has id {id}, outside the model's vocabulary of {vocabSize} (config.json vocab_size); is this the model's tokenizer?");
            tokens[id] = p.Name;
            types[id] = (int)GgufTokenType.Normal;
        }

        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var addedTokens) && addedTokens.ValueKind == JsonValueKind.Array)
            foreach (var a in addedTokens.EnumerateArray())
            {
                var content = a.GetProperty("content").GetString()!;
                int id = a.GetProperty("id").GetInt32();
                if (id < 0 || id >= vocabSize)
                    throw new CorruptFileException(path, $"added token '{content}' has id {id}, outside the model's vocabulary of {vocabSize} (config.json vocab_size)");
                bool special = a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                if (a.TryGetProperty("normalized", out var n) && n.ValueKind == JsonValueKind.True && !special)
                    throw new CorruptFileException(path, $"added token '{content}' (id {id}) is 'normalized'; llama.cpp matches added tokens as they are written, so it would not be found in text as Hugging Face finds it");
                tokens[id] = content;
                // The converter: special, or spelled like a control token (<|...|>), is control; other added tokens are user-defined.
                types[id] = (int)(special || LooksSpecial(content) ? GgufTokenType.Control : GgufTokenType.UserDefined);
                added[content] = id;
            }

        var tokenList = new string[vocabSize];
        for (int i = 0; i < vocabSize; i++)
        {
            if (tokens[i] is { } t) tokenList[i] = t;
            else
            {
                tokenList[i] = $"[PAD{i}]";
                types[i] = (int)GgufTokenType.Unused;
            }
        }

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var m))
            foreach (var e in m.EnumerateArray())
            {
                string a, b;
                if (e.ValueKind == JsonValueKind.String)
                {
                    var text = e.GetString()!;
                    int space = text.IndexOf(' ');
                    if (space <= 0 || text.IndexOf(' ', space + 1) >= 0)
                        throw new CorruptFileException(path, $"merge \"{text}\" is not two byte-level tokens separated by one space");
                    (a, b) = (text[..space], text[(space + 1)..]);
                }
                else (a, b) = (e[0].GetString()!, e[1].GetString()!);
                if (a.Contains(' ') || b.Contains(' '))
                    throw new CorruptFileException(path, $"merge [\"{a}\", \"{b}\"] holds a literal space, which a byte-level vocabulary never does");
                merges.Add($"{a} {b}");
            }

        var config = ReadTokenizerConfig(modelDir);
        int? Special(string key, int? fallback)
        {
            if (config is null || TokenizerConfig.TokenText(config.Value, key, Path.Combine(modelDir, TokenizerConfigFile)) is not { } text) return fallback;
            if (added.TryGetValue(text, out var id)) return id;
            var index = Array.IndexOf(tokenList, text);
            return index >= 0 ? index : throw new ConfigException(Path.Combine(modelDir, TokenizerConfigFile), key, $"'{text}' is not a token of {TokenizerFile}");
        }

        var bos = Special("bos_token", configBos);
        var eos = Special("eos_token", configEos);
        return new GgufVocabulary
        {
            Tokens = tokenList,
            TokenTypes = types,
            Merges = merges,
            BosId = bos,
            EosId = eos,
            EotId = added.TryGetValue(Llama3Format.EotId, out var eot) ? eot : null,
            PadId = Special("pad_token", null),
            AddBos = AddBosToken(config, root, bos),
            // The folder's chat_template.jinja wins over tokenizer_config.json's, as transformers (and cptlab serve) read them.
            ChatTemplate = File.Exists(Path.Combine(modelDir, Data.Tokenization.ChatTemplate.JinjaFile)) ? File.ReadAllText(Path.Combine(modelDir, Data.Tokenization.ChatTemplate.JinjaFile))
                : config is { } c ? TokenizerConfig.ChatTemplate(c, Path.Combine(modelDir, TokenizerConfigFile)) : null,
        };
    }

    /// <summary>
    /// llama.cpp's "llama-bpe" pre-tokenizer is Llama-3's split regex, then byte-level BPE with whole-word lookup; a
    /// tokenizer.json whose pipeline differs would tokenize differently there, so it is refused, naming the part.
    /// </summary>
    static void CheckRepresentable(JsonElement root, JsonElement model, string path)
    {
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "BPE")
            throw new CorruptFileException(path, $"model.type is '{type}'; GGUF export writes byte-level BPE (gpt2) vocabularies only");
        foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix", "unk_token" })
            if (model.TryGetProperty(key, out var v) && v.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined) && !(v.ValueKind == JsonValueKind.String && v.GetString() == ""))
                throw new CorruptFileException(path, $"model.{key} is set; llama.cpp's byte-level BPE has no such notion");
        if (model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True)
            throw new CorruptFileException(path, "model.byte_fallback is true (SentencePiece-style BPE); GGUF export writes byte-level BPE (gpt2) vocabularies only");
        if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind != JsonValueKind.Null)
            throw new CorruptFileException(path, $"has a normalizer ({Describe(norm)}); llama.cpp's llama-bpe tokenizer does not normalize, so text would tokenize differently");

        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
            throw new CorruptFileException(path, "no pre_tokenizer; llama.cpp's llama-bpe needs Llama-3's Split pattern followed by ByteLevel");
        var steps = pre.TryGetProperty("type", out var pt) && pt.GetString() == "Sequence"
            ? pre.GetProperty("pretokenizers").EnumerateArray().ToList()
            : [pre];
        var split = steps.Count == 2 ? steps[0] : default;
        var byteLevel = steps.Count == 2 ? steps[1] : default;
        string? pattern = split.ValueKind == JsonValueKind.Object && Str(split, "type") == "Split"
            && split.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("Regex", out var r) ? r.GetString() : null;
        if (pattern is null || byteLevel.ValueKind != JsonValueKind.Object || Str(byteLevel, "type") != "ByteLevel")
            throw new CorruptFileException(path, $"pre_tokenizer is {Describe(pre)}; llama.cpp's llama-bpe is exactly Split(Llama-3 pattern) then ByteLevel");
        if (pattern != Llama3Format.Pattern)
            throw new CorruptFileException(path, $"pre_tokenizer split pattern {JsonSerializer.Serialize(pattern)} is not Llama-3's; llama.cpp's llama-bpe pre-tokenizer uses {JsonSerializer.Serialize(Llama3Format.Pattern)}");
        if (Str(split, "behavior") is { } behavior && behavior != "Isolated")
            throw new CorruptFileException(path, $"pre_tokenizer Split behavior is '{behavior}', not 'Isolated' as Llama-3's");
        if (split.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True)
            throw new CorruptFileException(path, "pre_tokenizer Split has invert = true, unlike Llama-3's");
        if (byteLevel.TryGetProperty("use_regex", out var ur) && ur.ValueKind == JsonValueKind.True)
            throw new CorruptFileException(path, "pre_tokenizer ByteLevel has use_regex = true (GPT-2's regex applied after Llama-3's); llama.cpp's llama-bpe applies Llama-3's alone");
        if (byteLevel.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
            throw new CorruptFileException(path, "pre_tokenizer ByteLevel has add_prefix_space = true; llama.cpp's llama-bpe adds no prefix space");
    }

    static JsonElement? ReadTokenizerConfig(string modelDir)
    {
        var path = Path.Combine(modelDir, TokenizerConfigFile);
        if (!File.Exists(path)) return null;
        using var doc = Json.ParseFile(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ConfigException(path, "(root)", "expected a JSON object");
        return doc.RootElement.Clone();
    }

    /// <summary>
    /// tokenizer_config.json's add_bos_token when it is a boolean (the converter's source), else whether the
    /// post-processor's template starts with the BOS token; else true when there is a BOS (llama.cpp's own default
    /// for llama-bpe, and what Meta's tokenizer does).
    /// </summary>
    static bool AddBosToken(JsonElement? config, JsonElement root, int? bos)
    {
        if (config is { } c && c.TryGetProperty("add_bos_token", out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False)
            return v.GetBoolean();
        if (root.TryGetProperty("post_processor", out var post) && FindTemplate(post) is { } single)
            return single.ValueKind == JsonValueKind.Array && single.GetArrayLength() > 0
                && single[0].TryGetProperty("SpecialToken", out _);
        return bos is not null;
    }

    static JsonElement? FindTemplate(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        if (Str(e, "type") == "TemplateProcessing" && e.TryGetProperty("single", out var single)) return single;
        if (Str(e, "type") == "Sequence" && e.TryGetProperty("processors", out var ps))
            foreach (var p in ps.EnumerateArray())
                if (FindTemplate(p) is { } s) return s;
        return null;
    }

    /// <summary>The converter's rule for added tokens not flagged special that are control tokens all the same.</summary>
    static bool LooksSpecial(string token) =>
        token is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (token.StartsWith("<|", StringComparison.Ordinal) && token.EndsWith("|>", StringComparison.Ordinal))
        || (token.StartsWith("<｜", StringComparison.Ordinal) && token.EndsWith("｜>", StringComparison.Ordinal))
        || (token.StartsWith("<unused", StringComparison.Ordinal) && token.EndsWith('>'));

    static JsonElement Object(JsonElement root, string key, string path) =>
        root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Object ? v
            : throw new CorruptFileException(path, $"no \"{key}\" object; is this a Hugging Face tokenizer.json?");

    static string? Str(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    static string Describe(JsonElement e)
    {
        var text = e.GetRawText();
        return text.Length <= 160 ? text : text[..160] + "…";
    }
}
