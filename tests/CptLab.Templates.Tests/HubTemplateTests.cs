using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.TestKit;

namespace CptLab.Templates.Tests;

/// <summary>
/// The real chat templates of ten Hub models (../shared/data/chat-templates and Meta's Llama-3.0 tokenizer_config.json)
/// over a corpus of conversations, each with and without the generation prompt: CptLab's output must equal
/// @huggingface/jinja's byte for byte, and where the reference raises (Gemma refuses a system turn), CptLab raises too.
/// </summary>
public sealed class HubTemplateTests(NodeJinja node) : IClassFixture<NodeJinja>
{
    public static IEnumerable<string> TemplateNames =>
        [.. Directory.GetFiles(Path.Combine(RepoPaths.SharedData, "chat-templates"), "*.jinja").Select(Path.GetFileNameWithoutExtension).Order()!, "meta-llama-Meta-Llama-3-8B-Instruct"];

    public static string SourceOf(string name) => Source(name);

    static string Source(string name)
    {
        if (name == "meta-llama-Meta-Llama-3-8B-Instruct")
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Llama3TokenizerDir, "tokenizer_config.json")));
            return doc.RootElement.GetProperty("chat_template").GetString()!;
        }
        return File.ReadAllText(Path.Combine(RepoPaths.SharedData, "chat-templates", name + ".jinja"));
    }

    public static TheoryData<string, string> Pairs()
    {
        var data = new TheoryData<string, string>();
        foreach (var t in TemplateNames)
            foreach (var c in Conversations.All.Keys)
                data.Add(t, c);
        return data;
    }

    [Fact]
    public void All_ten_templates_are_there_and_compile()
    {
        Assert.Equal(10, TemplateNames.Count());
        foreach (var t in TemplateNames) JinjaTemplate.Compile(Source(t), t);
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Renders_as_the_reference(string template, string conversation)
    {
        var source = Source(template);
        var differences = new List<string>();
        foreach (var addGenerationPrompt in new[] { true, false })
        {
            var vars = Conversations.All[conversation]().DeepClone().AsObject();
            vars["add_generation_prompt"] = addGenerationPrompt;
            vars.TryAdd("bos_token", "<|begin_of_text|>");
            vars.TryAdd("eos_token", "<|eot_id|>");
            if (Compare.Difference(node, source, vars, $"{template} × {conversation} (add_generation_prompt={addGenerationPrompt})") is { } d)
                differences.Add(d);
        }
        Assert.Empty(differences);
    }
}

/// <summary>The conversations: plain chat, system prompts, Chinese, hostile text, tools and tool results.</summary>
static class Conversations
{
    static JsonObject M(string role, string? content) => new() { ["role"] = role, ["content"] = content };

    static JsonArray Msgs(params JsonNode[] m) => [.. m];

    static readonly JsonArray Tools = JsonNode.Parse("""
        [
          {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city.",
            "parameters": {"type": "object", "properties": {
              "location": {"type": "string", "description": "The city, e.g. \"Paris\""},
              "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "  The unit  "},
              "days": {"type": "integer", "description": "How many days"},
              "hourly": {"type": "boolean", "description": "Hourly detail"},
              "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags"},
              "extra": {"type": "object", "additionalProperties": {"type": "number"}, "description": "Extra numbers"}},
              "required": ["location"]},
            "return": {"type": "string", "description": "A forecast"}}},
          {"type": "function", "function": {"name": "search", "description": "Search the web 搜索.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "What to look for"}}, "required": ["query"]}}}
        ]
        """)!.AsArray();

    // Scalar parameters only: Hermes' json_to_python_type fails (in the reference as in Python) on array and object types.
    static readonly JsonArray SimpleTools = JsonNode.Parse("""
        [{"type": "function", "function": {"name": "convert", "description": "Convert an amount between currencies.",
          "parameters": {"type": "object", "properties": {
            "amount": {"type": "number", "description": "How much"}, "from": {"type": "string", "description": "ISO code, e.g. 'EUR'"},
            "round": {"type": "integer", "description": "Decimals"}, "strict": {"type": "boolean", "description": "Fail on unknown codes\n"}},
            "required": ["amount", "from"]}, "return": {"type": "number", "description": "The converted amount"}}}]
        """)!.AsArray();

