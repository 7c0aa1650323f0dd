using System.Text.Json;
using CptLab.Data.Tokenization;
using CptLab.Model;

namespace CptLab.Serving;

/// <summary>An error answered as OpenAI does: status code and {"error": {message, type, param, code}}.</summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error") : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);
}

/// <summary>The fields both endpoints share, parsed and range-checked.</summary>
public sealed record CommonParameters
{
    public string? Model { get; init; }
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    public int? MaxTokens { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public SamplingOptions Sampling { get; init; } = new();
    public double FrequencyPenalty { get; init; }
    public double PresencePenalty { get; init; }
    public bool IgnoreEos { get; init; }
    /// <summary>OpenAI's logit_bias: token id → value in [−100, 100] added to its logit before sampling.</summary>
    public IReadOnlyDictionary<int, float> LogitBias { get; init; } = new Dictionary<int, float>();
}

public sealed record ChatRequest(CommonParameters Common, IReadOnlyList<ChatMessage> Messages, bool Logprobs, int TopLogprobs);

/// <summary>A completions prompt: text (BOS added, as the tokenizer's post-processor does) or token ids (used as they are).</summary>
public sealed record CompletionPrompt(string? Text, IReadOnlyList<int>? Ids);

public sealed record CompletionRequest(CommonParameters Common, IReadOnlyList<CompletionPrompt> Prompts, bool Echo, int? Logprobs);

/// <summary>
/// Parses request bodies of /v1/chat/completions and /v1/completions with OpenAI's validation messages
/// ("Invalid type for 'temperature': expected a number, but got a string instead."). Unknown fields are
/// ignored, as vLLM does, so clients that send newer fields keep working (user, metadata, store, service_tier
/// change nothing here); features CptLab does not have (tools, JSON output, audio, n &gt; 1, …) are refused
/// with 400 naming the parameter rather than ignored: a reply that silently lacks what was asked is worse.
/// </summary>
public static class ApiRequests
{
    /// <param name="defaults">Values for sampling fields the request leaves out (default: OpenAI's).</param>
    public static ChatRequest ParseChat(JsonElement root, SamplingDefaults? defaults = null)
    {
        RequireObject(root);
        RefuseChatFeatures(root);
        var common = ParseCommon(root, maxTokenFields: ["max_completion_tokens", "max_tokens"], defaults ?? SamplingDefaults.OpenAi);
        if (!root.TryGetProperty("messages", out var messages)) throw ApiException.BadRequest("Missing required parameter: 'messages'.", "messages");
        if (messages.ValueKind != JsonValueKind.Array) throw TypeError("messages", "an array", messages);
        if (messages.GetArrayLength() == 0) throw ApiException.BadRequest("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            var where = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw TypeError(where, "an object", m);
            if (!m.TryGetProperty("role", out var role)) throw ApiException.BadRequest($"Missing required parameter: '{where}.role'.", $"{where}.role");
            if (role.ValueKind != JsonValueKind.String) throw TypeError($"{where}.role", "a string", role);
            var r = role.GetString()!;
            if (r is not ("system" or "developer" or "user" or "assistant"))
                throw ApiException.BadRequest($"Invalid value for '{where}.role': '{r}'. Supported values are: 'system', 'developer', 'user' and 'assistant'{(r is "tool" or "function" ? " (this server has no tool calling)" : "")}.", $"{where}.role", "invalid_value");
            if (!m.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
                throw ApiException.BadRequest($"Missing required parameter: '{where}.content'.", $"{where}.content");
            list.Add(new ChatMessage(r == "developer" ? "system" : r, ContentText(content, $"{where}.content")));
        }
        bool logprobs = Bool(root, "logprobs") ?? false;
        int top = Int(root, "top_logprobs", 0, 20) ?? 0;
        if (top > 0 && !logprobs) throw ApiException.BadRequest("top_logprobs requires logprobs to be true", "top_logprobs");
        return new ChatRequest(common, list, logprobs, top);
    }

    /// <param name="defaults">Values for sampling fields the request leaves out (default: OpenAI's).</param>
    public static CompletionRequest ParseCompletion(JsonElement root, SamplingDefaults? defaults = null)
    {
        RequireObject(root);
        RefuseCompletionFeatures(root);
        var common = ParseCommon(root, maxTokenFields: ["max_tokens"], defaults ?? SamplingDefaults.OpenAi);
        if (!root.TryGetProperty("prompt", out var prompt)) throw ApiException.BadRequest("Missing required parameter: 'prompt'.", "prompt");
        var prompts = new List<CompletionPrompt>();
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                prompts.Add(new CompletionPrompt(prompt.GetString(), null));
                break;
            case JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt[0].ValueKind == JsonValueKind.Number:
                prompts.Add(new CompletionPrompt(null, Ids(prompt, "prompt")));
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var p in prompt.EnumerateArray())
                {
                    var where = $"prompt[{i++}]";
                    prompts.Add(p.ValueKind switch
                    {
                        JsonValueKind.String => new CompletionPrompt(p.GetString(), null),
                        JsonValueKind.Array => new CompletionPrompt(null, Ids(p, where)),
                        _ => throw TypeError(where, "a string or an array of token ids", p),
                    });
                }
                break;
            default:
                throw TypeError("prompt", "a string, an array of strings, or token ids", prompt);
        }
        if (prompts.Count == 0) throw ApiException.BadRequest("Invalid 'prompt': empty array.", "prompt", "empty_array");
        foreach (var p in prompts)
            if (p.Text is "" || p.Ids is { Count: 0 }) throw ApiException.BadRequest("Invalid 'prompt': a prompt is empty.", "prompt");
        if (common.Stream && prompts.Count > 1) throw ApiException.BadRequest("streaming takes one prompt; send several prompts without stream", "prompt");
        bool echo = Bool(root, "echo") ?? false;
        int? logprobs = Int(root, "logprobs", 0, 20);
        if (common.MaxTokens == 0 && !(echo && logprobs is not null))
            throw ApiException.BadRequest("max_tokens 0 is only allowed with echo and logprobs (scoring the prompt)", "max_tokens");
        return new CompletionRequest(common, prompts, echo, logprobs);
    }

