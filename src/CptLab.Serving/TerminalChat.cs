using CptLab.Data.Tokenization;
using CptLab.Model;

namespace CptLab.Serving;

public sealed record TerminalChatOptions
{
    public string? SystemPrompt { get; init; }
    public SamplingOptions Sampling { get; init; } = new() { Temperature = 0.7, TopP = 0.95 };
    public int MaxTokens { get; init; } = 512;
}

/// <summary>
/// `cptlab chat`: a conversation in the terminal with the model loaded in-process (the same scheduler the
/// server uses, without HTTP). Replies are written as they stream. Lines starting with '/' are commands:
/// /reset starts over, /exit (or end of input) quits.
/// </summary>
public static class TerminalChat
{
    public static async Task RunAsync(BatchScheduler scheduler, TextReader input, TextWriter output, TerminalChatOptions options, CancellationToken cancellation = default)
    {
        var model = scheduler.Model;
        var history = new List<ChatMessage>();
        await output.WriteLineAsync($"{model.Name} ({model.ContextLength} tokens of context). /reset starts over, /exit quits.");
        ulong turn = 0;
        while (!cancellation.IsCancellationRequested)
        {
            await output.WriteAsync("you> ");
            await output.FlushAsync(cancellation);
            var line = await input.ReadLineAsync(cancellation);
            if (line is null || line.Trim() is "/exit" or "/quit") break;
            if (line.Trim() == "/reset")
            {
                history.Clear();
                await output.WriteLineAsync("(conversation cleared)");
                continue;
            }
            if (line.Trim().Length == 0) continue;

            var messages = new List<ChatMessage>();
            if (options.SystemPrompt is { Length: > 0 } system) messages.Add(new("system", system));
            messages.AddRange(history);
            messages.Add(new("user", line));
            var prompt = model.EncodeChat(messages);
            int room = model.ContextLength - prompt.Length;
            if (room < 1)
            {
                await output.WriteLineAsync($"(the conversation is {prompt.Length} tokens, the whole context of {model.ContextLength}; /reset to start over)");
                continue;
            }
            await output.WriteAsync("assistant> ");
            var reply = new System.Text.StringBuilder();
            // Each turn draws differently, but a session started with the same seed repeats itself.
            var sampling = options.Sampling with { Seed = options.Sampling.Seed + turn++ };
            await foreach (var piece in TextGeneration.Stream(scheduler, prompt, new TextGenerationOptions { Sampling = sampling, MaxNewTokens = Math.Min(options.MaxTokens, room) }, cancellation))
            {
                reply.Append(piece.Text);
                await output.WriteAsync(piece.Text);
                await output.FlushAsync(cancellation);
                if (piece.Finish == FinishReason.Length) await output.WriteAsync(" […]");
            }
            await output.WriteLineAsync();
            history.Add(new("user", line));
            history.Add(new("assistant", reply.ToString()));
        }
    }
}
