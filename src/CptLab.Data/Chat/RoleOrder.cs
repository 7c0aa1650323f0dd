using CptLab.Data.Tokenization;

namespace CptLab.Data.Chat;

/// <summary>
/// The turn order chat templates assume: at most one system message, first; then user and assistant alternating,
/// starting with user. An SFT conversation ends with the assistant (the turn that is learnt); a prompt ends with the
/// user (the turn that is answered).
/// </summary>
static class RoleOrder
{
    public static void CheckConversation(IReadOnlyList<ChatMessage> messages)
    {
        CheckAlternation(messages, "conversation");
        if (messages[^1].Role != "assistant")
            throw new RecordRejected(ChatRejectReason.NoFinalAssistant, $"the conversation ends with a {messages[^1].Role} turn, not an assistant reply to learn");
    }

    public static void CheckPrompt(IReadOnlyList<ChatMessage> prompt)
    {
        CheckAlternation(prompt, "prompt");
        if (prompt[^1].Role != "user")
            throw new RecordRejected(ChatRejectReason.RoleOrder, $"the prompt ends with a {prompt[^1].Role} turn; it must end with the user turn that chosen and rejected answer");
    }

    static void CheckAlternation(IReadOnlyList<ChatMessage> messages, string what)
    {
        var start = messages.Count > 0 && messages[0].Role == "system" ? 1 : 0;
        if (messages.Count == start)
            throw new RecordRejected(start == 0 ? ChatRejectReason.MissingField : ChatRejectReason.RoleOrder, $"the {what} has no user turn");
        var expected = "user";
        for (var i = start; i < messages.Count; i++)
        {
            var role = messages[i].Role;
            if (role == "system")
                throw new RecordRejected(ChatRejectReason.RoleOrder, $"message {i} of the {what} is a system message: only the first message may be one");
            if (role != expected)
                throw new RecordRejected(ChatRejectReason.RoleOrder, $"message {i} of the {what} is {role}, expected {expected}: user and assistant alternate, starting with user");
            expected = expected == "user" ? "assistant" : "user";
        }
    }
}