    /// <summary>Chat fields for features CptLab does not have: 400 naming the field, never a reply without them.</summary>
    static void RefuseChatFeatures(JsonElement root)
    {
        foreach (var name in (string[])["tools", "functions", "tool_choice", "function_call", "parallel_tool_calls"])
            if (Has(root, name))
                throw Unsupported(name, $"Unsupported parameter: '{name}'. Tool and function calling are not supported by this server; remove '{name}' (and describe the tools in the prompt if the model should use them).");
        if (root.TryGetProperty("response_format", out var format) && format.ValueKind != JsonValueKind.Null)
        {
            if (format.ValueKind != JsonValueKind.Object) throw TypeError("response_format", "an object", format);
            var type = format.TryGetProperty("type", out var t) ? t : default;
            if (type.ValueKind != JsonValueKind.String) throw ApiException.BadRequest("Missing required parameter: 'response_format.type'.", "response_format.type");
            if (type.GetString() != "text")
                throw Unsupported("response_format", $"Unsupported value: 'response_format.type' '{type.GetString()}'. This server has no constrained (JSON) decoding; only {{\"type\": \"text\"}} is supported. Ask for JSON in the prompt instead.", "unsupported_value");
        }
        if (root.TryGetProperty("modalities", out var modalities) && modalities.ValueKind != JsonValueKind.Null)
        {
            if (modalities.ValueKind != JsonValueKind.Array) throw TypeError("modalities", "an array of strings", modalities);
            var list = modalities.EnumerateArray().Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : throw TypeError("modalities", "an array of strings", m)).ToList();
            if (list is not ["text"])
                throw Unsupported("modalities", $"Unsupported value: 'modalities' [{string.Join(", ", list.Select(m => $"'{m}'"))}]. This server answers text only; send [\"text\"] or leave 'modalities' out.", "unsupported_value");
        }
        if (Has(root, "audio")) throw Unsupported("audio", "Unsupported parameter: 'audio'. This server answers text only; remove 'audio'.");
        if (Has(root, "prediction")) throw Unsupported("prediction", "Unsupported parameter: 'prediction'. This server has no predicted outputs (speculative decoding from given text); remove 'prediction'.");
        if (Has(root, "web_search_options")) throw Unsupported("web_search_options", "Unsupported parameter: 'web_search_options'. This server cannot search the web; remove 'web_search_options'.");
        if (Has(root, "reasoning_effort")) throw Unsupported("reasoning_effort", "Unsupported parameter: 'reasoning_effort'. The served model is not a reasoning model with an effort setting; remove 'reasoning_effort'.");
    }

    /// <summary>Completions fields for features CptLab does not have; best_of is n's twin (OpenAI: best_of ≥ n).</summary>
    static void RefuseCompletionFeatures(JsonElement root)
    {
        if (root.TryGetProperty("suffix", out var suffix) && suffix.ValueKind != JsonValueKind.Null)
        {
            if (suffix.ValueKind != JsonValueKind.String) throw TypeError("suffix", "a string", suffix);
            if (suffix.GetString()!.Length > 0)
                throw Unsupported("suffix", "Unsupported parameter: 'suffix'. This server does not insert text between a prompt and a suffix (fill-in-the-middle); remove 'suffix'.");
        }
        int n = Int(root, "n", 1, 128) ?? 1;
        if (Int(root, "best_of", 1, 128) is int bestOf)
        {
            if (bestOf < n) throw ApiException.BadRequest($"Invalid 'best_of': {bestOf} is less than n ({n}); best_of must be greater than or equal to n.", "best_of", "invalid_value");
            if (bestOf > 1) throw Unsupported("best_of", $"Unsupported value: 'best_of' {bestOf}. This server generates one completion per prompt, so best_of must be 1; send several requests with different seeds and pick the best yourself.", "unsupported_value");
        }
    }

    static ApiException Unsupported(string param, string message, string code = "unsupported_parameter") => ApiException.BadRequest(message, param, code);

    static CommonParameters ParseCommon(JsonElement root, string[] maxTokenFields, SamplingDefaults defaults)
    {
        if (Int(root, "n", 1, 128) is int n and > 1)
            throw Unsupported("n", $"Unsupported value: 'n' {n}. This server generates one choice per request, so n must be 1; send {n} requests (with different seeds) instead.", "unsupported_value");
        int? maxTokens = null;
        foreach (var f in maxTokenFields) maxTokens ??= Int(root, f, 0, int.MaxValue);
        maxTokens ??= defaults.MaxTokens;
        bool stream = Bool(root, "stream") ?? false;
        bool includeUsage = false;
        if (root.TryGetProperty("stream_options", out var so) && so.ValueKind != JsonValueKind.Null)
        {
            if (so.ValueKind != JsonValueKind.Object) throw TypeError("stream_options", "an object", so);
            if (!stream) throw ApiException.BadRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options");
            includeUsage = Bool(so, "include_usage", "stream_options.include_usage") ?? false;
        }
        var stop = new List<string>();
        if (root.TryGetProperty("stop", out var s) && s.ValueKind != JsonValueKind.Null)
        {
            if (s.ValueKind == JsonValueKind.String) stop.Add(s.GetString()!);
            else if (s.ValueKind == JsonValueKind.Array)
                foreach (var x in s.EnumerateArray())
                    stop.Add(x.ValueKind == JsonValueKind.String ? x.GetString()! : throw TypeError("stop", "a string or an array of strings", x));
            else throw TypeError("stop", "a string or an array of strings", s);
            if (stop.Count > 4) throw ApiException.BadRequest($"Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length {stop.Count} instead.", "stop");
            stop.RemoveAll(x => x.Length == 0);
        }
        int topK = Int(root, "top_k", -1, int.MaxValue) ?? defaults.TopK;
        ulong seed = root.TryGetProperty("seed", out var seedValue) && seedValue.ValueKind != JsonValueKind.Null
            ? seedValue.ValueKind == JsonValueKind.Number && seedValue.TryGetInt64(out var sv) ? unchecked((ulong)sv) : throw TypeError("seed", "an integer", seedValue)
            : (ulong)Random.Shared.NextInt64(); // no seed: a different draw each time, as OpenAI
        var sampling = new SamplingOptions
        {
            Temperature = Number(root, "temperature", 0, 2) ?? defaults.Temperature,
            TopP = Number(root, "top_p", 0, 1) ?? defaults.TopP,
            TopK = topK < 0 ? 0 : topK, // vLLM's -1 = off
            MinP = Number(root, "min_p", 0, 1) ?? defaults.MinP,
            RepetitionPenalty = Number(root, "repetition_penalty", 0, 100) ?? defaults.RepetitionPenalty,
            Seed = seed,
        };
        if (sampling.TopP == 0) throw ApiException.BadRequest("Invalid 'top_p': must be greater than 0.", "top_p");
        if (sampling.MinP >= 1) throw ApiException.BadRequest("Invalid 'min_p': must be below 1.", "min_p");
        if (sampling.RepetitionPenalty == 0) throw ApiException.BadRequest("Invalid 'repetition_penalty': must be greater than 0.", "repetition_penalty");
        string? model = null;
        if (root.TryGetProperty("model", out var m) && m.ValueKind != JsonValueKind.Null)
            model = m.ValueKind == JsonValueKind.String ? m.GetString() : throw TypeError("model", "a string", m);
        return new CommonParameters
        {
            Model = model, Stream = stream, IncludeUsage = includeUsage, MaxTokens = maxTokens, Stop = stop, Sampling = sampling,
            FrequencyPenalty = Number(root, "frequency_penalty", -2, 2) ?? 0,
            PresencePenalty = Number(root, "presence_penalty", -2, 2) ?? 0,
            IgnoreEos = Bool(root, "ignore_eos") ?? false,
            LogitBias = LogitBias(root),
        };
    }

    /// <summary>
    /// logit_bias as OpenAI takes it: an object whose keys are token ids as strings and whose values are numbers in
    /// [−100, 100]. Whether each id is in the model's vocabulary is checked where the model is known.
    /// </summary>
    static Dictionary<int, float> LogitBias(JsonElement root)
    {
        var bias = new Dictionary<int, float>();
        if (!root.TryGetProperty("logit_bias", out var v) || v.ValueKind == JsonValueKind.Null) return bias;
        if (v.ValueKind != JsonValueKind.Object) throw TypeError("logit_bias", "an object mapping token ids to numbers", v);
        foreach (var p in v.EnumerateObject())
        {
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                throw ApiException.BadRequest($"Invalid 'logit_bias': key '{p.Name}' is not a token id. Keys are token ids as strings (\"1234\"), values numbers from -100 to 100.", "logit_bias", "invalid_value");
            if (p.Value.ValueKind != JsonValueKind.Number)
                throw ApiException.BadRequest($"Invalid type for 'logit_bias' value of token {id}: expected a number, but got {Kind(p.Value)} instead.", "logit_bias", "invalid_type");
            var x = p.Value.GetDouble();
            if (x is < -100 or > 100)
                throw ApiException.BadRequest($"Invalid 'logit_bias' value {x} for token {id}: values must be from -100 to 100.", "logit_bias", "invalid_value");
            bias[id] = (float)x;
        }
        return bias;
    }

    static string ContentText(JsonElement content, string where)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw TypeError(where, "a string or an array of content parts", content);
        var text = new System.Text.StringBuilder();
        int i = 0;
        foreach (var part in content.EnumerateArray())
        {
            var at = $"{where}[{i++}]";
            if (part.ValueKind != JsonValueKind.Object) throw TypeError(at, "an object", part);
            var type = part.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type != "text") throw ApiException.BadRequest($"Invalid value for '{at}.type': '{type}'. This model only accepts content parts of type 'text'.", $"{at}.type", "invalid_value");
            if (!part.TryGetProperty("text", out var tx) || tx.ValueKind != JsonValueKind.String) throw ApiException.BadRequest($"Missing required parameter: '{at}.text'.", $"{at}.text");
            text.Append(tx.GetString());
        }
        return text.ToString();
    }

    static List<int> Ids(JsonElement array, string where)
    {
        var ids = new List<int>();
        foreach (var x in array.EnumerateArray())
            ids.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out var id) && id >= 0 ? id : throw TypeError(where, "an array of non-negative integer token ids", x));
        return ids;
    }

    static void RequireObject(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"The request body must be a JSON object, not {Kind(root)}.");
    }

    static bool Has(JsonElement root, string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    static double? Number(JsonElement root, string name, double min, double max)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number) throw TypeError(name, "a number", v);
        double x = v.GetDouble();
        if (x < min) throw ApiException.BadRequest($"Invalid '{name}': decimal below minimum value. Expected a value >= {min}, but got {x} instead.", name, "decimal_below_min_value");
        if (x > max) throw ApiException.BadRequest($"Invalid '{name}': decimal above maximum value. Expected a value <= {max}, but got {x} instead.", name, "decimal_above_max_value");
        return x;
    }

    static int? Int(JsonElement root, string name, int min, int max)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var x)) throw TypeError(name, "an integer", v);
        if (x < min) throw ApiException.BadRequest($"Invalid '{name}': integer below minimum value. Expected a value >= {min}, but got {x} instead.", name, "integer_below_min_value");
        if (x > max) throw ApiException.BadRequest($"Invalid '{name}': integer above maximum value. Expected a value <= {max}, but got {x} instead.", name, "integer_above_max_value");
        return (int)x;
    }

    static bool? Bool(JsonElement root, string name, string? shown = null)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw TypeError(shown ?? name, "a boolean", v),
        };
    }

    static ApiException TypeError(string name, string expected, JsonElement got) =>
        ApiException.BadRequest($"Invalid type for '{name}': expected {expected}, but got {Kind(got)} instead.", name, "invalid_type");

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}

/// <summary>
/// The sampling values a request gets for the fields it leaves out. As vLLM (<c>get_diff_sampling_param</c>): the model
/// folder's generation_config.json values of temperature, top_p, top_k, min_p, repetition_penalty and max_new_tokens (as
/// max_tokens) where it sets them, else OpenAI's defaults.
/// </summary>
public sealed record SamplingDefaults
{
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public int TopK { get; init; }
    public double MinP { get; init; }
    public double RepetitionPenalty { get; init; } = 1.0;
    public int? MaxTokens { get; init; }

    public static SamplingDefaults OpenAi { get; } = new();

    public static SamplingDefaults From(GenerationConfig g) => new()
    {
        Temperature = g.Temperature ?? 1.0,
        TopP = g.TopP ?? 1.0,
        TopK = g.TopK is > 0 ? g.TopK.Value : 0,
        MinP = g.MinP ?? 0,
        RepetitionPenalty = g.RepetitionPenalty ?? 1.0,
        MaxTokens = g.MaxNewTokens,
    };
}
