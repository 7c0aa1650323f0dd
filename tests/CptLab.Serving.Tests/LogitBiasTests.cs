using System.Text.Json;
using CptLab.Data.Tokenization;

namespace CptLab.Serving.Tests;

/// <summary>
/// logit_bias, as OpenAI: the value is added to the token's logit before sampling, so +100 all but forces a
/// token and −100 bans it. Reported logprobs stay the raw model's (before bias and penalties), as vLLM's default.
/// </summary>
[Collection("server")]
public class LogitBiasTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    const string Ask = "\"messages\": [{\"role\": \"user\", \"content\": \"Tell me about the fox.\"}], \"temperature\": 0";

    [Fact]
    public async Task Plus_100_makes_every_greedy_token_that_token()
    {
        int forced = TextTokenizerExtensions.Encode(S.Model.Tokenizer, " cat").Single();
        var (status, body) = await S.PostAsync("v1/chat/completions",
            $"{{{Ask}, \"max_tokens\": 6, \"logprobs\": true, \"logit_bias\": {{\"{forced}\": 100}}}}");
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(string.Concat(Enumerable.Repeat(" cat", 6)), choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.All(choice.GetProperty("logprobs").GetProperty("content").EnumerateArray(), t => Assert.Equal(" cat", t.GetProperty("token").GetString()));
    }

    [Fact]
    public async Task Minus_100_on_the_greedy_token_picks_the_runner_up_and_leaves_logprobs_raw()
    {
        var (_, plain) = await S.PostAsync("v1/chat/completions", $"{{{Ask}, \"max_tokens\": 3, \"logprobs\": true, \"top_logprobs\": 5}}");
        var first = plain.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content")[0];
        var top = first.GetProperty("top_logprobs");
        int greedy = IdOf(first);
        Assert.Equal(first.GetProperty("token").GetString(), top[0].GetProperty("token").GetString());

        var (status, biased) = await S.PostAsync("v1/chat/completions",
            $"{{{Ask}, \"max_tokens\": 3, \"logprobs\": true, \"top_logprobs\": 5, \"logit_bias\": {{\"{greedy}\": -100}}}}");
        Assert.Equal(200, status);
        var now = biased.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content")[0];
        Assert.NotEqual(greedy, IdOf(now));
        // The runner-up of the raw distribution, with its raw logprob: the bias changed the choice, not the report.
        Assert.Equal(IdOf(top[1]), IdOf(now));
        Assert.Equal(top[1].GetProperty("logprob").GetDouble(), now.GetProperty("logprob").GetDouble(), 1e-4);
        var nowTop = now.GetProperty("top_logprobs");
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(IdOf(top[i]), IdOf(nowTop[i]));
            Assert.Equal(top[i].GetProperty("logprob").GetDouble(), nowTop[i].GetProperty("logprob").GetDouble(), 1e-4);
        }
    }

    [Fact]
    public async Task Completions_take_logit_bias_too()
    {
        int forced = TextTokenizerExtensions.Encode(S.Model.Tokenizer, " dog").Single();
        var (status, body) = await S.PostAsync("v1/completions",
            $"{{\"prompt\": \"The quick brown\", \"temperature\": 0, \"max_tokens\": 4, \"logit_bias\": {{\"{forced}\": 100}}}}");
        Assert.Equal(200, status);
        Assert.Equal(" dog dog dog dog", body.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_token_id_outside_the_vocabulary_is_refused_naming_logit_bias()
    {
        int vocab = S.Model.Model.Config.VocabSize;
        var (status, body) = await S.PostAsync("v1/chat/completions", $"{{{Ask}, \"logit_bias\": {{\"{vocab}\": 5}}}}");
        Assert.Equal(400, status);
        var error = body.GetProperty("error");
        Assert.Equal("logit_bias", error.GetProperty("param").GetString());
        Assert.Contains($"{vocab}", error.GetProperty("message").GetString());
    }

    [Fact]
    public void Penalties_add_the_bias_then_subtract_the_penalties()
    {
        var request = new SequenceRequest([1], 4, CptLab.Model.SamplingOptions.Greedy)
        {
            FrequencyPenalty = 0.5, PresencePenalty = 1.0, LogitBias = new Dictionary<int, float> { [1] = 3f, [2] = -100f },
        };
        var p = new LogitPenalties(request);
        p.Record(1);
        p.Record(1);
        var row = new float[] { 0, 10, 10, 10 };
        p.Apply(row);
        Assert.Equal([0f, 10 + 3 - (0.5f * 2 + 1), 10 - 100, 10], row);
        Assert.False(p.IsOff);
        Assert.True(new LogitPenalties(0, 0, new Dictionary<int, float>()).IsOff);
    }

    /// <summary>The token's id, found by its bytes (exact, unlike its text, which may hold U+FFFD).</summary>
    int IdOf(JsonElement token)
    {
        var bytes = token.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray();
        var tokenizer = S.Model.Tokenizer;
        for (int id = 0; id < tokenizer.VocabSize; id++)
            if (tokenizer.TokenBytes(id).AsSpan().SequenceEqual(bytes)) return id;
        throw new InvalidOperationException($"no token has the bytes [{string.Join(' ', bytes)}]");
    }
}