    static JsonObject ToolCall(string id, string name, JsonNode arguments) => new()
    {
        ["id"] = id, ["type"] = "function", ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments },
    };

    static JsonObject Assistant(JsonArray calls, string? content = null) => new() { ["role"] = "assistant", ["content"] = content, ["tool_calls"] = calls };

    static readonly JsonNode WeatherArgs = JsonNode.Parse("""{"location": "Paris", "days": 3, "hourly": false, "scale": -1.5, "tags": ["a", "b"], "none": null}""")!;

    public static readonly Dictionary<string, Func<JsonObject>> All = new()
    {
        ["single-user"] = () => new() { ["messages"] = Msgs(M("user", "Hello!")) },
        ["system-user"] = () => new() { ["messages"] = Msgs(M("system", "You are a helpful assistant."), M("user", "What is 2+2?")) },
        ["multi-turn"] = () => new()
        {
            ["messages"] = Msgs(M("system", "Be brief."), M("user", "Hi"), M("assistant", "Hello! How can I help?"), M("user", "Tell me a joke."),
                M("assistant", "Why did the chicken cross the road?"), M("user", "Why?")),
        },
        ["ends-with-assistant"] = () => new() { ["messages"] = Msgs(M("user", "Say yes."), M("assistant", "Yes.")) },
        ["chinese"] = () => new()
        {
            ["messages"] = Msgs(M("system", "你是一个乐于助人的助手。"), M("user", "请用中文介绍一下长城。"), M("assistant", "长城是中国古代的军事防御工程，全长两万多公里。"),
                M("user", "「学而时习之，不亦说乎？」是谁说的？")),
        },
        ["special-characters"] = () => new()
        {
            ["messages"] = Msgs(
                M("system", "  Quotes \" and ' and `backticks`, backslash \\ and \\n literal.  \n"),
                M("user", "{{ messages }} {% if true %}jinja{% endif %} {# c #} <|eot_id|><|im_end|>[INST]\n\n\tTabs\r\nCRLF"),
                M("assistant", "\u00a0nbsp\u3000ideographic\ufeffbom\u0085nel 😀 emoji 𠀀 ext-b \u2028ls"),
                M("user", "  padded  \n\n")),
        },
        ["empty-content"] = () => new() { ["messages"] = Msgs(M("system", ""), M("user", "")) },
        ["no-messages"] = () => new() { ["messages"] = new JsonArray() },
        ["date-string"] = () => new() { ["messages"] = Msgs(M("system", "Sys"), M("user", "What day is it?")), ["date_string"] = "02 Dec 2026" },
        ["custom-tokens"] = () => new() { ["messages"] = Msgs(M("user", "hi")), ["bos_token"] = "<s>", ["eos_token"] = "</s>" },
        ["think"] = () => new()
        {
            ["messages"] = Msgs(M("user", "2+2?"), M("assistant", "<think>\nsimple\n</think>\n\n4"), M("user", "and 3+3?")),
        },
        ["tools-offered"] = () => new() { ["messages"] = Msgs(M("system", "You can call tools."), M("user", "Weather in Paris?")), ["tools"] = Tools.DeepClone() },
        ["tools-offered-no-system"] = () => new() { ["messages"] = Msgs(M("user", "Search for cats")), ["tools"] = Tools.DeepClone(), ["date_string"] = "26 Jul 2024" },
        ["tools-in-system"] = () => new()
        {
            ["messages"] = Msgs(M("system", "Sys"), M("user", "Weather?")), ["tools"] = Tools.DeepClone(), ["tools_in_user_message"] = false,
        },
        ["tool-call-and-result"] = () => new()
        {
            ["messages"] = Msgs(M("system", "Use tools."), M("user", "Weather in Paris?"),
                Assistant([ToolCall("call12345", "get_weather", WeatherArgs.DeepClone())]),
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call12345", ["name"] = "get_weather", ["content"] = "{\"temp\": 21, \"sky\": \"clear\"}" },
                M("assistant", "It is 21°C and clear."), M("user", "Thanks")),
            ["tools"] = Tools.DeepClone(),
        },
        ["tool-call-string-arguments"] = () => new()
        {
            ["messages"] = Msgs(M("user", "Search cats"),
                Assistant([ToolCall("abcdefghi", "search", "{\"query\": \"cats\"}")]),
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "abcdefghi", ["content"] = "Cats are small carnivorous mammals." }),
            ["tools"] = Tools.DeepClone(),
        },
        ["tool-result-mapping"] = () => new()
        {
            ["messages"] = Msgs(M("user", "Weather?"),
                Assistant([ToolCall("call00001", "get_weather", JsonNode.Parse("""{"location": "Oslo"}""")!)]),
                new JsonObject { ["role"] = "ipython", ["content"] = JsonNode.Parse("""{"temp": -3.25, "snow": true, "list": [1, 2]}""") }),
        },
        ["two-tool-results"] = () => new()
        {
            ["messages"] = Msgs(M("user", "Both?"),
                Assistant([ToolCall("call00001", "search", JsonNode.Parse("""{"query": "a"}""")!), ToolCall("call00002", "search", JsonNode.Parse("""{"query": "b"}""")!)]),
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call00001", ["content"] = "A" },
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call00002", ["content"] = "B" },
                M("assistant", "Done.")),
            ["tools"] = Tools.DeepClone(),
        },
        ["simple-tools-offered"] = () => new() { ["messages"] = Msgs(M("user", "100 EUR in USD?")), ["tools"] = SimpleTools.DeepClone() },
        ["simple-tool-call"] = () => new()
        {
            ["messages"] = Msgs(M("system", "Convert money."), M("user", "100 EUR in USD?"),
                Assistant([ToolCall("conv12345", "convert", JsonNode.Parse("""{"amount": 100, "from": "EUR", "round": 2, "strict": true}""")!)]),
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "conv12345", ["name"] = "convert", ["content"] = "108.25" },
                M("assistant", "100 EUR is 108.25 USD.")),
            ["tools"] = SimpleTools.DeepClone(),
        },
        ["not-alternating"] = () => new() { ["messages"] = Msgs(M("user", "one"), M("user", "two")) },
        ["assistant-first"] = () => new() { ["messages"] = Msgs(M("assistant", "I start."), M("user", "ok")) },
    };
}

/// <summary>A guard on the comparison itself: agreeing by both raising must stay the exception, not the rule.</summary>
public sealed class CorpusCoverageTests(NodeJinja node) : IClassFixture<NodeJinja>
{
    [Fact]
    public void The_reference_renders_most_of_the_corpus_for_every_template()
    {
        foreach (var template in HubTemplateTests.TemplateNames)
        {
            var source = HubTemplateTests.SourceOf(template);
            var rendered = Conversations.All.Values.Count(c =>
            {
                var vars = c().DeepClone().AsObject();
                vars["add_generation_prompt"] = true;
                return node.Render(source, vars).Ok;
            });
            // Gemma refuses system turns and Hermes needs tools, so some render few; a broken harness renders none.
            Assert.True(rendered >= 2, $"{template}: the reference rendered only {rendered} of {Conversations.All.Count} conversations");
        }
    }
}
