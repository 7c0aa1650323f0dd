using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Tokenization;
using CptLab.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CptLab.Serving;

/// <summary>
/// The HTTP handlers. Each parses and checks its request (<see cref="ApiRequests"/>), submits to the
/// scheduler, and writes OpenAI's JSON, or for stream=true server-sent events: a role chunk, content
/// chunks, a chunk with finish_reason, a usage chunk when stream_options.include_usage, then
/// "data: [DONE]", every chunk with the same id and created. Any failure becomes OpenAI-style error JSON.
/// </summary>
sealed class OpenAiEndpoints(BatchScheduler scheduler, ServerOptions options)
{
    static readonly JsonSerializerOptions JsonOut = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    readonly long _startedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    readonly byte[]? _apiKey = options.ApiKey is { } k ? Encoding.UTF8.GetBytes(k) : null;

    public void Map(WebApplication app)
    {
        if (options.RequestLog is { } log) app.Use((ctx, next) => LogRequest(ctx, next, log));
        app.Use(Guard);
        app.MapGet("/", ctx => Page(ctx, "index.html", "text/html; charset=utf-8"));
        app.MapGet("/health", Health);
        app.MapGet("/metrics", ctx =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return ctx.Response.WriteAsync(scheduler.Metrics.ToPrometheus(options.ModelName));
        });
        app.MapGet("/v1/models", ctx => WriteJson(ctx, 200, new { @object = "list", data = new[] { ModelCard() } }));
        app.MapGet("/v1/models/{id}", (HttpContext ctx, string id) => id == options.ModelName
            ? WriteJson(ctx, 200, ModelCard())
            : throw new ApiException(404, $"The model `{id}` does not exist.", "model", "model_not_found"));
        app.MapPost("/v1/chat/completions", Chat);
        app.MapPost("/v1/completions", Completions);
        app.MapFallback(ctx => ctx.Request.Path.Value?.TrimEnd('/') is "/v1/chat/completions" or "/v1/completions" && ctx.Request.Method != "POST"
            ? throw new ApiException(405, $"Method {ctx.Request.Method} is not allowed on {ctx.Request.Path}; send a POST with a JSON body.", code: "method_not_allowed")
            : throw new ApiException(404, $"Unknown route: {ctx.Request.Method} {ctx.Request.Path}. This server has POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /metrics.", code: "unknown_url"));
    }

    object ModelCard() => new { id = options.ModelName, @object = "model", created = _startedAt, owned_by = "cptlab", max_model_len = scheduler.State == EngineState.Ready ? scheduler.Model.ContextLength : (int?)null };

    /// <summary>One line per request once its response is complete (a streamed reply: when the stream ends).</summary>
    static async Task LogRequest(HttpContext ctx, RequestDelegate next, Action<string> log)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            await next(ctx);
        }
        finally
        {
            var ms = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var aborted = ctx.RequestAborted.IsCancellationRequested ? " (client disconnected)" : "";
            log(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ssZ} {ctx.Connection.RemoteIpAddress} {ctx.Request.Method} {ctx.Request.Path} {ctx.Response.StatusCode} {ms:0} ms{aborted}"));
        }
    }

    /// <summary>Error JSON for everything that escapes a handler, and the API key check for /v1/*.</summary>
    async Task Guard(HttpContext ctx, RequestDelegate next)
    {
        try
        {
            if (_apiKey is not null && ctx.Request.Path.StartsWithSegments("/v1") && !Authorised(ctx.Request))
                throw new ApiException(401, "Incorrect API key provided. Pass it as the header 'Authorization: Bearer KEY' (the key given to cptlab serve --api-key).", code: "invalid_api_key");
            await next(ctx);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its sequence is already cancelled and its cache freed.
        }
        catch (Exception e)
        {
            var (status, error) = e switch
            {
                ApiException a => (a.Status, Error(a.Message, a.Type, a.Param, a.Code)),
                QueueFullException => (429, Error(e.Message, "rate_limit_error", null, "rate_limit_exceeded")),
                ModelNotReadyException => (503, Error(e.Message, "service_unavailable", null, "model_not_ready")),
                CptLabException => (400, Error(e.Message, "invalid_request_error", null, null)),
                BadHttpRequestException b => (b.StatusCode, Error(b.Message, "invalid_request_error", null, null)),
                _ => (500, Error($"internal error ({e.GetType().Name}): {e.Message}", "server_error", null, null)),
            };
            if (status == 500) Console.Error.WriteLine($"cptlab serve: internal error on {ctx.Request.Method} {ctx.Request.Path}: {e}");
            if (!ctx.Response.HasStarted) await WriteJson(ctx, status, error);
            else if (ctx.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true)
            {
                // Mid-stream: the status is sent already; tell the client in the stream, as OpenAI does.
                try { await Sse(ctx, error); } catch (Exception) { }
            }
        }
    }

    bool Authorised(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        if (!header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[bearer.Length..].Trim()), _apiKey);
    }

    Task Health(HttpContext ctx) => scheduler.State switch
    {
        EngineState.Ready => WriteJson(ctx, 200, new { status = "ok", model = options.ModelName }),
        EngineState.Loading => WriteJson(ctx, 503, new { status = "loading", model = options.ModelName }),
        EngineState.Failed => WriteJson(ctx, 503, new { status = "failed", model = options.ModelName, error = scheduler.LoadError }),
        _ => WriteJson(ctx, 503, new { status = "stopped", model = options.ModelName }),
    };

    // ---- /v1/chat/completions ------------------------------------------------------------------------

    async Task Chat(HttpContext ctx)
    {
        var request = ApiRequests.ParseChat(await ReadJson(ctx), Defaults());
        var model = Model(request.Common.Model);
        var prompt = model.EncodeChat(request.Messages);
        var generation = Options(model, request.Common, MaxTokens(model, prompt.Length, request.Common.MaxTokens, null, "messages"),
            request.Logprobs ? request.TopLogprobs : null, null);
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var pieces = TextGeneration.Stream(scheduler, prompt, generation, ctx.RequestAborted);

        if (!request.Common.Stream)
        {
            var text = new StringBuilder();
            var tokens = new List<TokenLogprob>();
            TextPiece last = null!;
            await foreach (var p in pieces) { text.Append(p.Text); tokens.AddRange(p.Tokens); last = p; }
            await WriteJson(ctx, 200, new
            {
                id, @object = "chat.completion", created, model = model.Name,
                choices = new[]
                {
                    new
                    {
                        index = 0,
                        message = new { role = "assistant", content = text.ToString(), refusal = (string?)null },
                        logprobs = request.Logprobs ? ChatLogprobs(model, tokens) : null,
                        finish_reason = Reason(last.Finish),
                    },
                },
                usage = Usage(prompt.Length, last.CompletionTokens),
                system_fingerprint = "cptlab",
            });
            return;
        }

        StartStream(ctx);
        bool usage = request.Common.IncludeUsage;
        object Chunk(object[] choices, object? use = null) => usage
            ? new { id, @object = "chat.completion.chunk", created, model = model.Name, system_fingerprint = "cptlab", choices, usage = use }
            : new { id, @object = "chat.completion.chunk", created, model = model.Name, system_fingerprint = "cptlab", choices };
        await Sse(ctx, Chunk([new { index = 0, delta = new { role = "assistant", content = "" }, logprobs = (object?)null, finish_reason = (string?)null }]));
        int completionTokens = 0;
        await foreach (var p in pieces)
        {
            completionTokens = p.CompletionTokens;
            if (p.Text.Length > 0 || p.Tokens.Count > 0)
                await Sse(ctx, Chunk([new { index = 0, delta = new { content = p.Text }, logprobs = request.Logprobs ? ChatLogprobs(model, p.Tokens) : null, finish_reason = (string?)null }]));
            if (p.Finish is { } f)
                await Sse(ctx, Chunk([new { index = 0, delta = new { }, logprobs = (object?)null, finish_reason = Reason(f) }]));
        }
        if (usage) await Sse(ctx, Chunk([], Usage(prompt.Length, completionTokens)));
        await Done(ctx);
    }

    object ChatLogprobs(ServedModel model, IReadOnlyList<TokenLogprob> tokens) => new
    {
        content = tokens.Select(t => new
        {
            token = TokenText(model, t.Id), logprob = t.Logprob, bytes = TokenBytes(model, t.Id),
            top_logprobs = t.Top.Select(a => new { token = TokenText(model, a.Id), logprob = a.Logprob, bytes = TokenBytes(model, a.Id) }),
        }),
        refusal = (string?)null,
    };

    // ---- /v1/completions -----------------------------------------------------------------------------

    async Task Completions(HttpContext ctx)
    {
        var request = ApiRequests.ParseCompletion(await ReadJson(ctx), Defaults());
        var model = Model(request.Common.Model);
        var prompts = request.Prompts.Select(p => p.Ids?.ToArray() ?? model.Tokenizer.Encode(p.Text!, addBos: true)).ToList();
        var echoScores = request.Echo && request.Logprobs is int k ? k : (int?)null;
        var settings = prompts.Select(p => Options(model, request.Common, MaxTokens(model, p.Length, request.Common.MaxTokens, 16, "prompt"), request.Logprobs, echoScores)).ToList();
        string id = "cmpl-" + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        // Submit every prompt before reading any reply, so that they share the batch.
        var streams = prompts.Select((p, i) => TextGeneration.Stream(scheduler, p, settings[i], ctx.RequestAborted)).ToList();

        if (!request.Common.Stream)
        {
            var results = await Task.WhenAll(streams.Select(TextGeneration.CollectAsync));
            var choices = results.Select((r, i) => new
            {
                index = i,
                text = (request.Echo ? EchoText(model, request.Prompts[i], prompts[i]) : "") + r.Text,
                logprobs = request.Logprobs is int ? CompletionLogprobs(model, request.Echo ? prompts[i] : null, r.PromptScores, r.Tokens) : null,
                finish_reason = Reason(r.Finish),
            }).ToArray();
            int promptTokens = prompts.Sum(p => p.Length), completionTokens = results.Sum(r => r.CompletionTokens);
            await WriteJson(ctx, 200, new { id, @object = "text_completion", created, model = model.Name, choices, usage = Usage(promptTokens, completionTokens), system_fingerprint = "cptlab" });
            return;
        }

        StartStream(ctx);
        bool usage = request.Common.IncludeUsage;
        object Chunk(object[] choices, object? use = null) => usage
            ? new { id, @object = "text_completion", created, model = model.Name, system_fingerprint = "cptlab", choices, usage = use }
            : new { id, @object = "text_completion", created, model = model.Name, system_fingerprint = "cptlab", choices };
        bool first = true;
        int generated = 0;
        await foreach (var p in streams[0])
        {
            generated = p.CompletionTokens;
            var text = (first && request.Echo ? EchoText(model, request.Prompts[0], prompts[0]) : "") + p.Text;
            var logprobs = request.Logprobs is int ? CompletionLogprobs(model, first && request.Echo ? prompts[0] : null, first ? p.PromptScores : null, p.Tokens) : null;
            first = false;
            if (text.Length > 0 || p.Tokens.Count > 0)
                await Sse(ctx, Chunk([new { index = 0, text, logprobs, finish_reason = (string?)null }]));
            if (p.Finish is { } f)
                await Sse(ctx, Chunk([new { index = 0, text = "", logprobs = (object?)null, finish_reason = Reason(f) }]));
        }
        if (usage) await Sse(ctx, Chunk([], Usage(prompts[0].Length, generated)));
        await Done(ctx);
    }

    static string EchoText(ServedModel model, CompletionPrompt prompt, IReadOnlyList<int> ids) => prompt.Text ?? model.DecodeText(ids);

    /// <summary>
    /// The legacy logprobs object: tokens, token_logprobs, top_logprobs, text_offset. With echo, the prompt's
    /// tokens come first (the first has no logprob: nothing precedes it); offsets count visible text, so
    /// special tokens such as BOS take no room.
    /// </summary>
    object CompletionLogprobs(ServedModel model, IReadOnlyList<int>? echoed, IReadOnlyList<TokenLogprob>? promptScores, IReadOnlyList<TokenLogprob> generated)
    {
        var tokens = new List<string>();
        var logprobs = new List<double?>();
        var tops = new List<Dictionary<string, double>?>();
        var offsets = new List<int>();
        int offset = 0;
        void Add(int id, double? lp, Dictionary<string, double>? top)
        {
            var text = TokenText(model, id);
            tokens.Add(text);
            logprobs.Add(lp);
            tops.Add(top);
            offsets.Add(offset);
            if (!model.SpecialIds.Contains(id)) offset += text.Length;
        }
        Dictionary<string, double> Top(TokenLogprob t)
        {
            var d = new Dictionary<string, double>();
            foreach (var (id, lp) in t.Top) d.TryAdd(TokenText(model, id), lp);
            d.TryAdd(TokenText(model, t.Id), t.Logprob); // OpenAI: the chosen token is always listed
            return d;
        }
        if (echoed is not null)
            for (int i = 0; i < echoed.Count; i++)
            {
                var s = i > 0 && promptScores is not null && i - 1 < promptScores.Count ? promptScores[i - 1] : null;
                Add(echoed[i], s?.Logprob, s is null ? null : Top(s));
            }
        foreach (var t in generated) Add(t.Id, t.Logprob, Top(t));
        return new { tokens, token_logprobs = logprobs, top_logprobs = tops, text_offset = offsets };
    }

    // ---- shared ------------------------------------------------------------------------------------------

    /// <summary>The served model's generation_config.json sampling defaults (OpenAI's while it loads).</summary>
    SamplingDefaults Defaults() => scheduler.State == EngineState.Ready ? scheduler.Model.Defaults : SamplingDefaults.OpenAi;

    ServedModel Model(string? requested)
    {
        if (requested is not null && requested != options.ModelName)
            throw new ApiException(404, $"The model `{requested}` does not exist. This server serves `{options.ModelName}`.", "model", "model_not_found");
        return scheduler.Model;
    }

    /// <summary>max_tokens checked against the context; absent, the default (completions: 16, as OpenAI) or the rest of the context (chat).</summary>
    static int MaxTokens(ServedModel model, int promptTokens, int? requested, int? defaultTokens, string promptParam)
    {
        int context = model.ContextLength;
        int max = requested ?? Math.Min(defaultTokens ?? int.MaxValue, context - promptTokens);
        if (promptTokens + max > context || promptTokens >= context && max > 0 || promptTokens > context)
            throw new ApiException(400,
                $"This model's maximum context length is {context} tokens. However, you requested {(long)promptTokens + max} tokens ({promptTokens} in the {promptParam}, {max} in the completion). Please reduce the length of the {promptParam} or completion.",
                promptParam, "context_length_exceeded");
        if (max == 0 && requested is null)
            throw new ApiException(400, $"The {promptParam} ({promptTokens} tokens) fill the model's whole context of {context} tokens; nothing is left to generate.", promptParam, "context_length_exceeded");
        return max;
    }

    static TextGenerationOptions Options(ServedModel model, CommonParameters c, int maxTokens, int? topLogprobs, int? promptLogprobs)
    {
        int vocab = model.Model.Config.VocabSize;
        foreach (var id in c.LogitBias.Keys)
            if (id >= vocab)
                throw ApiException.BadRequest($"Invalid 'logit_bias': token id {id} is outside the vocabulary of `{model.Name}` (ids 0 to {vocab - 1}).", "logit_bias", "invalid_value");
        return new()
        {
            Sampling = c.Sampling, MaxNewTokens = maxTokens, StopStrings = c.Stop, IgnoreEos = c.IgnoreEos,
            FrequencyPenalty = c.FrequencyPenalty, PresencePenalty = c.PresencePenalty, LogitBias = c.LogitBias,
            TopLogprobs = topLogprobs, PromptLogprobs = promptLogprobs,
        };
    }

    /// <summary>The token's text; for a token that holds part of a UTF-8 character this contains U+FFFD, as OpenAI's does.</summary>
    static string TokenText(ServedModel model, int id) => model.Tokenizer.Decode([id]);

    /// <summary>
    /// The token's own bytes (possibly part of a character): concatenated over a reply they are its UTF-8. An id the
    /// tokenizer has no bytes for (embedding rows padded past the vocabulary) has none, rather than failing the reply.
    /// </summary>
    static IEnumerable<int> TokenBytes(ServedModel model, int id)
    {
        try { return model.Tokenizer.TokenBytes(id).Select(b => (int)b); }
        catch (CptLabException) { return []; }
    }

    static string Reason(FinishReason? f) => f == FinishReason.Length ? "length" : "stop";

    static object Usage(int prompt, int completion) => new { prompt_tokens = prompt, completion_tokens = completion, total_tokens = prompt + completion };

    static object Error(string message, string type, string? param, string? code) => new { error = new { message, type, param, code } };

    static async Task<JsonElement> ReadJson(HttpContext ctx)
    {
        try
        {
            using var doc = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted);
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"We could not parse the JSON body of your request: {e.Message.Split(" LineNumber")[0]} (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}). The body must be a JSON object.", code: "invalid_json");
        }
    }

    static Task WriteJson(HttpContext ctx, int status, object body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(JsonSerializer.Serialize(body, JsonOut), ctx.RequestAborted);
    }

    static void StartStream(HttpContext ctx)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    static async Task Sse(HttpContext ctx, object chunk)
    {
        await ctx.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, JsonOut) + "\n\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    static async Task Done(HttpContext ctx)
    {
        await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    static async Task Page(HttpContext ctx, string name, string contentType)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("wwwroot/" + name)
            ?? throw new InvalidOperationException($"embedded resource wwwroot/{name} is missing from the build");
        ctx.Response.ContentType = contentType;
        await stream.CopyToAsync(ctx.Response.Body, ctx.RequestAborted);
    }
}
