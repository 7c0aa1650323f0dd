using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Tokenization;

namespace CptLab.Serving;

/// <summary>
/// How a conversation becomes a prompt. Hugging Face keeps a Jinja template in tokenizer_config.json's
/// <c>chat_template</c>; CptLab does not run Jinja. It recognises the template families it knows by their
/// control tokens and renders them natively: Llama-3 (<c>&lt;|start_header_id|&gt;</c>, the default when the
/// config has no template) and ChatML (<c>&lt;|im_start|&gt;</c>). Any other template is refused at load,
/// naming the file, because a wrong template silently degrades every reply.
/// </summary>
public sealed class ChatTemplate
{
    public const string ConfigFile = "tokenizer_config.json";

    ChatTemplate(string name) => Name = name;

    /// <summary>"llama3" or "chatml".</summary>
    public string Name { get; }

    public static ChatTemplate Llama3 { get; } = new("llama3");
    public static ChatTemplate ChatMl { get; } = new("chatml");

    /// <summary>
    /// The template of the model in <paramref name="dir"/>: <paramref name="overrideName"/> when given
    /// ("llama3", "chatml"), else the family of tokenizer_config.json's chat_template, else Llama-3.
    /// </summary>
    public static ChatTemplate ForModel(string dir, string? overrideName = null)
    {
        if (overrideName is not null && !string.Equals(overrideName, "auto", StringComparison.OrdinalIgnoreCase))
            return Named(overrideName) ?? throw new CptLabException($"chat template '{overrideName}' is not one of auto, llama3, chatml");
        var path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) return Llama3;
        using var doc = Json.ParseFile(path);
        if (!doc.RootElement.TryGetProperty("chat_template", out var t) || t.ValueKind == JsonValueKind.Null) return Llama3;
        var text = t.ValueKind switch
        {
            JsonValueKind.String => t.GetString()!,
            // Newer files list named templates; the one called "default" is the chat template.
            JsonValueKind.Array => t.EnumerateArray().Where(e => e.TryGetProperty("name", out var n) && n.GetString() == "default")
                                    .Select(e => e.GetProperty("template").GetString()).FirstOrDefault()
                                  ?? throw new CorruptFileException(path, "chat_template is a list without a template named \"default\""),
            _ => throw new CorruptFileException(path, $"chat_template must be a string or a list of named templates, not {t.ValueKind}"),
        };
        if (text.Contains(Llama3Format.StartHeader, StringComparison.Ordinal)) return Llama3;
        if (text.Contains("<|im_start|>", StringComparison.Ordinal)) return ChatMl;
        throw new CptLabException($"{path}: chat_template is neither Llama-3's (<|start_header_id|>) nor ChatML (<|im_start|>); " +
                                  "CptLab renders only those families. Pass --chat-template llama3 or chatml to choose one explicitly.");
    }

    static ChatTemplate? Named(string name) => name.ToLowerInvariant() switch
    {
        "llama3" or "llama-3" => Llama3,
        "chatml" => ChatMl,
        _ => null,
    };

    /// <summary>The prompt text (with special-token strings) for <paramref name="messages"/>, ending with an open assistant turn.</summary>
    public string Render(ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages)
    {
        if (this == Llama3) return tokenizer.ApplyChatTemplate(messages, addGenerationPrompt: true);
        var s = new StringBuilder();
        foreach (var m in messages) s.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
        return s.Append("<|im_start|>assistant\n").ToString();
    }

    /// <summary>Prompt ids for <paramref name="messages"/>: the rendered template encoded with special tokens.</summary>
    public int[] Encode(ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages)
    {
        var ids = new List<int>();
        tokenizer.EncodeWithSpecials(Render(tokenizer, messages), ids);
        return [.. ids];
    }

    /// <summary>The tokens that end an assistant turn under this template, besides the model's eos ids.</summary>
    public IEnumerable<int> TurnEndIds(ITextTokenizer tokenizer)
    {
        if (tokenizer.EotId is int eot) yield return eot;
        if (this == ChatMl && tokenizer.SpecialTokens.TryGetValue("<|im_end|>", out var imEnd)) yield return imEnd;
    }
}
