using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Serving;

namespace CptLab.Serving.Tests;

/// <summary>The paged KV cache seen from outside: memory in proportion to the tokens held, preemption that changes nothing, batch-independent sampling.</summary>
public class PagedServingTests
{
    /// <summary>The test model with an 8,192-token context (same weights): chat requests without max_tokens may each run to 8k.</summary>
    static readonly Lazy<string> LongContextDir = new(() =>
    {
        var dir = Path.Combine(Path.GetDirectoryName(TestModelDir.Path)!, "tiny-chat-8k");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(TestModelDir.Path)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        config["max_position_embeddings"] = 8192;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        return dir;
    });

    static string Chat(string content, int? maxTokens, double temperature, int seed, bool stream = false) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["messages"] = new[] { new { role = "user", content } },
        ["max_tokens"] = maxTokens, ["temperature"] = temperature, ["top_p"] = 0.9, ["seed"] = seed, ["ignore_eos"] = true, ["stream"] = stream,
    }.Where(kv => kv.Value is not null).ToDictionary());

    static async Task<string> Reply(RunningServer s, string body)
    {
        var (status, json) = await s.PostAsync("v1/chat/completions", body);
        Assert.True(status == 200, $"status {status}: {json}");
        return json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    [Fact]
    public async Task Thirty_two_chats_without_max_tokens_on_an_8k_context_hold_blocks_for_their_tokens_not_32_contexts()
    {
        await using var s = await RunningServer.StartAsync(o => o with { ModelDir = LongContextDir.Value });
        var kv0 = s.Scheduler.Metrics.Kv;
        Assert.Equal(0, kv0.BlocksUsed);
        var streams = new List<(HttpResponseMessage Response, StreamReader Reader)>();
        for (int i = 0; i < 32; i++)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(Chat($"Tell me about servers, number {i}.", null, 0.8, i, stream: true), Encoding.UTF8, "application/json") };
            var response = await s.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            streams.Add((response, new StreamReader(await response.Content.ReadAsStreamAsync())));
        }
        try
        {
            // Every stream has produced content: all 32 are running, none limited by max_tokens.
            foreach (var (_, reader) in streams)
                for (int events = 0; events < 3;)
                    if ((await reader.ReadLineAsync())!.StartsWith("data: ", StringComparison.Ordinal)) events++;
            await RunningServer.Eventually(() => s.Scheduler.Metrics.Kv.Sequences == 32, "all 32 sequences hold blocks");
            var kv = s.Scheduler.Metrics.Kv;
            int bs = kv.BlockSize;
            // Blocks in proportion to the tokens held: each sequence has at most one partly filled block.
            Assert.InRange(kv.BlocksUsed, (kv.TokensHeld + bs - 1) / bs, kv.TokensHeld / bs + kv.Sequences);
            // Reserving each request's whole remaining context, as before, would have held 32 × ~8,170 positions.
            Assert.True(kv.TokensHeld < 32 * 8192 / 20, $"{kv.TokensHeld} positions held");
            Assert.True((long)kv.BlocksUsed * bs < 32 * 8192 / 10, $"{kv.BlocksUsed} blocks of {bs} held");
        }
        finally
        {
            foreach (var (response, reader) in streams)
            {
                reader.Dispose();
                response.Dispose();
            }
        }
        await RunningServer.Eventually(() => s.Scheduler.Metrics.Kv is { BlocksUsed: 0, Sequences: 0 }, "every block back in the pool when the clients leave");
    }

    [Fact]
    public async Task Preempted_sequences_resume_and_complete_with_the_same_tokens_as_alone()
    {
        var prompts = new[] { "The quick brown fox", "A language model predicts", "Servers answer requests", "你好，世界" };
        // Alone, on a server with room for everything: the reference replies (greedy and seeded sampling).
        var alone = new Dictionary<string, string>();
        await using (var roomy = await RunningServer.StartAsync())
            foreach (var p in prompts)
                foreach (var t in new[] { 0.0, 0.9 })
                    alone[p + t] = await Reply(roomy, Chat(p, 90, t, seed: 5));

        // 12 blocks of 16 = 192 positions for 8 sequences of ~105: they cannot all hold their blocks at once.
        await using var s = await RunningServer.StartAsync(o => o with { Scheduler = o.Scheduler with { KvCacheTokens = 192, KvBlockSize = 16, MaxConcurrentSequences = 8 } });
        var replies = await Task.WhenAll(prompts.SelectMany(p => new[] { 0.0, 0.9 }.Select(async t => (Key: p + t, Text: await Reply(s, Chat(p, 90, t, seed: 5))))));
        Assert.True(s.Scheduler.Metrics.PreemptionsTotal >= 1, "the small cache forced no preemption; the test does not test it");
        foreach (var (key, text) in replies) Assert.Equal(alone[key], text);
        Assert.Contains($"cptlab_preemptions_total{{model=\"tiny-chat\"}} {s.Scheduler.Metrics.PreemptionsTotal}", await s.MetricsAsync());
        Assert.Equal(0, s.Scheduler.Metrics.Kv.BlocksUsed);
    }

    [Fact]
    public async Task Seeded_sampled_replies_are_the_same_at_batch_1_and_batch_32()
    {
        await using var s = await RunningServer.StartAsync();
        var bodies = Enumerable.Range(0, 32).Select(i => Chat(i % 2 == 0 ? "The cat sat on" : "你好，今天", 24, 1.0, seed: 100 + i)).ToArray();
        var one = new List<string>();
        foreach (var b in bodies) one.Add(await Reply(s, b));          // batch 1: one request at a time
        var batched = await Task.WhenAll(bodies.Select(b => Reply(s, b))); // batch up to 32
        Assert.Equal(one, batched);
        Assert.True(one.Distinct().Count() > 8, "the seeds gave too few different replies for the test to mean anything");
    }

    [Fact]
    public async Task A_prompt_larger_than_the_whole_cache_is_refused_with_400_naming_the_cache()
    {
        await using var s = await RunningServer.StartAsync(o => o with { Scheduler = o.Scheduler with { KvCacheTokens = 32, KvBlockSize = 16 } });
        var (status, json) = await s.PostAsync("v1/chat/completions", Chat(string.Join(' ', Enumerable.Repeat("The quick brown fox jumps over the lazy dog.", 8)), 4, 0, 1));
        Assert.Equal(400, status);
        Assert.Contains("KV cache", json.GetProperty("error").GetProperty("message").GetString());
        await Reply(s, Chat("hi", 4, 0, 1)); // and the server goes on serving
    }
}
