using System.ClientModel;
using CptLab.Data.Tokenization;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace CptLab.Serving.Tests;

/// <summary>The official OpenAI .NET SDK against the running server: what a real client sees.</summary>
[Collection("server")]
public class SdkTests(SharedServer shared)
{
    RunningServer S => shared.Server;

    OpenAIClientOptions Options => new() { Endpoint = new Uri(S.Address, "v1") };
    ChatClient Chat => new(S.Model.Name, new ApiKeyCredential("unused"), Options);

    static readonly ChatMessage[] Conversation = [new SystemChatMessage("Be brief."), new UserChatMessage("Tell me about the fox.")];
    static readonly CptLab.Data.Tokenization.ChatMessage[] Same = [new("system", "Be brief."), new("user", "Tell me about the fox.")];

    [Fact]
    public async Task Non_streaming_chat_matches_the_library_and_counts_usage()
    {
        var result = await Chat.CompleteChatAsync(Conversation, new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 });
        var completion = result.Value;
        var prompt = S.Model.EncodeChat(Same);
        var reference = Reference.Greedy(S.Model, prompt, 40);

        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(reference.Text, completion.Content[0].Text);
        Assert.Equal(reference.Finish == "stop" ? ChatFinishReason.Stop : ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(prompt.Length, completion.Usage.InputTokenCount);
        Assert.Equal(reference.Tokens, completion.Usage.OutputTokenCount);
        Assert.Equal(prompt.Length + reference.Tokens, completion.Usage.TotalTokenCount);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Equal(S.Model.Name, completion.Model);
    }

    [Fact]
    public async Task Streaming_chat_delivers_the_same_text_with_a_finish_reason_and_usage()
    {
        var whole = (await Chat.CompleteChatAsync(Conversation, new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 })).Value;
        var parts = new List<string>();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var ids = new HashSet<string>();
        await foreach (var update in Chat.CompleteChatStreamingAsync(Conversation, new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 }))
        {
            ids.Add(update.CompletionId);
            parts.AddRange(update.ContentUpdate.Select(c => c.Text));
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(whole.Content[0].Text, string.Concat(parts));
        Assert.True(parts.Count > 1, "the reply should arrive in several pieces");
        Assert.Equal(whole.FinishReason, finish);
        Assert.Single(ids);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.OutputTokenCount, usage!.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
    }

    [Fact]
    public async Task Seeded_sampling_repeats_and_logprobs_come_back()
    {
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
        var options = new ChatCompletionOptions { Temperature = 0.9f, TopP = 0.95f, Seed = 42, MaxOutputTokenCount = 20, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
#pragma warning restore OPENAI001
        var a = (await Chat.CompleteChatAsync(Conversation, options)).Value;
        var b = (await Chat.CompleteChatAsync(Conversation, options)).Value;
        Assert.Equal(a.Content[0].Text, b.Content[0].Text);
        Assert.Equal(a.Usage.OutputTokenCount, a.ContentTokenLogProbabilities.Count);
        foreach (var t in a.ContentTokenLogProbabilities)
        {
            Assert.True(t.LogProbability <= 0);
            Assert.Equal(3, t.TopLogProbabilities.Count);
            Assert.True(t.TopLogProbabilities[0].LogProbability >= t.LogProbability - 1e-5, "the best alternative is at least as likely as the chosen token");
        }
    }

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        var models = (await new OpenAIModelClient(new ApiKeyCredential("unused"), Options).GetModelsAsync()).Value;
        Assert.Equal(S.Model.Name, Assert.Single(models).Id);
    }
}
