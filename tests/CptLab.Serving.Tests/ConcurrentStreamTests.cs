using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace CptLab.Serving.Tests;

/// <summary>
/// Issue 14: 64 concurrent streams for 60 s give no 5xx. The everyday run holds 64 streams for 10 s; with
/// CPTLAB_SLOW_TESTS=1 it holds them for the issue's 60 s:
///   CPTLAB_SLOW_TESTS=1 dotnet test tests/CptLab.Serving.Tests -c Release --filter "FullyQualifiedName~ConcurrentStreamTests"
/// Each of 64 clients streams chat replies back to back until the time is up; every response must be 200, every
/// stream must end with a finish_reason and [DONE], and none may carry an error event.
/// </summary>
[Collection("server")]
public class ConcurrentStreamTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    const int Streams = 64;

    [Fact]
    public async Task Sixty_four_concurrent_streams_give_no_errors()
    {
        var seconds = Environment.GetEnvironmentVariable("CPTLAB_SLOW_TESTS") == "1" ? 60 : 10;
        var deadline = Stopwatch.StartNew();
        var statuses = new System.Collections.Concurrent.ConcurrentBag<int>();
        var problems = new System.Collections.Concurrent.ConcurrentBag<string>();
        int finished = 0;

        async Task Client(int index)
        {
            for (int round = 0; deadline.Elapsed < TimeSpan.FromSeconds(seconds); round++)
            {
                var body = $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"client {index} round {round}\"}}], \"stream\": true, \"max_tokens\": {4 + (index + round) % 12}, \"temperature\": 0.8, \"seed\": {index * 1000 + round}}}";
                using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                using var response = await S.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                statuses.Add((int)response.StatusCode);
                var text = await response.Content.ReadAsStringAsync();
                if (response.StatusCode != System.Net.HttpStatusCode.OK) { problems.Add($"client {index} round {round}: {(int)response.StatusCode} {text}"); continue; }
                var events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e[6..] : e).ToList();
                if (events.Count == 0 || events[^1] != "[DONE]") { problems.Add($"client {index} round {round}: the stream did not end with [DONE]"); continue; }
                bool finish = false;
                foreach (var e in events[..^1])
                {
                    using var chunk = JsonDocument.Parse(e);
                    if (chunk.RootElement.TryGetProperty("error", out var error)) problems.Add($"client {index} round {round}: error event {error}");
                    else if (chunk.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = true;
                }
                if (!finish) problems.Add($"client {index} round {round}: no finish_reason");
                Interlocked.Increment(ref finished);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Streams).Select(i => Task.Run(() => Client(i))));
        Assert.True(problems.IsEmpty, string.Join("\n", problems.Take(10)));
        Assert.DoesNotContain(statuses, s => s >= 500);
        Assert.True(finished >= Streams, $"only {finished} streams finished in {seconds} s");
        var after = await S.PostAsync("v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}");
        Assert.Equal(200, after.Status);
    }
}
