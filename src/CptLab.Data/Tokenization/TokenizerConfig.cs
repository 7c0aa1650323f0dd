using System.Text.Json;
using CptLab.Core;

namespace CptLab.Data.Tokenization;

/// <summary>
/// The keys of a Hugging Face <c>tokenizer_config.json</c> that serving, GGUF export and the model-folder writer all read,
/// parsed in one place so that the three read a file alike.
/// </summary>
public static class TokenizerConfig
{
    /// <summary>
    /// <c>chat_template</c>: a string, or — as newer transformers writes several — the entry named "default" of a list of
    /// {name, template}; null when the key is absent or null.
    /// </summary>
    public static string? ChatTemplate(JsonElement config, string path)
    {
        RequireObject(config, path);
        if (!config.TryGetProperty("chat_template", out var t) || t.ValueKind == JsonValueKind.Null) return null;
        return t.ValueKind switch
        {
            JsonValueKind.String => t.GetString()!,
            JsonValueKind.Array => t.EnumerateArray()
                                       .Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default")
                                       .Select(e => e.TryGetProperty("template", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null)
                                       .FirstOrDefault()
                                   ?? throw new ConfigException(path, "chat_template", "a list without a template named \"default\" (a string entry \"template\")"),
            _ => throw new ConfigException(path, "chat_template", $"must be a string or a list of named templates, not {t.ValueKind}"),
        };
    }

    /// <summary>A special token entry (<c>bos_token</c>, <c>eos_token</c>, <c>pad_token</c>): a string, or an AddedToken object's "content"; null when absent.</summary>
    public static string? TokenText(JsonElement config, string key, string path)
    {
        RequireObject(config, path);
        if (!config.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) return c.GetString();
        throw new ConfigException(path, key, "must be a token string or an object with a \"content\" string");
    }

    static void RequireObject(JsonElement config, string path)
    {
        if (config.ValueKind != JsonValueKind.Object) throw new ConfigException(path, "(root)", $"expected a JSON object, not {config.ValueKind}");
    }
}
