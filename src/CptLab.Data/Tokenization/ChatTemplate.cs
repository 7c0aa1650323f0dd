using System.Globalization;
using System.Text.Json;
using CptLab.Core;
using CptLab.Templates;

namespace CptLab.Data.Tokenization;

/// <summary>
/// How a conversation becomes a prompt: the model's own Jinja chat template, as Hugging Face keeps it
/// (<c>chat_template.jinja</c> beside the weights, else tokenizer_config.json's <c>chat_template</c>, a string or a
/// list of named templates of which "default" is the chat one), compiled by <see cref="JinjaTemplate"/> and rendered
/// with what transformers' <c>apply_chat_template</c> passes: messages, add_generation_prompt, bos_token, eos_token,
/// tools and date_string. A folder without a template gets Meta's Llama-3 template. A template that uses Jinja outside
/// the supported subset is refused at load with the file and the template position.
/// </summary>
public sealed class ChatTemplate
{
    public const string ConfigFile = "tokenizer_config.json";
    public const string JinjaFile = "chat_template.jinja";

    /// <summary>Meta's Llama-3 Instruct template, exactly as its tokenizer_config.json carries it.</summary>
    public const string Llama3Source =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";

    /// <summary>The ChatML template (Qwen, Hermes and others use this form).</summary>
    public const string ChatMlSource =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    ChatTemplate(string name, JinjaTemplate jinja, string? bosToken, string? eosToken)
    {
        Name = name;
        Jinja = jinja;
        BosToken = bosToken;
        EosToken = eosToken;
    }

    /// <summary>"llama3", "chatml", or where the template came from (file and key).</summary>
    public string Name { get; }
    public JinjaTemplate Jinja { get; }
    /// <summary>bos_token and eos_token from tokenizer_config.json; null: the tokenizer's own.</summary>
    public string? BosToken { get; }
    public string? EosToken { get; }

    public static ChatTemplate Llama3 { get; } = new("llama3", JinjaTemplate.Compile(Llama3Source, "built-in Llama-3 chat template"), null, null);
    public static ChatTemplate ChatMl { get; } = new("chatml", JinjaTemplate.Compile(ChatMlSource, "built-in ChatML chat template"), null, null);

    /// <summary>
    /// The template of the model in <paramref name="dir"/>: <paramref name="overrideName"/> when given ("llama3",
    /// "chatml"; "auto" is the folder's), else the folder's chat_template.jinja or tokenizer_config.json's chat_template,
    /// else Llama-3's.
    /// </summary>
    public static ChatTemplate ForModel(string dir, string? overrideName = null)
    {
        var config = Path.Combine(dir, ConfigFile);
        string? bos = null, eos = null;
        JsonElement? root = null;
        if (File.Exists(config))
        {
            using var doc = Json.ParseFile(config);
            root = doc.RootElement.Clone();
            bos = TokenizerConfig.TokenText(root.Value, "bos_token", config);
            eos = TokenizerConfig.TokenText(root.Value, "eos_token", config);
        }

        if (overrideName is not null && !string.Equals(overrideName, "auto", StringComparison.OrdinalIgnoreCase))
        {
            var named = Named(overrideName) ?? throw new CptLabException($"chat template '{overrideName}' is not one of auto, llama3, chatml");
            return new ChatTemplate(named.Name, named.Jinja, bos, eos);
        }

        var jinjaFile = Path.Combine(dir, JinjaFile);
        if (File.Exists(jinjaFile)) return Compile(File.ReadAllText(jinjaFile), jinjaFile, bos, eos);
        if ((root is { } r ? TokenizerConfig.ChatTemplate(r, config) : null) is not { } template)
            return bos is null && eos is null ? Llama3 : new ChatTemplate(Llama3.Name, Llama3.Jinja, bos, eos);
        return Compile(template, $"{config}: chat_template", bos, eos);
    }

    static ChatTemplate Compile(string source, string name, string? bos, string? eos)
    {
        try
        {
            return new ChatTemplate(name, JinjaTemplate.Compile(source, name), bos, eos);
        }
        catch (TemplateException e)
        {
            throw new CptLabException($"{e.Message}. Pass --chat-template llama3 or chatml to use a built-in template instead.", e);
        }
    }

    static ChatTemplate? Named(string name) => name.ToLowerInvariant() switch
    {
        "llama3" or "llama-3" => Llama3,
        "chatml" => ChatMl,
        _ => null,
    };

    /// <summary>The prompt text (with special-token strings) for <paramref name="messages"/>, ending with an open assistant turn.</summary>
    public string Render(ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages) => Render(tokenizer, messages, addGenerationPrompt: true);

    /// <summary>
    /// The template rendered as transformers' apply_chat_template renders it; <paramref name="tools"/> (JSON tool
    /// definitions) only when the request has them, and date_string today ("%d %b %Y", as Llama-3.1's template expects).
    /// </summary>
    public string Render(ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt,
                         IReadOnlyList<JsonElement>? tools = null, DateTime? today = null)
    {
        var vars = new Dictionary<string, object?>
        {
            ["messages"] = messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = BosToken ?? TokenString(tokenizer, tokenizer.BosId) ?? "",
            ["eos_token"] = EosToken ?? TokenString(tokenizer, tokenizer.EosId) ?? "",
            ["date_string"] = (today ?? DateTime.Now).ToString("dd MMM yyyy", CultureInfo.InvariantCulture),
        };
        if (tools is { Count: > 0 }) vars["tools"] = tools.Select(t => (object?)t).ToList();
        return Jinja.Render(vars);
    }

    static string? TokenString(ITextTokenizer tokenizer, int? id) =>
        id is int i ? tokenizer.SpecialTokens.Where(p => p.Value == i).Select(p => p.Key).FirstOrDefault() : null;

    /// <summary>Prompt ids for <paramref name="messages"/>: the rendered template encoded with special tokens.</summary>
    public int[] Encode(ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages)
    {
        var ids = new List<int>();
        tokenizer.EncodeWithSpecials(Render(tokenizer, messages), ids);
        return [.. ids];
    }

    /// <summary>
    /// The tokens that end an assistant turn under this template, besides the model's eos ids: Llama-3's
    /// <c>&lt;|eot_id|&gt;</c>, Llama-3.1's <c>&lt;|eom_id|&gt;</c> (end of a tool-call message) when the tokenizer has
    /// it, and ChatML's <c>&lt;|im_end|&gt;</c> when the template writes it.
    /// </summary>
    public IEnumerable<int> TurnEndIds(ITextTokenizer tokenizer)
    {
        if (tokenizer.EotId is int eot) yield return eot;
        if (tokenizer.SpecialTokens.TryGetValue("<|eom_id|>", out var eom)) yield return eom;
        if (Jinja.Source.Contains("<|im_end|>", StringComparison.Ordinal) && tokenizer.SpecialTokens.TryGetValue("<|im_end|>", out var imEnd)) yield return imEnd;
    }
}
