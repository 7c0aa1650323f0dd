using CptLab.Data.Tokenization;
using System.Net;
using CptLab.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace CptLab.Serving;

public sealed record ServerOptions
{
    public required string ModelDir { get; init; }
    /// <summary>Loopback only by default: serving to the network is a decision (pass 0.0.0.0).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (tests); <see cref="ChatServer.Address"/> tells which.</summary>
    public int Port { get; init; } = 8000;
    /// <summary>When set, /v1/* requires "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }
    /// <summary>The model id clients use (default: the model directory's name).</summary>
    public string? ServedModelName { get; init; }
    public ScalarType? Dtype { get; init; }
    /// <summary>"auto" (from tokenizer_config.json), "llama3" or "chatml".</summary>
    public string? ChatTemplate { get; init; }
    public SchedulerOptions Scheduler { get; init; } = new();
    /// <summary>
    /// Receives one line per finished request (time, method, path, status, wall time, client): the serve verb writes
    /// them to stderr; null logs nothing (tests).
    /// </summary>
    public Action<string>? RequestLog { get; init; }

    public string ModelName => ServedModelName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(ModelDir)));
}

/// <summary>
/// The OpenAI-compatible HTTP server on Kestrel: it listens at once and loads the model on the scheduler
/// thread meanwhile (GET /health answers 503 until it is ready). Endpoints: POST /v1/chat/completions,
/// POST /v1/completions, GET /v1/models, GET /health, GET /metrics, and the web chat page at /.
/// </summary>
public sealed class ChatServer : IAsyncDisposable
{
    readonly WebApplication _app;

    ChatServer(WebApplication app, BatchScheduler scheduler, Uri address)
    {
        _app = app;
        Scheduler = scheduler;
        Address = address;
    }

    /// <summary>Where it listens, e.g. http://127.0.0.1:8000/.</summary>
    public Uri Address { get; }
    public BatchScheduler Scheduler { get; }

    public static Task<ChatServer> StartAsync(ServerOptions options, CancellationToken cancellation = default) =>
        StartAsync(options, () => ServedModel.Load(options.ModelDir, options.ModelName, options.Dtype, options.ChatTemplate), cancellation);

    /// <summary>Starts with a custom loader (tests hold the model back to see /health say 503).</summary>
    public static async Task<ChatServer> StartAsync(ServerOptions options, Func<ServedModel> load, CancellationToken cancellation = default)
    {
        if (!IPAddress.TryParse(options.Host, out var ip) && options.Host != "localhost")
            throw new CptLabException($"--host '{options.Host}' is not an IP address (use 127.0.0.1 for this machine only, 0.0.0.0 for every interface)");
        if (options.Port is < 0 or > 65535) throw new CptLabException($"--port {options.Port} is not a TCP port");
        var scheduler = new BatchScheduler(load, options.Scheduler);
        try
        {
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
            builder.Logging.ClearProviders();
            // Kestrel's own warnings and errors (a bad request line, a failed bind) on the console; requests are logged by RequestLog.
            if (options.RequestLog is not null) builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
            builder.WebHost.ConfigureKestrel(k =>
            {
                if (ip is null) k.ListenLocalhost(options.Port);
                else k.Listen(ip, options.Port);
                k.AddServerHeader = false;
            });
            var app = builder.Build();
            var api = new OpenAiEndpoints(scheduler, options);
            api.Map(app);
            await app.StartAsync(cancellation).ConfigureAwait(false);
            var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new ChatServer(app, scheduler, new Uri(bound.EndsWith('/') ? bound : bound + "/"));
        }
        catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            scheduler.Dispose();
            throw new CptLabException($"cannot listen on {options.Host}:{options.Port}: {e.Message}; choose another --port");
        }
        catch
        {
            scheduler.Dispose();
            throw;
        }
    }

    public Task WaitForShutdownAsync(CancellationToken cancellation) => _app.WaitForShutdownAsync(cancellation);

    public async ValueTask DisposeAsync()
    {
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        Scheduler.Dispose();
    }
}
