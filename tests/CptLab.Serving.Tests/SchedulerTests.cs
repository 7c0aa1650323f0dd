using System.Net;
using System.Text;
using System.Text.Json;

namespace CptLab.Serving.Tests;

/// <summary>Admission, the bounded queue, cancellation and loading, seen from outside.</summary>
public class SchedulerTests
{
    static string LongStream(int maxTokens = 4000) =>
        JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = "The quick brown fox" } }, max_tokens = maxTokens, stream = true, ignore_eos = true, temperature = 0.8, seed = 1 });

    static async Task<(HttpResponseMessage Response, StreamReader Reader)> OpenStream(RunningServer s, string body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        var response = await s.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        // Read up to the first content delta: the sequence is running.
        for (int events = 0; events < 2;)
            if ((await reader.ReadLineAsync())!.StartsWith("data: ", StringComparison.Ordinal)) events++;
        return (response, reader);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_has_its_sequence_cancelled_and_cache_freed()
    {
        await using var s = await RunningServer.StartAsync();
        var metrics = s.Scheduler.Metrics;
        var (response, reader) = await OpenStream(s, LongStream());
        Assert.Equal(1, metrics.Running);
        Assert.Equal(1, metrics.Kv.Sequences);
        long generatedAtDisconnect = metrics.GeneratedTokensTotal;
        reader.Dispose();
        response.Dispose(); // closes the connection mid-stream

        await RunningServer.Eventually(() => metrics.Kv.Sequences == 0 && metrics.Kv.BlocksUsed == 0 && metrics.Running == 0, "the cancelled sequence leaves the batch and frees its cache");
        Assert.True(metrics.CancelledTotal == 1, $"not cancelled: {metrics.GeneratedTokensTotal} tokens were generated");
        Assert.True(metrics.GeneratedTokensTotal < 4000, $"generation went on after the disconnect ({metrics.GeneratedTokensTotal} tokens)");
        Assert.True(generatedAtDisconnect >= 1);
        // And the server goes on serving.
        Assert.Equal(200, (await s.PostAsync("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 3}")).Status);
    }

    [Fact]
    public async Task A_full_queue_answers_429_and_admission_respects_the_sequence_limit()
    {
        await using var s = await RunningServer.StartAsync(o => o with { Scheduler = o.Scheduler with { MaxConcurrentSequences = 1, MaxBatchedTokens = 64, MaxWaiting = 1 } });
        var metrics = s.Scheduler.Metrics;
        var (first, firstReader) = await OpenStream(s, LongStream());       // running: the one slot
        using var secondCancel = new CancellationTokenSource();
        var second = s.Http.PostAsync("v1/chat/completions", new StringContent(LongStream(5), Encoding.UTF8, "application/json"), secondCancel.Token); // waiting
        await RunningServer.Eventually(() => metrics.Waiting == 1, "the second request waits for a slot");
        Assert.Equal(1, metrics.Running);

        var third = await s.PostAsync("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}");
        Assert.Equal(429, third.Status);
        Assert.Equal("rate_limit_exceeded", third.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(1, metrics.RejectedTotal);

        // When the first leaves, the second is admitted and completes.
        firstReader.Dispose();
        first.Dispose();
        using var secondResponse = await second.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, secondResponse.StatusCode);
        Assert.EndsWith("data: [DONE]\n\n", await secondResponse.Content.ReadAsStringAsync());
        await RunningServer.Eventually(() => metrics.Kv.Sequences == 0 && metrics.Kv.BlocksUsed == 0, "every cache freed");
    }

    [Fact]
    public async Task Health_is_503_while_loading_then_200()
    {
        using var gate = new ManualResetEventSlim();
        await using var s = await RunningServer.StartAsync(load: () =>
        {
            gate.Wait(TimeSpan.FromSeconds(30));
            return ServedModel.Load(TestModelDir.Path);
        });
        using (var loading = await s.Http.GetAsync("health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, loading.StatusCode);
            Assert.Contains("loading", await loading.Content.ReadAsStringAsync());
        }
        var early = await s.PostAsync("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}");
        Assert.Equal(503, early.Status);
        gate.Set();
        await s.Scheduler.Loaded.WaitAsync(TimeSpan.FromSeconds(30));
        using var ready = await s.Http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }
}
