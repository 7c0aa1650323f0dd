using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Data.Tokenization;

namespace CptLab.Eval.Backends;

public sealed record OpenAiModelOptions
{
    /// <summary>The API root, e.g. http://127.0.0.1:8000/v1; a URL without /v1, or one ending in /completions, is taken as well.</summary>
    public required string BaseUrl { get; init; }
    /// <summary>Sent as "Authorization: Bearer KEY" when set; never written to results.</summary>
    public string? ApiKey { get; init; }
    /// <summary>The "model" of every request (null: the server's first /v1/models entry).</summary>
    public string? ModelName { get; init; }
    /// <summary>The served model's tokenizer: log-likelihoods need it (token-id prompts); generation sends token ids with it, text without.</summary>
    public ITextTokenizer? Tokenizer { get; init; }
    /// <summary>Generation through /v1/chat/completions, the context as one user message (the server applies the model's template).</summary>
    public bool Chat { get; init; }
    /// <summary>Requests in flight at once.</summary>
    public int Concurrency { get; init; } = 4;
    /// <summary>Log-likelihood prompts per /v1/completions request (the API takes a list of prompts).</summary>
    public int PromptsPerRequest { get; init; } = 8;
    /// <summary>Retries of a request answered 408, 429 or 5xx, or lost on the way, before the run fails.</summary>
    public int MaxRetries { get; init; } = 5;
    public TimeSpan FirstBackoff { get; init; } = TimeSpan.FromSeconds(0.5);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>The seed sent with every request, as lm-eval sends 1234 (greedy needs none; it keeps a server's sampling repeatable).</summary>
    public long Seed { get; init; } = 1234;
}

/// <summary>
/// The evaluation backend over any OpenAI-compatible server (vLLM, llama.cpp's server, <c>cptlab serve</c>), as
/// lm-eval's <c>local-completions</c> model. Log-likelihoods: the client tokenizes with the model's tokenizer exactly as
/// <see cref="LocalModel"/> does (<see cref="PairEncoding"/>), sends context + continuation as token ids to
/// /v1/completions with echo, logprobs 1 and max_tokens 1, several prompts per request, and sums
/// <c>logprobs.token_logprobs</c> over the continuation's positions; a token is greedy when its log-probability is the
/// highest in <c>top_logprobs</c>. Prompt positions are counted from the token ids sent, not from the end of the list,
/// so it does not matter whether the server lists the one generated token. Generation: temperature 0, stop = the
/// first four stop strings (OpenAI's limit), every stop string cut again on the client; /v1/completions with the
/// context as token ids (as text without a tokenizer) or, with <see cref="OpenAiModelOptions.Chat"/>,
/// /v1/chat/completions with the context as one user message. Requests run <see cref="OpenAiModelOptions.Concurrency"/>
/// at a time; 408, 429, 5xx and lost connections are retried with exponential backoff (or the server's Retry-After);
/// any other failure stops the run with the URL, the status and the server's message.
/// </summary>
public sealed class OpenAiModel : IEvalModel
{
    /// <summary>OpenAI refuses more than four stop strings; the rest are cut on the client.</summary>
    public const int MaxStopStrings = 4;

    readonly HttpClient _http;
    readonly OpenAiModelOptions _options;
    readonly Lock _progressLock = new();
    int _retries;

    OpenAiModel(HttpClient http, OpenAiModelOptions options, string baseUrl, string modelName)
    {
        _http = http;
        _options = options;
        BaseUrl = baseUrl;
        Name = modelName;
    }

