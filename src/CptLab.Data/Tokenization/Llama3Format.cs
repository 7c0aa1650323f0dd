using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CptLab.Core;

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

    public const string EomId = "<|eom_id|>";
    public const string PythonTag = "<|python_tag|>";
    public const string FinetuneRightPad = "<|finetune_right_pad_id|>";

    public const int SpecialTokenCount = 256;

    static readonly Lazy<Regex> _regex = new(() => CompilePattern(Pattern));
    public static Regex Regex => _regex.Value;

    /// <summary>
    /// Compiles a Hugging Face / tiktoken pre-tokenization pattern for .NET. Those engines match code points, .NET
    /// matches UTF-16 code units, so the pattern is first rewritten by <see cref="CodePointPattern"/>: without that,
    /// a CJK Extension B letter (𠀋), a Gothic or Deseret letter or a mathematical alphanumeric (𝐀) would fall to
    /// the punctuation branch and drag the next "，" with it, and an emoji before a word would lose the word.
    /// Compiled once per pattern and shared (a Regex is thread-safe): compiling and jitting the translated
    /// pattern costs far more than a tokenizer's first megabyte.
    /// </summary>
    public static Regex CompilePattern(string pattern) =>
        _compiled.GetOrAdd(pattern, p => new Regex(CodePointPattern.Translate(p), RegexOptions.Compiled | RegexOptions.CultureInvariant));

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Regex> _compiled = new();

    /// <summary>
    /// The 256 special token strings of <paramref name="version"/> in id order, as Meta's tokenizer.py lists them.
    /// 3.0: begin/end of text, reserved 0–3, start/end header, reserved 4, eot, then reserved 5–250.
    /// 3.1 (github meta-llama/llama-models, models/llama3_1/api/tokenizer.py as 3.1 was released, 6e245ca):
    /// begin/end of text, reserved 0–1, finetune_right_pad_id (128004), step_id (128005), start/end header,
    /// eom_id (128008), eot_id (128009), python_tag (128010), then reserved 2–246.
    /// Hugging Face's conversion of the same file (transformers' convert_llama_weights_to_hf.py, and so the Hub's
    /// Llama-3.1/3.2 tokenizer.json) names 128005 <c>&lt;|reserved_special_token_2|&gt;</c> and numbers the
    /// reserved tokens after 128010 from 3; ids that mean something (bos, eos, pad, headers, eom, eot, python_tag)
    /// agree. Meta's later code (3.2 vision) names 128011 <c>&lt;|image|&gt;</c>; the text models never emit it.
    /// </summary>
    public static IReadOnlyList<string> SpecialTokenNames(Llama3Version version)
    {
        List<string> names = version switch
        {
            Llama3Version.V3_0 =>
            [
                BeginOfText, EndOfText,
                "<|reserved_special_token_0|>", "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
                StartHeader, EndHeader, "<|reserved_special_token_4|>", EotId,
            ],
            Llama3Version.V3_1 =>
            [
                BeginOfText, EndOfText,
                "<|reserved_special_token_0|>", "<|reserved_special_token_1|>", FinetuneRightPad, "<|step_id|>",
                StartHeader, EndHeader, EomId, EotId, PythonTag,
            ],
            _ => throw new ArgumentOutOfRangeException(nameof(version), version, "unknown Llama-3 version"),
        };
        for (var i = version == Llama3Version.V3_0 ? 5 : 2; names.Count < SpecialTokenCount; i++) names.Add($"<|reserved_special_token_{i}|>");
        return names;
    }

    /// <summary>
    /// The Llama-3 version a model folder's files say it is, for naming the special tokens of its tiktoken
    /// <c>tokenizer.model</c> (the file is byte-identical across 3.0–3.3): Hugging Face's <c>config.json</c> with
    /// <c>rope_scaling.rope_type</c> (or <c>type</c>) "llama3", or Meta's <c>params.json</c> with
    /// <c>use_scaled_rope: true</c>, is 3.1 or later; either file without it is 3.0. Null when the folder has
    /// neither file. <paramref name="folder"/> may be a Hub repository's <c>original/</c> folder, whose
    /// config.json lives one level up.
    /// </summary>
    public static Llama3Version? DetectVersion(string folder)
    {
        var full = Path.GetFullPath(folder);
        var parent = Path.GetFileName(Path.TrimEndingDirectorySeparator(full)) == "original" ? Path.GetDirectoryName(full) : null;
        foreach (var dir in parent is null ? [full] : new[] { full, parent })
        {
            var config = Path.Combine(dir, "config.json");
            if (File.Exists(config))
            {
                using var doc = Json.ParseFile(config);
                var scaled = doc.RootElement.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object
                    && (IsLlama3(rs, "rope_type") || IsLlama3(rs, "type"));
                return scaled ? Llama3Version.V3_1 : Llama3Version.V3_0;
            }
            var meta = Path.Combine(dir, "params.json");
            if (File.Exists(meta))
            {
                using var doc = Json.ParseFile(meta);
                var scaled = doc.RootElement.TryGetProperty("use_scaled_rope", out var u) && u.ValueKind == JsonValueKind.True;
                return scaled ? Llama3Version.V3_1 : Llama3Version.V3_0;
            }
        }
        return null;

        static bool IsLlama3(JsonElement ropeScaling, string key) =>
            ropeScaling.TryGetProperty(key, out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "llama3";
    }

    /// <summary>Special token → id, numbered from <paramref name="firstId"/> (128000 for Llama-3).</summary>
    public static Dictionary<string, int> SpecialTokens(int firstId, Llama3Version version)
    {
        var names = SpecialTokenNames(version);
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

/// <summary>
/// Which Llama-3 release a tiktoken <c>tokenizer.model</c> belongs to: the file is the same, the names of the special
/// tokens after the vocabulary are not (<see cref="Llama3Format.SpecialTokenNames"/>).
/// </summary>
public enum Llama3Version
{
    /// <summary>Llama-3 (April 2024): eot_id is the only chat stop token besides end_of_text.</summary>
    V3_0,

    /// <summary>Llama-3.1 and the text models after it (3.2, 3.3): adds eom_id, python_tag, finetune_right_pad_id, step_id.</summary>
    V3_1,
}
