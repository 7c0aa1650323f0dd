using System.Text;
using System.Text.Json;

namespace CptLab.Serving.Tests;

/// <summary>
/// Issue 14: many kinds of malformed request each get a 4xx with OpenAI's error JSON — a message that says
/// what was wrong and, where one parameter is to blame, its name — and features the server lacks are refused
/// by name instead of silently ignored. Harmless bookkeeping fields stay accepted.
/// </summary>
[Collection("server")]
public class MalformedRequestTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    const string Chat = "v1/chat/completions";
    const string Completions = "v1/completions";
    const string Hi = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";

    public static TheoryData<string, string, string, int, string?> Cases => new()
    {
        // method, path, body, status, param
        { "POST", Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}", 400, null },                  // truncated JSON
        { "POST", Chat, "", 400, null },                                                                        // no body
        { "POST", Chat, "\"hello\"", 400, null },                                                               // not an object
        { "POST", Chat, "{}", 400, "messages" },                                                                // messages missing
        { "POST", Chat, "{\"messages\": {\"role\": \"user\"}}", 400, "messages" },                              // messages not an array
        { "POST", Chat, "{\"messages\": [\"hi\"]}", 400, "messages[0]" },                                       // a message not an object
        { "POST", Chat, "{\"messages\": [{\"content\": \"hi\"}]}", 400, "messages[0].role" },                   // role missing
        { "POST", Chat, "{\"messages\": [{\"role\": \"tool\", \"content\": \"42\"}]}", 400, "messages[0].role" }, // tool results
        { "POST", Chat, "{\"messages\": [{\"role\": 7, \"content\": \"hi\"}]}", 400, "messages[0].role" },       // role not a string
        { "POST", Chat, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", 400, "messages[0].content" },  // content a number
        { "POST", Chat, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}}]}]}", 400, "messages[0].content[0].type" },
        { "POST", Chat, $"{{{Hi}, \"temperature\": -1}}", 400, "temperature" },
        { "POST", Chat, $"{{{Hi}, \"top_p\": 1.5}}", 400, "top_p" },
        { "POST", Chat, $"{{{Hi}, \"top_p\": 0}}", 400, "top_p" },
        { "POST", Chat, $"{{{Hi}, \"max_tokens\": -3}}", 400, "max_tokens" },
        { "POST", Chat, $"{{{Hi}, \"max_completion_tokens\": \"many\"}}", 400, "max_completion_tokens" },
        { "POST", Chat, $"{{{Hi}, \"frequency_penalty\": 2.5}}", 400, "frequency_penalty" },
        { "POST", Chat, $"{{{Hi}, \"presence_penalty\": \"high\"}}", 400, "presence_penalty" },
        { "POST", Chat, $"{{{Hi}, \"seed\": 1.5}}", 400, "seed" },
        { "POST", Chat, $"{{{Hi}, \"stop\": 7}}", 400, "stop" },
        { "POST", Chat, $"{{{Hi}, \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}}", 400, "stop" },
        { "POST", Chat, $"{{{Hi}, \"stop\": [\"a\", 1]}}", 400, "stop" },
        { "POST", Chat, $"{{{Hi}, \"top_logprobs\": 3}}", 400, "top_logprobs" },                               // without logprobs
        { "POST", Chat, $"{{{Hi}, \"logprobs\": true, \"top_logprobs\": 21}}", 400, "top_logprobs" },
        { "POST", Chat, $"{{{Hi}, \"logprobs\": 1}}", 400, "logprobs" },
        { "POST", Chat, $"{{{Hi}, \"n\": 3}}", 400, "n" },
        { "POST", Chat, $"{{{Hi}, \"n\": 0}}", 400, "n" },
        { "POST", Chat, $"{{{Hi}, \"stream\": true, \"stream_options\": 1}}", 400, "stream_options" },
        { "POST", Chat, $"{{{Hi}, \"model\": \"gpt-4o\"}}", 404, "model" },
        { "POST", Chat, $"{{{Hi}, \"model\": 4}}", 400, "model" },
        { "POST", Chat, $"{{{Hi}, \"max_tokens\": 100000}}", 400, "messages" },                                 // beyond the context
        { "POST", Chat, $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"{string.Concat(Enumerable.Repeat("the fox ", 3000))}\"}}]}}", 400, "messages" },
        // features this server does not have
        { "POST", Chat, $"{{{Hi}, \"tools\": [{{\"type\": \"function\", \"function\": {{\"name\": \"f\"}}}}]}}", 400, "tools" },
        { "POST", Chat, $"{{{Hi}, \"functions\": [{{\"name\": \"f\"}}]}}", 400, "functions" },
        { "POST", Chat, $"{{{Hi}, \"tool_choice\": \"auto\"}}", 400, "tool_choice" },
        { "POST", Chat, $"{{{Hi}, \"parallel_tool_calls\": true}}", 400, "parallel_tool_calls" },
        { "POST", Chat, $"{{{Hi}, \"response_format\": {{\"type\": \"json_object\"}}}}", 400, "response_format" },
        { "POST", Chat, $"{{{Hi}, \"response_format\": {{\"type\": \"json_schema\", \"json_schema\": {{\"name\": \"x\", \"schema\": {{}}}}}}}}", 400, "response_format" },
        { "POST", Chat, $"{{{Hi}, \"response_format\": \"json\"}}", 400, "response_format" },
        { "POST", Chat, $"{{{Hi}, \"audio\": {{\"voice\": \"alloy\", \"format\": \"wav\"}}}}", 400, "audio" },
        { "POST", Chat, $"{{{Hi}, \"modalities\": [\"text\", \"audio\"]}}", 400, "modalities" },
        { "POST", Chat, $"{{{Hi}, \"prediction\": {{\"type\": \"content\", \"content\": \"hi\"}}}}", 400, "prediction" },
        { "POST", Chat, $"{{{Hi}, \"web_search_options\": {{}}}}", 400, "web_search_options" },
        // logit_bias
        { "POST", Chat, $"{{{Hi}, \"logit_bias\": [1, 2]}}", 400, "logit_bias" },
        { "POST", Chat, $"{{{Hi}, \"logit_bias\": {{\"fox\": 1}}}}", 400, "logit_bias" },
        { "POST", Chat, $"{{{Hi}, \"logit_bias\": {{\"-5\": 1}}}}", 400, "logit_bias" },
        { "POST", Chat, $"{{{Hi}, \"logit_bias\": {{\"12\": 101}}}}", 400, "logit_bias" },
        { "POST", Chat, $"{{{Hi}, \"logit_bias\": {{\"12\": \"ban\"}}}}", 400, "logit_bias" },
        { "POST", Chat, $"{{{Hi}, \"logit_bias\": {{\"99999999\": 1}}}}", 400, "logit_bias" },
        // completions
        { "POST", Completions, "{\"max_tokens\": 3}", 400, "prompt" },
        { "POST", Completions, "{\"prompt\": \"\"}", 400, "prompt" },
        { "POST", Completions, "{\"prompt\": [[1, -2]]}", 400, "prompt[0]" },
        { "POST", Completions, "{\"prompt\": \"hi\", \"suffix\": \" end\"}", 400, "suffix" },
        { "POST", Completions, "{\"prompt\": \"hi\", \"best_of\": 2}", 400, "best_of" },
        { "POST", Completions, "{\"prompt\": \"hi\", \"best_of\": 1, \"n\": 2}", 400, "best_of" },
        { "POST", Completions, "{\"prompt\": \"hi\", \"echo\": \"yes\"}", 400, "echo" },
        { "POST", Completions, "{\"prompt\": [\"a\", \"b\"], \"stream\": true}", 400, "prompt" },
        { "POST", Completions, "{\"prompt\": \"hi\", \"logprobs\": -1}", 400, "logprobs" },
        { "POST", Completions, "{\"prompt\": \"hi\", \"logit_bias\": {\"1\": -200}}", 400, "logit_bias" },
        // routes
        { "GET", Chat, "", 405, null },
        { "POST", "v1/embeddings", "{\"input\": \"hi\"}", 404, null },
        { "GET", "v1/models/gpt-4o", "", 404, "model" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Malformed_request_gets_a_4xx_json_error(string method, string path, string body, int status, string? param)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST") request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await S.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"status {(int)response.StatusCode}, expected {status}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        var message = error.GetProperty("message").GetString();
        Assert.False(string.IsNullOrWhiteSpace(message));
        Assert.Equal(param, error.GetProperty("param").GetString());
        if (param is not null) Assert.Contains(param.Split('[', '.')[0], message);
    }

    [Fact]
    public void There_are_at_least_30_kinds() => Assert.True(Cases.Count() >= 30);

    [Theory]
    [InlineData("\"user\": \"u-1\", \"metadata\": {\"k\": \"v\"}, \"store\": false, \"service_tier\": \"auto\"")]
    [InlineData("\"response_format\": {\"type\": \"text\"}, \"modalities\": [\"text\"]")]
    [InlineData("\"logit_bias\": {}, \"n\": 1, \"tools\": null, \"some_future_field\": 3")]
    public async Task Harmless_fields_are_accepted(string fields)
    {
        var (status, body) = await S.PostAsync(Chat, $"{{{Hi}, \"max_tokens\": 2, {fields}}}");
        Assert.True(status == 200, body.ToString());
    }

    [Fact]
    public async Task Completions_accept_best_of_1_and_an_empty_suffix()
    {
        var (status, body) = await S.PostAsync(Completions, "{\"prompt\": \"hi\", \"max_tokens\": 2, \"best_of\": 1, \"suffix\": \"\"}");
        Assert.True(status == 200, body.ToString());
    }
}