    /// <summary>Checks the options, finds the model name (GET /models) when none is given; <paramref name="handler"/> replaces the network (tests).</summary>
    public static OpenAiModel Connect(OpenAiModelOptions options, HttpMessageHandler? handler = null, CancellationToken cancellation = default)
    {
        if (options.Concurrency < 1) throw new CptLabException($"--api-concurrency {options.Concurrency} must be at least 1");
        if (options.PromptsPerRequest < 1) throw new CptLabException($"prompts per request {options.PromptsPerRequest} must be at least 1");
        if (options.MaxRetries < 0) throw new CptLabException($"retries {options.MaxRetries} must not be negative");
        var baseUrl = NormaliseBaseUrl(options.BaseUrl);
        var http = new HttpClient(handler ?? new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency }) { Timeout = options.RequestTimeout };
        if (!string.IsNullOrEmpty(options.ApiKey)) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
        var model = new OpenAiModel(http, options, baseUrl, options.ModelName ?? "");
        try
        {
            if (options.ModelName is null) model.Name = Task.Run(() => model.FirstModelAsync(cancellation)).GetAwaiter().GetResult();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The model name every request carries: what results.json records as the model.</summary>
    public string Name { get; private set; }
    /// <summary>The API root requests go to (…/v1): results.json records it as api_base.</summary>
    public string BaseUrl { get; }
    /// <summary>Requests retried so far.</summary>
    public int Retries => Volatile.Read(ref _retries);

    /// <summary>http://host:8000, http://host:8000/v1/ and http://host:8000/v1/completions all mean http://host:8000/v1.</summary>
    public static string NormaliseBaseUrl(string url)
    {
        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new CptLabException($"--api-base '{url}' is not an http(s) URL; give the server's API root, e.g. http://127.0.0.1:8000/v1");
        var root = uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
        foreach (var suffix in (string[])["/chat/completions", "/completions"])
            if (root.EndsWith(suffix, StringComparison.Ordinal)) { root = root[..^suffix.Length]; break; }
        return root.EndsWith("/v1", StringComparison.Ordinal) ? root : root + "/v1";
    }

    public IReadOnlyList<LoglikelihoodResult> Loglikelihood(IReadOnlyList<LoglikelihoodRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (_options.Chat)
            throw new CptLabException($"{BaseUrl}: chat completions return no log-probabilities of a given continuation, so multiple-choice tasks need /v1/completions; run them without --chat");
        var tokenizer = _options.Tokenizer ?? throw new CptLabException(
            $"{BaseUrl}: log-likelihood (multiple-choice) tasks through an API need the model's tokenizer, to split context and continuation as lm-eval does; pass --tokenizer DIR (the model folder, or one holding its tokenizer.json)");
        var pairs = requests.Select(r => PairEncoding.EncodePair(tokenizer, r.Context, r.Continuation)).ToArray();
        if (pairs.Any(p => p.Continuation.Count == 0)) throw new CptLabException("a continuation with no tokens cannot be scored");
        var results = new LoglikelihoodResult[pairs.Length];
        RunChunks(pairs.Length, _options.PromptsPerRequest, "loglikelihood", progress, cancellation, async (start, count, ct) =>
        {
            var prompts = new JsonArray();
            for (int i = start; i < start + count; i++) prompts.Add(Ids(pairs[i].Context.Concat(pairs[i].Continuation)));
            var body = new JsonObject
            {
                ["model"] = Name, ["prompt"] = prompts, ["max_tokens"] = 1, ["temperature"] = 0, ["logprobs"] = 1, ["echo"] = true, ["seed"] = _options.Seed,
            };
            var url = BaseUrl + "/completions";
            var choices = Choices(await SendAsync(HttpMethod.Post, url, body, ct).ConfigureAwait(false), count, url);
            for (int j = 0; j < count; j++) results[start + j] = Score(choices[j], pairs[start + j], url);
        });
        return results;
    }

    public IReadOnlyList<string> GenerateUntil(IReadOnlyList<GenerateUntilRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default)
    {
        var outputs = new string[requests.Count];
        RunChunks(requests.Count, 1, "generate_until", progress, cancellation, async (i, _, ct) =>
        {
            var r = requests[i];
            var body = new JsonObject { ["model"] = Name, ["max_tokens"] = r.MaxGenToks, ["temperature"] = 0, ["seed"] = _options.Seed };
            if (r.Sampling is { } sampling)
            {
                // Sampled generation (--num-samples): the request's own temperature, nucleus, top-k and seed, so each sample draws differently.
                body["temperature"] = sampling.Temperature;
                body["top_p"] = sampling.TopP;
                if (sampling.TopK > 0) body["top_k"] = sampling.TopK; // not OpenAI's, but vLLM, llama.cpp and cptlab serve read it
                body["seed"] = (long)(sampling.Seed & long.MaxValue);
            }
            var stop = r.Until.Where(u => u.Length > 0).Distinct().Take(MaxStopStrings).ToArray();
            if (stop.Length > 0) body["stop"] = new JsonArray(stop.Select(s => (JsonNode)s).ToArray());
            string url;
            if (_options.Chat)
            {
                url = BaseUrl + "/chat/completions";
                body["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = r.Context });
            }
            else
            {
                url = BaseUrl + "/completions";
                body["prompt"] = _options.Tokenizer is { } tok ? Ids(PairEncoding.Encode(tok, r.Context)) : r.Context;
            }
            var choice = Choices(await SendAsync(HttpMethod.Post, url, body, ct).ConfigureAwait(false), 1, url)[0];
            var text = _options.Chat
                ? choice.TryGetProperty("message", out var m) && m.TryGetProperty("content", out var c) && c.ValueKind is JsonValueKind.String or JsonValueKind.Null ? c.GetString() ?? "" : throw Malformed(url, "choices[0].message.content")
                : choice.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : throw Malformed(url, "choices[0].text");
            outputs[i] = LocalModel.Cut(text, r.Until) ?? text;
        });
        return outputs;
    }

    /// <summary>Sums the echoed log-probabilities of the continuation's positions; greedy when each is the top one.</summary>
    static LoglikelihoodResult Score(JsonElement choice, TokenRequest pair, string url)
    {
        if (!choice.TryGetProperty("logprobs", out var lp) || lp.ValueKind != JsonValueKind.Object
            || !lp.TryGetProperty("token_logprobs", out var tokenLogprobs) || tokenLogprobs.ValueKind != JsonValueKind.Array)
            throw Malformed(url, "choices[].logprobs.token_logprobs (the server must support echo with logprobs)");
        lp.TryGetProperty("top_logprobs", out var tops);
        int start = pair.Context.Count, end = start + pair.Continuation.Count;
        if (tokenLogprobs.GetArrayLength() < end)
            throw new CptLabException($"{url}: the server returned {tokenLogprobs.GetArrayLength()} token log-probabilities for a prompt of {end} tokens; it must echo the prompt's tokens (echo: true) as given");
        double sum = 0;
        bool greedy = true;
        for (int k = start; k < end; k++)
        {
            var x = tokenLogprobs[k];
            if (x.ValueKind != JsonValueKind.Number) throw new CptLabException($"{url}: no log-probability for prompt token {k} (got {x.ValueKind}); the continuation's tokens must all be scored");
            double v = x.GetDouble();
            sum += v;
            // lm-eval: greedy unless a listed alternative is more likely than the token itself.
            if (tops.ValueKind != JsonValueKind.Array || tops.GetArrayLength() <= k || tops[k].ValueKind != JsonValueKind.Object) greedy = false;
            else foreach (var alt in tops[k].EnumerateObject()) if (alt.Value.ValueKind == JsonValueKind.Number && alt.Value.GetDouble() > v) greedy = false;
        }
        return new LoglikelihoodResult(sum, greedy, pair.Continuation.Count);
    }

    static JsonArray Ids(IEnumerable<int> ids) => new(ids.Select(i => (JsonNode)i).ToArray());

    /// <summary>The reply's choices in index order; exactly <paramref name="expected"/> of them.</summary>
    static JsonElement[] Choices(JsonElement reply, int expected, string url)
    {
        if (reply.ValueKind != JsonValueKind.Object || !reply.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array)
            throw Malformed(url, "choices");
        var list = choices.EnumerateArray().ToArray();
        if (list.Length != expected) throw new CptLabException($"{url}: the server returned {list.Length} choices for {expected} prompts");
        return list.OrderBy(c => c.TryGetProperty("index", out var i) && i.TryGetInt32(out var n) ? n : 0).ToArray();
    }

    static CptLabException Malformed(string url, string field) => new($"{url}: the reply has no {field}; is this an OpenAI-compatible server?");

    async Task<string> FirstModelAsync(CancellationToken ct)
    {
        var url = BaseUrl + "/models";
        var reply = await SendAsync(HttpMethod.Get, url, null, ct).ConfigureAwait(false);
        if (reply.ValueKind == JsonValueKind.Object && reply.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Array
            && data.GetArrayLength() > 0 && data[0].TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
            return id.GetString()!;
        throw new CptLabException($"{url}: the server lists no model; pass --model-name NAME");
    }

    /// <summary>Runs work(start, count) over chunks of the requests, Concurrency at a time; the first failure cancels the rest.</summary>
    void RunChunks(int total, int chunk, string stage, IProgress<EvalProgress>? progress, CancellationToken cancellation, Func<int, int, CancellationToken, Task> work)
    {
        if (total == 0) return;
        // Off the caller's synchronization context, so that blocking on the result cannot deadlock.
        Task.Run(async () =>
        {
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            using var gate = new SemaphoreSlim(_options.Concurrency);
            int done = 0;
            async Task One(int start, int count)
            {
                await gate.WaitAsync(failed.Token).ConfigureAwait(false);
                try { await work(start, count, failed.Token).ConfigureAwait(false); }
                catch { failed.Cancel(); throw; }
                finally { gate.Release(); }
                lock (_progressLock)
                {
                    done += count;
                    progress?.Report(new EvalProgress(stage, done, total));
                }
            }
            var tasks = new List<Task>();
            for (int s = 0; s < total; s += chunk) tasks.Add(One(s, Math.Min(chunk, total - s)));
            await Task.WhenAll(tasks).ConfigureAwait(false); // a fault outranks the cancellations it caused
        }, cancellation).GetAwaiter().GetResult();
    }

    /// <summary>One request with bounded retries on 408, 429, 5xx and lost connections; any other failure is a CptLabException.</summary>
    async Task<JsonElement> SendAsync(HttpMethod method, string url, JsonObject? body, CancellationToken ct)
    {
        var json = body?.ToJsonString();
        for (int attempt = 0; ; attempt++)
        {
            string failure;
            TimeSpan? retryAfter = null;
            try
            {
                using var request = new HttpRequestMessage(method, url);
                if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
                using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
                var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                int status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    try { return JsonDocument.Parse(text).RootElement.Clone(); }
                    catch (JsonException e) { throw new CptLabException($"{method} {url}: the reply is not JSON ({e.Message}): {Excerpt(text)}"); }
                }
                failure = $"HTTP {status} {response.ReasonPhrase}: {ErrorMessage(text)}";
                if (!(status is 408 or 429 || status >= 500)) throw new CptLabException($"{method} {url} failed with {failure}{Hint(status)}");
                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (HttpRequestException e) { failure = e.Message; }   // refused or reset: a server restarting
            catch (TaskCanceledException) when (!ct.IsCancellationRequested) { failure = $"no reply within {_options.RequestTimeout.TotalSeconds:0} s"; }
            if (attempt >= _options.MaxRetries)
                throw new CptLabException($"{method} {url} failed {attempt + 1} times; the last: {failure}");
            Interlocked.Increment(ref _retries);
            var backoff = TimeSpan.FromTicks(Math.Min(_options.MaxBackoff.Ticks, _options.FirstBackoff.Ticks << Math.Min(attempt, 30)));
            var delay = retryAfter is { } ra && ra > backoff ? TimeSpan.FromTicks(Math.Min(ra.Ticks, _options.MaxBackoff.Ticks)) : backoff; // the server's Retry-After, within the bound
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
    }

    static string Hint(int status) => status switch
    {
        401 or 403 => " (the server wants an API key: pass --api-key KEY or set OPENAI_API_KEY)",
        404 => " (check --api-base, the API root such as http://127.0.0.1:8000/v1, and --model-name)",
        _ => "",
    };

    /// <summary>OpenAI's {"error": {"message": …}}, else the start of the body.</summary>
    static string ErrorMessage(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var e))
            {
                if (e.ValueKind == JsonValueKind.String) return e.GetString()!;
                if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String) return m.GetString()!;
            }
        }
        catch (JsonException) { }
        return Excerpt(body);
    }

    static string Excerpt(string text) => text.Length <= 300 ? text : string.Create(CultureInfo.InvariantCulture, $"{text[..300]}… ({text.Length} chars)");

    public void Dispose() => _http.Dispose();
}
