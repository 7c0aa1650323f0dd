using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Data.Tokenization;

/// <summary>
/// The tokenizer part of a Hugging Face model folder: <c>tokenizer.json</c> (or Meta's tiktoken <c>tokenizer.model</c>),
/// <c>tokenizer_config.json</c> (bos/eos tokens, <c>chat_template</c>, <c>model_max_length</c>, the added tokens) and
/// <c>special_tokens_map.json</c>, gathered once from a source and written into every folder a run saves. Files the
/// source has are copied byte for byte (a Hub model's own chat template and settings stay exactly its own); the two
/// config files are written as transformers' <c>save_pretrained</c> writes them when the source lacks them (a tokenizer
/// that <c>cptlab data train-tokenizer</c> made, or a bare <c>tokenizer.model</c>).
/// </summary>
public sealed class TokenizerFiles
{
    public const string TokenizerJson = "tokenizer.json";
    public const string TiktokenModel = "tokenizer.model";
    public const string ConfigFile = "tokenizer_config.json";
    public const string SpecialTokensMapFile = "special_tokens_map.json";
    public const string ChatTemplateFile = "chat_template.jinja";

    /// <summary>Every file name this writes; a folder being replaced loses stale copies of them.</summary>
    public static IReadOnlyList<string> AllNames { get; } = [TokenizerJson, TiktokenModel, ConfigFile, SpecialTokensMapFile, ChatTemplateFile];

    /// <summary>
    /// Meta's Llama-3-Instruct chat template (tokenizer_config.json of meta-llama/Meta-Llama-3-8B-Instruct; the base model's
    /// omits the add_generation_prompt test and always opens an assistant turn): what a
    /// folder gets when its tokenizer has Llama-3's header and end-of-turn tokens and its source carries no template.
    /// </summary>
    public const string Llama3InstructChatTemplate =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + " +
        "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}" +
        "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    readonly Dictionary<string, byte[]> _files;

    TokenizerFiles(string source, Dictionary<string, byte[]> files, TextTokenizer tokenizer, string? chatTemplate)
    {
        Source = source;
        _files = files;
        BosId = tokenizer.BosId;
        EosId = tokenizer.EosId;
        VocabSize = tokenizer.VocabSize;
        SpecialIds = tokenizer.SpecialTokens.Values.ToHashSet();
        ChatTemplate = chatTemplate;
        // A chat template that ends turns with <|eot_id|> (or <|eom_id|>, Llama-3.1's tool-call turn end) makes those
        // ids ends of generation too, as Meta's generation_config.json lists them.
        TurnEndIds = tokenizer.SpecialTokens.Where(kv => kv.Key is Llama3Format.EotId or "<|eom_id|>" && chatTemplate?.Contains(kv.Key, StringComparison.Ordinal) == true)
            .Select(kv => kv.Value).Order().ToArray();
    }

    /// <summary>Where the files came from (a folder or a tokenizer file).</summary>
    public string Source { get; }
    public int? BosId { get; }
    public int EosId { get; }
    public int VocabSize { get; }
    public IReadOnlySet<int> SpecialIds { get; }
    /// <summary>The chat template the folder carries (the source's, or Llama-3's for a Llama-3-format tokenizer without one).</summary>
    public string? ChatTemplate { get; }
    /// <summary>The special ids the chat template ends a turn with (e.g. <c>&lt;|eot_id|&gt;</c>); empty without a template.</summary>
    public IReadOnlyList<int> TurnEndIds { get; }
    public IEnumerable<string> FileNames => _files.Keys.Order(StringComparer.Ordinal);

    /// <summary>
    /// Gathers the tokenizer files of <paramref name="source"/>: a model or tokenizer folder (tokenizer.json or tokenizer.model,
    /// with tokenizer_config.json, special_tokens_map.json and chat_template.jinja where present), or a tokenizer.json /
    /// tokenizer.model file (its folder's tokenizer_config.json and special_tokens_map.json are taken along only when the
    /// file is named as Hugging Face names it, so they are its own).
    /// </summary>
    /// <param name="modelMaxLength">model_max_length written into a synthesized tokenizer_config.json (the model's context).</param>
    public static TokenizerFiles From(string source, int modelMaxLength)
    {
        var full = Path.GetFullPath(source);
        string dir;
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (Directory.Exists(full))
        {
            dir = full;
            foreach (var name in AllNames)
                if (File.Exists(Path.Combine(dir, name))) files[name] = File.ReadAllBytes(Path.Combine(dir, name));
            if (!files.ContainsKey(TokenizerJson) && !files.ContainsKey(TiktokenModel))
                throw new CptLabException($"{full}: no {TokenizerJson} or {TiktokenModel} in this folder, so it has no tokenizer to copy into the model folder");
        }
        else if (File.Exists(full))
        {
            dir = Path.GetDirectoryName(full)!;
            var name = Path.GetFileName(full);
            var kind = name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? TokenizerJson : TiktokenModel;
            files[kind] = File.ReadAllBytes(full);
            if (name == kind)
                foreach (var companion in new[] { ConfigFile, SpecialTokensMapFile, ChatTemplateFile })
                    if (File.Exists(Path.Combine(dir, companion))) files[companion] = File.ReadAllBytes(Path.Combine(dir, companion));
        }
        else throw new CptLabException($"{full}: tokenizer not found (expected a tokenizer.json, a tokenizer.model, or a folder holding one)");

        // Meta's original download has only tokenizer.model; Hugging Face tools read tokenizer.json, so the folder gets both.
        if (!files.ContainsKey(TokenizerJson))
            files[TokenizerJson] = TiktokenConversion.ToBpe(Directory.Exists(full) ? Path.Combine(dir, TiktokenModel) : full,
                Llama3Format.DetectVersion(dir) ?? Llama3Version.V3_0).ToJsonBytes();
        // The tokenizer as the source holds it (its ids, specials and end-of-text), from the source's own file.
        var tokenizer = TextTokenizer.Load(Directory.Exists(full) ? dir : full);

        string? template = files.TryGetValue(ChatTemplateFile, out var jinja) ? System.Text.Encoding.UTF8.GetString(jinja) : null;
        // The added tokens, read from tokenizer.json once, for whichever of the two config files has to be written.
        var added = new Lazy<SortedDictionary<int, JsonObject>>(() => AddedTokens(files, tokenizer));
        if (files.TryGetValue(ConfigFile, out var configBytes))
            template ??= ReadTemplate(configBytes, Path.Combine(dir, ConfigFile));
        else
        {
            var hasLlama3Chat = tokenizer.SpecialTokens.ContainsKey(Llama3Format.StartHeader) && tokenizer.SpecialTokens.ContainsKey(Llama3Format.EotId);
            template ??= hasLlama3Chat ? Llama3InstructChatTemplate : null;
            files[ConfigFile] = Bytes(SynthesizedConfig(tokenizer, added.Value, template, modelMaxLength));
        }
        if (!files.ContainsKey(SpecialTokensMapFile))
            files[SpecialTokensMapFile] = Bytes(SynthesizedSpecialTokensMap(tokenizer, added.Value));
        return new TokenizerFiles(full, files, tokenizer, template);
    }

