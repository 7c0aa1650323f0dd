using System.Net;
using System.Text;
using System.Text.Json;
using CptLab.Data.Tokenization;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Serving.Tests;

/// <summary>The HTTP API with raw requests: greedy equality under batching, the SSE wire format, completions scoring.</summary>
[Collection("server")]
public class ApiTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    static string ChatBody(string user, int maxTokens, bool stream = false, bool usage = false) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["model"] = null, ["messages"] = new[] { new { role = "user", content = user } }, ["temperature"] = 0, ["max_tokens"] = maxTokens,
        ["stream"] = stream, ["stream_options"] = usage ? new { include_usage = true } : null,
    });

    [Fact]
    public async Task Concurrent_greedy_requests_each_equal_the_librarys_greedy_generation()
    {
        string[] users = ["The quick brown fox", "你好，世界", "Numbers like 12345", "A language model", "The cat sat", "Servers answer"];
        int[] lengths = [30, 12, 45, 7, 60, 25]; // different lengths, so sequences join and leave the batch at different steps
        long stepsBefore = Steps(await S.MetricsAsync());
        var replies = await Task.WhenAll(users.Select((u, i) => S.PostAsync("v1/chat/completions", ChatBody(u, lengths[i]))));
        long steps = Steps(await S.MetricsAsync()) - stepsBefore;
        int totalTokens = 0;
        for (int i = 0; i < users.Length; i++)
        {
            var (status, body) = replies[i];
            Assert.Equal(200, status);
            var prompt = S.Model.EncodeChat([new ChatMessage("user", users[i])]);
            var reference = Reference.Greedy(S.Model, prompt, lengths[i]);
            var choice = body.GetProperty("choices")[0];
            Assert.Equal(reference.Text, choice.GetProperty("message").GetProperty("content").GetString());
            Assert.Equal(reference.Finish, choice.GetProperty("finish_reason").GetString());
            Assert.Equal(reference.Tokens, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            totalTokens += reference.Tokens;
        }
        Assert.True(totalTokens > users.Length * 3, $"only {totalTokens} tokens in all: the replies are too short to show anything");
        // Batching: far fewer model iterations than tokens (one request at a time would need one per token).
        Assert.True(steps < totalTokens * 0.75, $"{steps} scheduler steps for {totalTokens} tokens: requests were not batched");
    }

    static long Steps(string metrics) => long.Parse(metrics.Split('\n').First(l => l.StartsWith("cptlab_scheduler_steps_total{")).Split(' ')[1]);

    [Fact]
    public async Task Stream_is_role_chunk_deltas_finish_chunk_usage_chunk_then_done_with_one_id()
    {
        var chunks = await Sse("v1/chat/completions", ChatBody("The quick brown fox", 20, stream: true, usage: true));
        Assert.Equal("[DONE]", chunks[^1]);
        var json = chunks[..^1].Select(c => JsonDocument.Parse(c).RootElement).ToList();
        Assert.Single(json.Select(j => j.GetProperty("id").GetString()).Distinct());
        Assert.Single(json.Select(j => j.GetProperty("created").GetInt64()).Distinct());
        Assert.All(json, j => Assert.Equal("chat.completion.chunk", j.GetProperty("object").GetString()));

        var first = json[0].GetProperty("choices")[0];
        Assert.Equal("assistant", first.GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("", first.GetProperty("delta").GetProperty("content").GetString());
        var usageChunk = json[^1];
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        var finishChunk = json[^2].GetProperty("choices")[0];
        Assert.Equal("length", finishChunk.GetProperty("finish_reason").GetString());
        Assert.Empty(finishChunk.GetProperty("delta").EnumerateObject());
        var deltas = json[1..^2].Select(j => j.GetProperty("choices")[0]).ToList();
        Assert.All(deltas, d => Assert.Equal(JsonValueKind.Null, d.GetProperty("finish_reason").ValueKind));
        Assert.All(json[..^1], j => Assert.Equal(JsonValueKind.Null, j.GetProperty("usage").ValueKind));

        var prompt = S.Model.EncodeChat([new ChatMessage("user", "The quick brown fox")]);
        var reference = Reference.Greedy(S.Model, prompt, 20);
        Assert.Equal(reference.Text, string.Concat(deltas.Select(d => d.GetProperty("delta").GetProperty("content").GetString())));
        var usage = usageChunk.GetProperty("usage");
        Assert.Equal(20, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(prompt.Length, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(prompt.Length + 20, usage.GetProperty("total_tokens").GetInt32());

        // Without stream_options there is no usage chunk and no usage field.
        var plain = await Sse("v1/chat/completions", ChatBody("The quick brown fox", 5, stream: true));
        Assert.All(plain[..^1], c => Assert.False(JsonDocument.Parse(c).RootElement.TryGetProperty("usage", out _)));
        Assert.Equal("length", JsonDocument.Parse(plain[^2]).RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    async Task<List<string>> Sse(string path, string body)
    {
        using var response = await S.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("\n\n", text);
        return text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e["data: ".Length..] : throw new Xunit.Sdk.XunitException($"not an SSE data line: {e}"))
            .ToList();
    }

    [Fact]
    public async Task Completions_echo_with_logprobs_scores_the_prompt_like_a_full_forward_pass()
    {
        // Multiple-choice scoring as evaluation harnesses do it: echo, logprobs, max_tokens 0, prompt as token ids.
        var ids = S.Model.Tokenizer.Encode("The cat sat on the mat, and the dog", addBos: true);
        var (status, body) = await S.PostAsync("v1/completions", JsonSerializer.Serialize(new { prompt = ids, max_tokens = 0, echo = true, logprobs = 2, temperature = 0 }));
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        var lp = choice.GetProperty("logprobs");
        var tokenLogprobs = lp.GetProperty("token_logprobs").EnumerateArray().ToList();
        Assert.Equal(ids.Length, tokenLogprobs.Count);
        Assert.Equal(JsonValueKind.Null, tokenLogprobs[0].ValueKind);
        Assert.Equal("The cat sat on the mat, and the dog", choice.GetProperty("text").GetString());
        Assert.Equal(ids.Length, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        // Reference: log-softmax of a full forward pass over the prompt, in double precision.
        using var model = HfCheckpoint.Load(TestModelDir.Path);
        using var _ = no_grad();
        using var logits = model.forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0].to(ScalarType.Float64).log_softmax(-1);
        var tops = lp.GetProperty("top_logprobs").EnumerateArray().ToList();
        for (int t = 1; t < ids.Length; t++)
        {
            double expected = logits[t - 1, ids[t]].item<double>();
            Assert.Equal(expected, tokenLogprobs[t].GetDouble(), 4);
            var top = tops[t].EnumerateObject().ToList();
            Assert.InRange(top.Count, 1, 3); // 2 best plus the actual token when it is not among them
            Assert.Equal(logits[t - 1].max().item<double>(), top.Max(p => p.Value.GetDouble()), 4);
        }
        var offsets = lp.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToList();
        var tokens = lp.GetProperty("tokens").EnumerateArray().Select(o => o.GetString()!).ToList();
        Assert.Equal(0, offsets[1]); // BOS takes no room in the text
        for (int t = 2; t < ids.Length; t++) Assert.Equal(offsets[t - 1] + tokens[t - 1].Length, offsets[t]);
    }

    [Fact]
    public async Task Completions_text_prompt_greedy_matches_the_library_and_batches_several_prompts()
    {
        string[] prompts = ["The quick brown", "Continual pre-training"];
        var (status, body) = await S.PostAsync("v1/completions", JsonSerializer.Serialize(new { prompt = prompts, max_tokens = 12, temperature = 0, echo = true }));
        Assert.Equal(200, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        for (int i = 0; i < prompts.Length; i++)
        {
            var ids = S.Model.Tokenizer.Encode(prompts[i], addBos: true);
            var reference = Reference.Greedy(S.Model, ids, 12);
            var choice = body.GetProperty("choices")[i];
            Assert.Equal(i, choice.GetProperty("index").GetInt32());
            Assert.Equal(prompts[i] + reference.Text, choice.GetProperty("text").GetString());
        }
    }

    [Fact]
    public async Task Stop_strings_end_the_reply_before_the_stop_text()
    {
        var full = (await S.PostAsync("v1/chat/completions", ChatBody("The quick brown fox", 40))).Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.True(full.Length >= 6, $"reply too short to test stop strings: '{full}'");
        var stop = full.Substring(full.Length / 2, 3);
        var body = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = "The quick brown fox" } }, temperature = 0, max_tokens = 40, stop = new[] { stop } });
        var choice = (await S.PostAsync("v1/chat/completions", body)).Body.GetProperty("choices")[0];
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Health_models_metrics_and_page_answer()
    {
        using var health = await S.Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var models = JsonDocument.Parse(await S.Http.GetStringAsync("v1/models")).RootElement;
        Assert.Equal("list", models.GetProperty("object").GetString());
        Assert.Equal(S.Model.Name, models.GetProperty("data")[0].GetProperty("id").GetString());
        var metrics = await S.MetricsAsync();
        foreach (var name in new[] { "cptlab_requests_running", "cptlab_requests_waiting", "cptlab_generation_tokens_total", "cptlab_time_to_first_token_seconds_bucket", "cptlab_generation_tokens_per_second" })
            Assert.Contains(name, metrics);
        var page = await S.Http.GetStringAsync("");
        Assert.Contains("<html", page);
    }
}
