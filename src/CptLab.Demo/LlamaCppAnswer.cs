using System.Runtime.InteropServices;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace CptLab.Demo;

/// <summary>llama.cpp's greedy answer: what it tokenized, what it generated, its text, and llama.cpp's own system line.</summary>
public sealed record LlamaCppResult(int[] PromptIds, int[] AnswerIds, string Text, string SystemInfo, string? Library, int MaxNewTokens);

/// <summary>
/// A GGUF file run by llama.cpp itself (LLamaSharp's bindings over LLamaSharp.Backend.Cpu, the build
/// tests/CptLab.Export.Tests checks the export against): llama.cpp tokenizes the prompt (special tokens parsed, no BOS
/// added — the chat template writes it), decodes greedily (the argmax of its logits) until an end-of-generation token or
/// the token budget, and detokenizes. K/V caches in float32, flash attention off, no GPU layers.
/// </summary>
public static class LlamaCppAnswer
{
    static readonly StringBuilder _log = new();
    static readonly object _gate = new();

    static LlamaCppAnswer()
    {
        // llama.cpp logs every load to stderr; keep its log for the error message instead. Configurable only before the
        // first native call of the process: where another caller got there first, its logging stays.
        try
        {
            NativeLibraryConfig.All.WithLogCallback((_, message) =>
            {
                lock (_gate)
                {
                    if (_log.Length > 100_000) _log.Remove(0, 50_000);
                    _log.Append(message);
                }
            });
        }
        catch (InvalidOperationException) { }
    }

    /// <summary>
    /// The llama.cpp library this process has loaded (from /proc/self/maps: LLamaSharp's assembly carries no version,
    /// so the file is the evidence of what ran), or null where it is not loaded or the platform has no /proc.
    /// </summary>
    public static string? LoadedLibrary()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return null;
        return File.ReadLines(maps).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 6)
            .Select(f => string.Join(' ', f[5..])).FirstOrDefault(path => Path.GetFileName(path).StartsWith("libllama", StringComparison.Ordinal));
    }

    public static LlamaCppResult Greedy(string gguf, string promptText, int maxNewTokens, uint contextSize, int threads)
    {
        var parameters = new ModelParams(gguf)
        {
            ContextSize = contextSize, BatchSize = contextSize, UBatchSize = contextSize, GpuLayerCount = 0,
            Threads = Math.Max(1, threads), BatchThreads = Math.Max(1, threads),
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        LLamaWeights weights;
        try { weights = LLamaWeights.LoadFromFile(parameters); }
        catch (Exception e) when (e is not OutOfMemoryException) { throw new Core.CptLabException($"llama.cpp could not load {gguf}: {e.Message}; its log ends: {RecentLog()}"); }
        using var _ = weights;
        using var context = weights.CreateContext(parameters);
        var prompt = context.Tokenize(promptText, addBos: false, special: true);
        int room = Math.Min(maxNewTokens, (int)contextSize - prompt.Length);
        var answer = new List<LLamaToken>();
        if (room > 0)
        {
            var batch = new LLamaBatch();
            for (int i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Length - 1);
            Check(context.Decode(batch));
            var next = Argmax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
            for (int pos = prompt.Length; ; pos++)
            {
                if (next.IsEndOfGeneration(weights.NativeHandle.Vocab)) break;
                answer.Add(next);
                if (answer.Count == room) break;
                batch.Clear();
                batch.Add(next, pos, LLamaSeqId.Zero, logits: true);
                Check(context.Decode(batch));
                next = Argmax(context.NativeHandle.GetLogitsIth(0));
            }
        }
        var decoder = new StreamingTokenDecoder(context);
        decoder.AddRange(answer);
        var text = decoder.Read();
        var info = Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info()) ?? "";
        return new LlamaCppResult([.. prompt.Select(t => (int)t)], [.. answer.Select(t => (int)t)], text, info.Trim(), LoadedLibrary(), Math.Max(0, room));
    }

    static string RecentLog()
    {
        lock (_gate) return _log.Length <= 2000 ? _log.ToString() : _log.ToString(_log.Length - 2000, 2000);
    }

    static LLamaToken Argmax(Span<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return (LLamaToken)best;
    }

    static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok) throw new Core.CptLabException($"llama.cpp's llama_decode returned {r}; its log ends: {RecentLog()}");
    }
}
