using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using CptLab.Core;
using CptLab.Data.Tokenization;

namespace CptLab.Data.Chat;

/// <summary>
/// One source item as it goes into both post-training sets: the SFT conversation and the DPO pair built from it.
/// <see cref="SplitKey"/> (the source text: the GSM8K question, the English string) decides train or validation by
/// content hash, so an item is held out of SFT and DPO alike and a re-run with another seed holds out the same items.
/// </summary>
sealed record PostTrainItem(string SplitKey, IReadOnlyList<ChatMessage> Prompt, string Chosen, string Rejected)
{
    static readonly JsonSerializerOptions OneLine = new(Json.Indented) { WriteIndented = false };

    public bool IsValidation(double fraction) =>
        (XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(SplitKey)) >> 11) * (1.0 / (1UL << 53)) < fraction;

    /// <summary>The SFT line, in the messages layout: the prompt, then the chosen reply.</summary>
    public string SftLine() => JsonSerializer.Serialize(new { messages = Messages([.. Prompt, new ChatMessage("assistant", Chosen)]) }, OneLine);

    /// <summary>The DPO line, in TRL's conversational layout with an explicit prompt.</summary>
    public string DpoLine() => JsonSerializer.Serialize(new
    {
        prompt = Messages(Prompt),
        chosen = Messages([new ChatMessage("assistant", Chosen)]),
        rejected = Messages([new ChatMessage("assistant", Rejected)]),
    }, OneLine);

    static object[] Messages(IEnumerable<ChatMessage> messages) => messages.Select(m => (object)new { role = m.Role, content = m.Content }).ToArray();
}
