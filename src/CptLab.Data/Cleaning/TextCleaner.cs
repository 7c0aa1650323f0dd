using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using CptLab.Data.Sources;

namespace CptLab.Data.Cleaning;

/// <summary>A document after the per-document steps: its clean text, or why it was dropped, and its hashes.</summary>
public sealed class CleanedDocument
{
    public required string Text { get; init; }
    public DropReason? Drop { get; init; }
    public string? Detail { get; init; }
    /// <summary>64-bit hash of the dedup key (case-folded, whitespace-collapsed text): equal keys are exact duplicates.</summary>
    public ulong ExactHash { get; init; }
    /// <summary>Uniform in [0, 1) by content: below the validation fraction the document is held out.</summary>
    public double SplitValue { get; init; }
    public uint[]? Signature { get; init; }
}

/// <summary>
/// The per-document part of cleaning, pure and thread-safe (run on all cores): Unicode NFC, control
/// characters removed (tab and newline kept, CR LF → LF), length bounds, the script-share language check,
/// and the hashes the order-dependent steps (dedup, split) need.
/// </summary>
public sealed class TextCleaner(CleaningOptions options)
{
    readonly MinHasher _minHasher = new(options.NumPermutations, options.ShingleSize);
    readonly bool _checked = Check();
    static bool Check() { EnsureNormalizationWorks(); return true; }
    public CleaningOptions Options { get; } = options;
    public MinHasher MinHasher => _minHasher;

    /// <summary>
    /// .NET normalizes through ICU; a process started with InvariantGlobalization=true leaves strings as they are,
    /// which would silently skip NFC (and make dedup miss composed/decomposed twins).
    /// </summary>
    public static void EnsureNormalizationWorks()
    {
        if ("e\u0301".Normalize(NormalizationForm.FormC) != "\u00e9")
            throw new Core.CptLabException("Unicode NFC normalization is unavailable in this process (it runs with InvariantGlobalization=true, or without ICU): " +
                "set <InvariantGlobalization>false</InvariantGlobalization> in the executable's project and install libicu");
    }

    public CleanedDocument Clean(string raw, string? language)
    {
        var text = Normalize(raw);
        if (text.Length == 0) return new CleanedDocument { Text = text, Drop = DropReason.Empty };
        if (text.Length < Options.MinChars) return new CleanedDocument { Text = text, Drop = DropReason.TooShort, Detail = $"{text.Length} chars < {Options.MinChars}" };
        if (text.Length > Options.MaxChars) return new CleanedDocument { Text = text, Drop = DropReason.TooLong, Detail = $"{text.Length} chars > {Options.MaxChars}" };
        if (language is not null)
        {
            var share = ScriptCheck.Share(text, language);
            if (share < Options.MinScriptShare)
                return new CleanedDocument { Text = text, Drop = DropReason.WrongLanguage, Detail = $"{share:P0} of letters in the {language} script < {Options.MinScriptShare:P0}" };
        }
        var key = DedupKey(text);
        var keyBytes = MemoryMarshal.AsBytes(key.AsSpan());
        return new CleanedDocument
        {
            Text = text,
            ExactHash = XxHash64.HashToUInt64(keyBytes),
            SplitValue = SplitValueOfKey(keyBytes),
            Signature = Options.NearDedup ? _minHasher.Signature(key) : null,
        };
    }

    /// <summary>The split value of a cleaned text (<see cref="Normalize"/>'s output): below the validation fraction it is held out.</summary>
    public static double SplitValueOf(string cleanedText) => SplitValueOfKey(MemoryMarshal.AsBytes(DedupKey(cleanedText).AsSpan()));

    static double SplitValueOfKey(ReadOnlySpan<byte> keyBytes) => (XxHash64.HashToUInt64(keyBytes, seed: 0x5EED_5A17) >> 11) * (1.0 / (1UL << 53));

    /// <summary>NFC, controls removed (keeping \t and \n; \r\n and \r become \n), outer whitespace trimmed.</summary>
    public static string Normalize(string raw)
    {
        var s = raw;
        StringBuilder? sb = null;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            bool keep;
            if (char.IsHighSurrogate(c)) keep = i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]);
            else if (char.IsLowSurrogate(c)) keep = i > 0 && char.IsHighSurrogate(s[i - 1]);   // lone surrogates go
            else keep = c == '\n' || c == '\t' || !char.IsControl(c);
            if (c == '\r')
            {
                sb ??= new StringBuilder(s, 0, i, s.Length);
                if (i + 1 >= s.Length || s[i + 1] != '\n') sb.Append('\n');
                continue;
            }
            if (keep) sb?.Append(c);
            else sb ??= new StringBuilder(s, 0, i, s.Length);
        }
        s = sb?.ToString() ?? s;   // lone surrogates are gone, so normalization cannot throw
        return (s.IsNormalized(NormalizationForm.FormC) ? s : s.Normalize(NormalizationForm.FormC)).Trim();
    }

    /// <summary>Case-folded with runs of whitespace collapsed to one space: "Hello  World\n" and "hello world" are one document.</summary>
    public static string DedupKey(string text)
    {
        var sb = new StringBuilder(text.Length);
        var space = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c)) { space = sb.Length > 0; continue; }
            if (space) { sb.Append(' '); space = false; }
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
