using CptLab.Data.Tokenization;
using System.CommandLine;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Hardware;
using CptLab.Serving;

namespace CptLab.Cli;

/// <summary>`cptlab serve` (the OpenAI-compatible server and web chat page) and `cptlab chat` (terminal chat).</summary>
public static class ServeCommands
{
    public static Command Serve()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model directory (Hugging Face layout, with tokenizer.json).", Required = true };
        var host = new Option<string>("--host") { Description = "Address to listen on; 0.0.0.0 serves every interface.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port.", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on /v1/* (default: the CPTLAB_API_KEY environment variable, else no key)." };
        var name = new Option<string?>("--served-model-name") { Description = "Model id clients use (default: the directory's name)." };
        var maxSeqs = new Option<int>("--max-num-seqs") { Description = "Most sequences in the running batch.", DefaultValueFactory = _ => 32 };
        var maxTokens = new Option<int>("--max-batched-tokens") { Description = "Most tokens fed to the model per step (running sequences + admitted prompts).", DefaultValueFactory = _ => 2048 };
        var kvMemory = new Option<double>("--kv-cache-memory") { Description = "GiB for the KV cache, allocated in blocks as sequences grow (0 = a quarter of the memory free once the model has loaded).", DefaultValueFactory = _ => 0 };
        var maxCache = new Option<long>("--max-kv-tokens") { Description = "Size the KV cache in tokens instead of --kv-cache-memory (0 = by memory).", DefaultValueFactory = _ => 0 };
        var blockSize = new Option<int>("--block-size") { Description = "Positions per KV-cache block.", DefaultValueFactory = _ => 16 };
        var chunk = new Option<int>("--prefill-chunk") { Description = "Longest piece of a prompt prefilled per step, so long prompts do not stall the replies being generated.", DefaultValueFactory = _ => 512 };
        var maxWaiting = new Option<int>("--max-waiting") { Description = "Most requests queued for admission; more are answered 429.", DefaultValueFactory = _ => 256 };
        var quiet = new Option<bool>("--no-request-log") { Description = "Do not log a line per request (time, client, method, path, status, wall time) to stderr." };
        var (dtype, threads, template) = Common();
        var cmd = new Command("serve", "Serve a model over an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models) with a web chat page at /.")
        {
            model, host, port, apiKey, name, maxSeqs, maxTokens, kvMemory, maxCache, blockSize, chunk, maxWaiting, dtype, threads, template, quiet,
        };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var options = new ServerOptions
            {
                ModelDir = r.GetValue(model)!.FullName, Host = r.GetValue(host)!, Port = r.GetValue(port),
                ApiKey = r.GetValue(apiKey) ?? (Environment.GetEnvironmentVariable("CPTLAB_API_KEY") is { Length: > 0 } key ? key : null),
                ServedModelName = r.GetValue(name), Dtype = ParseDtype(r.GetValue(dtype)), ChatTemplate = r.GetValue(template), RequestLog = r.GetValue(quiet) ? null : Console.Error.WriteLine,
                Scheduler = new SchedulerOptions
                {
                    MaxConcurrentSequences = r.GetValue(maxSeqs), MaxBatchedTokens = r.GetValue(maxTokens), KvCacheTokens = r.GetValue(maxCache), KvBlockSize = r.GetValue(blockSize), PrefillChunkTokens = r.GetValue(chunk),
                    KvCacheBytes = r.GetValue(kvMemory) is >= 0 and var gib ? (long)(gib * (1L << 30)) : throw new CptLabException($"--kv-cache-memory {r.GetValue(kvMemory)} must be ≥ 0 GiB"), MaxWaiting = r.GetValue(maxWaiting), Threads = r.GetValue(threads),
                }.Validate(),
            };
            return RunServer(options).GetAwaiter().GetResult();
        }));
        return cmd;
    }

    static async Task<int> RunServer(ServerOptions options)
    {
        await using var server = await ChatServer.StartAsync(options);
        Console.Error.WriteLine($"listening on {server.Address} (web chat at /, OpenAI API at /v1{(options.ApiKey is null ? "" : ", API key required")}); loading {options.ModelDir}…");
        try
        {
            await server.Scheduler.Loaded;
        }
        catch (Exception e) when (e is not CptLabException)
        {
            throw new CptLabException($"cannot load {options.ModelDir}: {e.Message}", e);
        }
        var m = server.Scheduler.Model;
        Console.Error.WriteLine($"compute {m.Precision.Name} ({m.Precision.Reason}); {server.Scheduler.Threads?.Threads} thread(s) ({server.Scheduler.Threads?.Reason})");
        if (options.Dtype is { } asked && ComputePrecision.SlowDtypeWarning(asked) is { } warning) Console.Error.WriteLine(warning);
        if (server.Scheduler.KvCache is { } kv)
            Console.Error.WriteLine($"KV cache: {kv.Bytes / (double)(1L << 30):0.###} GiB ({kv.Reason}): {kv.Blocks - 1:N0} blocks of {kv.BlockSize} = {kv.Tokens:N0} tokens, taken as sequences grow");
        Console.Error.WriteLine($"serving '{m.Name}': {ModelMath.ParameterCount(m.Model.Config):N0} parameters, context {m.ContextLength}, chat template {m.Template.Name}; Ctrl+C stops");
        await server.WaitForShutdownAsync(CancellationToken.None);
        return 0;
    }

    public static Command Chat()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model directory (Hugging Face layout, with tokenizer.json).", Required = true };
        var system = new Option<string?>("--system") { Description = "System prompt." };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy.", DefaultValueFactory = _ => 0.7 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling threshold (1 = off).", DefaultValueFactory = _ => 0.95 };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (0 = off).", DefaultValueFactory = _ => 0 };
        var repetition = new Option<double>("--repetition-penalty") { Description = "Penalty for tokens already seen (1 = off).", DefaultValueFactory = _ => 1.0 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per reply.", DefaultValueFactory = _ => 512 };
        var seed = new Option<ulong>("--seed") { Description = "Seed for sampling.", DefaultValueFactory = _ => 0UL };
        var (dtype, threads, template) = Common();
        var cmd = new Command("chat", "Chat with a model in the terminal, replies streamed as they are generated.")
        {
            model, system, temperature, topP, topK, repetition, maxTokens, seed, dtype, threads, template,
        };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var dir = r.GetValue(model)!.FullName;
            var sampling = new SamplingOptions
            {
                Temperature = r.GetValue(temperature), TopP = r.GetValue(topP), TopK = r.GetValue(topK),
                RepetitionPenalty = r.GetValue(repetition), Seed = r.GetValue(seed),
            }.Validate();
            if (r.GetValue(maxTokens) < 1) throw new CptLabException($"--max-tokens {r.GetValue(maxTokens)} must be ≥ 1");
            var scalar = ParseDtype(r.GetValue(dtype));
            var chatTemplate = r.GetValue(template);
            using var scheduler = new BatchScheduler(() => ServedModel.Load(dir, null, scalar, chatTemplate, Console.Error.WriteLine), new SchedulerOptions { Threads = r.GetValue(threads) });
            try
            {
                scheduler.Loaded.GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not CptLabException)
            {
                throw new CptLabException($"cannot load {dir}: {e.Message}", e);
            }
            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
            TerminalChat.RunAsync(scheduler, Console.In, Console.Out, new TerminalChatOptions
            {
                SystemPrompt = r.GetValue(system), Sampling = sampling, MaxTokens = r.GetValue(maxTokens),
            }, cancel.Token).GetAwaiter().GetResult();
            return 0;
        }));
        return cmd;
    }

    static (Option<string?> Dtype, Option<int> Threads, Option<string?> Template) Common() =>
    (
        DtypeOption(),
        new Option<int>("--threads") { Description = "CPU threads for LibTorch (0 = the cores free at start-up).", DefaultValueFactory = _ => 0 },
        new Option<string?>("--chat-template") { Description = "auto (the model folder's chat_template.jinja or tokenizer_config.json chat_template, rendered as Jinja), llama3 or chatml.", DefaultValueFactory = _ => "auto" }
    );

    /// <summary>--dtype for inference verbs: auto (the default) or an explicit dtype.</summary>
    public static Option<string?> DtypeOption() => new("--dtype")
    {
        Description = "Compute dtype: auto (the faster on this CPU, measured once and cached), float32, bfloat16 or float16.", DefaultValueFactory = _ => ComputePrecision.Auto,
    };

    /// <summary>null for auto, else the dtype asked for.</summary>
    public static TorchSharp.torch.ScalarType? ParseDtype(string? d) =>
        ComputePrecision.IsAuto(d) ? null : DtypeNames.Parse(d!) ?? throw new CptLabException($"--dtype '{d}' is not one of auto, float32, bfloat16, float16");
}
