using System.Text;
using System.Text.RegularExpressions;

namespace CptLab.Data.Tokenization;

/// <summary>
/// What makes a byte-level BPE vocabulary "Llama-3": its pre-tokenization pattern, its 256 special tokens
/// placed right after the ordinary vocabulary (ids 128000–128255 for the 128k vocabulary), and its chat template.
/// </summary>
public static class Llama3Format
{
    /// <summary>Llama-3's pre-tokenization regex (tiktoken's pat_str in Meta's tokenizer.py, Split pattern in tokenizer.json).</summary>
    public const string Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public const string BeginOfText = "<|begin_of_text|>";
    public const string EndOfText = "<|end_of_text|>";
    public const string StartHeader = "<|start_header_id|>";
    public const string EndHeader = "<|end_header_id|>";
    public const string EotId = "<|eot_id|>";

    public const int SpecialTokenCount = 256;

    static readonly Lazy<Regex> _regex = new(() => CompilePattern(Pattern));
    public static Regex Regex => _regex.Value;

    // High surrogates of U+20000–U+3134F: CJK Extension B–H, common in classical Chinese.
    const string HanHigh = @"\uD840-\uD884";

    /// <summary>
    /// Compiles a Hugging Face / tiktoken pre-tokenization pattern for .NET. .NET matches UTF-16 code units, so
    /// `\p{L}` misses letters outside the BMP: a CJK Extension B character (𠀋) would fall to the
    /// punctuation branch and drag the next "，" with it, where Rust's and Python's regex see a letter. The
    /// pattern is widened so that surrogate pairs of CJK Extensions B–H count as letters (other supplementary
    /// letters, rare in text, still do not).
    /// </summary>
    public static Regex CompilePattern(string pattern)
    {
        const string marker = "\u0001";
        var adapted = pattern
            .Replace(@"\p{L}\p{N}]", marker)
            .Replace(@"\p{L}", $@"(?:\p{{L}}|[{HanHigh}][\uDC00-\uDFFF])")
            .Replace(marker, $@"\p{{L}}\p{{N}}{HanHigh}]");
        return new Regex(adapted, RegexOptions.Compiled | RegexOptions.CultureInvariant);
    }

    /// <summary>
    /// The 256 special token strings in id order, as Meta's tokenizer.py lists them: begin/end of text, reserved 0–3,
    /// start/end header, reserved 4, eot, then reserved 5–250.
    /// </summary>
    public static IReadOnlyList<string> SpecialTokenNames()
    {
        var names = new List<string>(SpecialTokenCount)
        {
            BeginOfText, EndOfText,
            "<|reserved_special_token_0|>", "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
            StartHeader, EndHeader, "<|reserved_special_token_4|>", EotId,
        };
        for (var i = 5; names.Count < SpecialTokenCount; i++) names.Add($"<|reserved_special_token_{i}|>");
        return names;
    }

    /// <summary>Special token → id, numbered from <paramref name="firstId"/> (128000 for Llama-3).</summary>
    public static Dictionary<string, int> SpecialTokens(int firstId)
    {
        var names = SpecialTokenNames();
        var map = new Dictionary<string, int>(names.Count);
        for (var i = 0; i < names.Count; i++) map[names[i]] = firstId + i;
        return map;
    }

    /// <summary>
    /// The official Llama-3 instruct template: BOS, then per message
    /// `&lt;|start_header_id|&gt;{role}&lt;|end_header_id|&gt;\n\n{content trimmed}&lt;|eot_id|&gt;`, and with
    /// <paramref name="addGenerationPrompt"/> an open assistant header.
    /// </summary>
    public static string ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder(BeginOfText);
        foreach (var m in messages)
            sb.Append(StartHeader).Append(m.Role).Append(EndHeader).Append("\n\n").Append(m.Content.Trim()).Append(EotId);
        if (addGenerationPrompt) sb.Append(StartHeader).Append("assistant").Append(EndHeader).Append("\n\n");
        return sb.ToString();
    }
}