    /// <summary>Writes the files into <paramref name="dir"/> (each atomically), removing stale tokenizer files of another layout.</summary>
    public void WriteInto(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var name in AllNames)
            if (!_files.ContainsKey(name)) File.Delete(Path.Combine(dir, name));
        foreach (var (name, bytes) in _files) AtomicFile.WriteAllBytes(Path.Combine(dir, name), bytes);
    }

    static byte[] Bytes(JsonObject o) => System.Text.Encoding.UTF8.GetBytes(o.ToJsonString(Json.Indented) + "\n");

    /// <summary>The chat_template of a tokenizer_config.json (<see cref="TokenizerConfig.ChatTemplate"/>).</summary>
    static string? ReadTemplate(byte[] configBytes, string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(configBytes);
            return TokenizerConfig.ChatTemplate(doc.RootElement, path);
        }
        catch (JsonException e) { throw new CorruptFileException(path, $"invalid JSON: {e.Message}"); }
    }

    /// <summary>Each added token as tokenizer.json describes it (lstrip, rstrip, normalized, single_word, special), by id.</summary>
    static SortedDictionary<int, JsonObject> AddedTokens(Dictionary<string, byte[]> files, TextTokenizer tokenizer)
    {
        var added = new SortedDictionary<int, JsonObject>();
        if (files.TryGetValue(TokenizerJson, out var json) && JsonNode.Parse(json)?["added_tokens"] is JsonArray list)
            foreach (var t in list.OfType<JsonObject>())
                if (t["id"]?.GetValue<int>() is { } id)
                    added[id] = new JsonObject
                    {
                        ["content"] = t["content"]?.GetValue<string>(),
                        ["lstrip"] = t["lstrip"]?.GetValue<bool>() ?? false,
                        ["normalized"] = t["normalized"]?.GetValue<bool>() ?? false,
                        ["rstrip"] = t["rstrip"]?.GetValue<bool>() ?? false,
                        ["single_word"] = t["single_word"]?.GetValue<bool>() ?? false,
                        ["special"] = t["special"]?.GetValue<bool>() ?? true,
                    };
        foreach (var (content, id) in tokenizer.SpecialTokens) // a tiktoken file's specials exist only in code
            if (!added.ContainsKey(id))
                added[id] = new JsonObject { ["content"] = content, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true };
        return added;
    }

    static string? Name(TextTokenizer t, int? id) => id is { } i ? t.SpecialTokens.FirstOrDefault(kv => kv.Value == i).Key : null;

    /// <summary>tokenizer_config.json with the keys, in the order, transformers' PreTrainedTokenizerFast.save_pretrained writes.</summary>
    static JsonObject SynthesizedConfig(TextTokenizer tokenizer, SortedDictionary<int, JsonObject> added, string? template, int modelMaxLength)
    {
        var decoder = new JsonObject();
        foreach (var (id, token) in added) decoder[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = token.DeepClone();
        var o = new JsonObject { ["added_tokens_decoder"] = decoder };
        if (Name(tokenizer, tokenizer.BosId) is { } bos) o["bos_token"] = bos;
        if (template is not null) o["chat_template"] = template;
        o["clean_up_tokenization_spaces"] = true;
        o["eos_token"] = Name(tokenizer, tokenizer.EosId);
        o["model_input_names"] = new JsonArray("input_ids", "attention_mask");
        o["model_max_length"] = modelMaxLength;
        o["tokenizer_class"] = "PreTrainedTokenizerFast";
        return o;
    }

    static JsonObject SynthesizedSpecialTokensMap(TextTokenizer tokenizer, SortedDictionary<int, JsonObject> added)
    {
        JsonObject Entry(int id)
        {
            var t = (JsonObject)added[id].DeepClone();
            t.Remove("special");
            return t;
        }
        var o = new JsonObject();
        if (tokenizer.BosId is { } bos && added.ContainsKey(bos)) o["bos_token"] = Entry(bos);
        if (added.ContainsKey(tokenizer.EosId)) o["eos_token"] = Entry(tokenizer.EosId);
        return o;
    }
}
