using CptLab.Data.Tokenization;

namespace CptLab.Data.Chat;

/// <summary>
/// One conversation for SFT: an optional system message, then user and assistant turns alternating, ending with an
/// assistant turn. <see cref="File"/> and <see cref="Line"/> say where it was read (1-based line, record or row),
/// so that a trainer can reject it later (too long) under the same name.
/// </summary>
public sealed record ChatExample(IReadOnlyList<ChatMessage> Messages, string File, long Line);

/// <summary>
/// One preference pair for DPO: the prompt (optional system, then alternating turns ending with a user turn) and two
/// assistant replies to it, the preferred one and the other. Chosen and rejected always differ.
/// </summary>
public sealed record PreferenceExample(IReadOnlyList<ChatMessage> Prompt, ChatMessage Chosen, ChatMessage Rejected, string File, long Line);
