using System.Net;
using System.Text;
using System.Text.Json;

namespace CptLab.Serving.Tests;

/// <summary>Each bad request gets its status and an OpenAI-style error body; none of them hurts the server.</summary>
[Collection("server")]
public class ErrorTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    [Theory]
    [InlineData("v1/chat/completions", "{\"messages\": [", 400, null, "invalid_json")]
    [InlineData("v1/chat/completions", "[1, 2]", 400, null, null)]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": \"hot\"}", 400, "temperature", "invalid_type")]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 1.5}", 400, "max_tokens", "invalid_type")]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": \"yes\"}", 400, "stream", "invalid_type")]
    [InlineData("v1/chat/completions", "{\"messages\": \"hi\"}", 400, "messages", "invalid_type")]
    [InlineData("v1/chat/completions", "{\"messages\": []}", 400, "messages", "empty_array")]
    [InlineData("v1/chat/completions", "{}", 400, "messages", null)]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", 400, "messages[0].role", "invalid_value")]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\"}]}", 400, "messages[0].content", null)]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 3}", 400, "temperature", "decimal_above_max_value")]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 9000}", 400, "messages", "context_length_exceeded")]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 2}", 400, "n", null)]
    [InlineData("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream_options\": {\"include_usage\": true}}", 400, "stream_options", null)]
    [InlineData("v1/chat/completions", "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 404, "model", "model_not_found")]
    [InlineData("v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 0}", 400, "max_tokens", null)]
    [InlineData("v1/completions", "{\"prompt\": [99999999]}", 400, null, null)]
    [InlineData("v1/completions", "{\"prompt\": 5}", 400, "prompt", "invalid_type")]
    [InlineData("v1/completions", "{\"prompt\": \"hi\", \"logprobs\": 50}", 400, "logprobs", "integer_above_max_value")]
    [InlineData("v1/nothing-here", "{}", 404, null, "unknown_url")]
    public async Task Bad_request_gets_status_and_error_body(string path, string body, int status, string? param, string? code)
    {
        using var response = await S.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());

        // The server is still healthy and serving.
        var ok = await S.PostAsync("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}");
        Assert.Equal(200, ok.Status);
    }

    [Fact]
    public async Task Api_key_is_required_when_set()
    {
        await using var server = await RunningServer.StartAsync(o => o with { ApiKey = "sk-test-123" });
        const string body = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}";
        var missing = await server.PostAsync("v1/chat/completions", body);
        var wrong = await server.PostAsync("v1/chat/completions", body, apiKey: "sk-wrong");
        var right = await server.PostAsync("v1/chat/completions", body, apiKey: "sk-test-123");
        Assert.Equal(401, missing.Status);
        Assert.Equal("invalid_api_key", missing.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(401, wrong.Status);
        Assert.Equal(200, right.Status);
        using var models = await server.Http.GetAsync("v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, models.StatusCode);
        using var health = await server.Http.GetAsync("health"); // probes need no key
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Each_request_is_logged_once_with_its_status_after_it_ends()
    {
        var lines = new List<string>();
        await using var server = await RunningServer.StartAsync(o => o with { RequestLog = l => { lock (lines) lines.Add(l); } });
        var ok = await server.PostAsync("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 3}");
        var bad = await server.PostAsync("v1/chat/completions", "{\"messages\": []}");
        Assert.Equal(200, ok.Status);
        Assert.Equal(400, bad.Status);
        await RunningServer.Eventually(() => { lock (lines) return lines.Count >= 2; }, "two request lines");
        lock (lines)
        {
            Assert.Equal(2, lines.Count);
            Assert.Single(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S+ POST /v1/chat/completions 200 \d+ ms$"));
            Assert.Single(lines, l => l.Contains("POST /v1/chat/completions 400 ", StringComparison.Ordinal));
        }
    }
}
