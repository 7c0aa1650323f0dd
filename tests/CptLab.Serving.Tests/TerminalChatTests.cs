using CptLab.Data.Tokenization;
using CptLab.Model;

namespace CptLab.Serving.Tests;

/// <summary>`cptlab chat`'s library: a scripted two-turn session whose replies equal greedy generation with history.</summary>
[Collection("server")]
public class TerminalChatTests(SharedServer shared)
{
    [Fact]
    public async Task Two_turns_stream_greedy_replies_with_history_and_reset_clears_it()
    {
        var s = shared.Server;
        var input = new StringReader("The quick brown fox\nAnd the dog?\n/reset\nThe quick brown fox\n/exit\nnever read\n");
        var output = new StringWriter();
        await TerminalChat.RunAsync(s.Scheduler, input, output, new TerminalChatOptions { Sampling = SamplingOptions.Greedy, MaxTokens = 20 });

        var replies = output.ToString().Split("assistant> ").Skip(1).Select(r => r[..r.IndexOf("\nyou> ", StringComparison.Ordinal)].Replace(" […]", "")).ToList();
        Assert.Equal(3, replies.Count);
        var first = new List<ChatMessage> { new("user", "The quick brown fox") };
        Assert.Equal(Reference.Greedy(s.Model, s.Model.EncodeChat(first), 20).Text, replies[0]);
        var second = new List<ChatMessage>(first) { new("assistant", replies[0]), new("user", "And the dog?") };
        Assert.Equal(Reference.Greedy(s.Model, s.Model.EncodeChat(second), 20).Text, replies[1]);
        Assert.Equal(replies[0], replies[2]); // after /reset the history is gone
        Assert.Contains("(conversation cleared)", output.ToString());
        Assert.DoesNotContain("never read", output.ToString());
    }
}
