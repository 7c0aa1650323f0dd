using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace CptLab.Export.Tests;

/// <summary>
/// llama.cpp itself (build b10221 in LLamaSharp.Backend.Cpu 0.30.0) on a GGUF file: the reference every test here
/// checks CptLab against. Raw decode loop, no sampler chain: greedy is the argmax of llama.cpp's own logits.
/// K/V caches are float32 and flash attention off, so the comparison measures the file, not llama.cpp's cache precision.
/// </summary>
public sealed class LlamaCpp : IDisposable
{
    static readonly StringBuilder _log = new();
    static readonly object _gate = new();

    static LlamaCpp()
    {
        // Configured before the first native call, once per process: keep llama.cpp's log for failure messages.
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            lock (_gate)
            {
                if (_log.Length > 200_000) _log.Remove(0, 100_000);
                _log.Append(message);
            }
        });
    }

    /// <summary>The end of llama.cpp's log, to put in an assertion message.</summary>
    public static string RecentLog(int chars = 2000)
    {
        lock (_gate) return _log.Length <= chars ? _log.ToString() : _log.ToString(_log.Length - chars, chars);
    }

    readonly ModelParams _params;
    public LLamaWeights Weights { get; }
    public LLamaContext Context { get; }

    public LlamaCpp(string gguf, uint contextSize = 512, int threads = 2)
    {
        _params = new ModelParams(gguf)
        {
            ContextSize = contextSize,
            BatchSize = contextSize,
            UBatchSize = contextSize,
            GpuLayerCount = 0,
            Threads = threads,
            BatchThreads = threads,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        Weights = LLamaWeights.LoadFromFile(_params);
        Context = Weights.CreateContext(_params);
    }

    /// <summary>Loads only to see whether llama.cpp accepts the file; returns its error (with the log's end) or null.</summary>
    public static string? LoadError(string gguf)
    {
        try
        {
            using var m = new LlamaCpp(gguf, 256, 1);
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}\n{RecentLog(600)}";
        }
    }

    public int[] Tokenize(string text, bool addBos = false, bool special = false) =>
        Context.Tokenize(text, addBos, special).Select(t => (int)t).ToArray();

    /// <summary>Argmax of llama.cpp's logits at every position of <paramref name="ids"/> (one forward over the sequence).</summary>
    public int[] ArgmaxPerPosition(IReadOnlyList<int> ids) => LogitsPerPosition(ids).Argmax;

    /// <summary>Argmax and the largest logit at every position (one forward over the sequence).</summary>
    public (int[] Argmax, float[] Max) LogitsPerPosition(IReadOnlyList<int> ids)
    {
        Context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Count; i++) batch.Add(ids[i], i, LLamaSeqId.Zero, logits: true);
        Check(Context.Decode(batch));
        var argmax = new int[ids.Count];
        var max = new float[ids.Count];
        for (int i = 0; i < ids.Count; i++)
        {
            var logits = Context.NativeHandle.GetLogitsIth(i);
            argmax[i] = Argmax(logits);
            max[i] = logits[argmax[i]];
        }
        return (argmax, max);
    }

    /// <summary>Greedy continuation: the prompt in one batch, then one token per step, each the argmax of llama.cpp's logits.</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int newTokens)
    {
        Context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Check(Context.Decode(batch));
        var output = new List<int>(newTokens);
        int next = Argmax(Context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
        for (int pos = prompt.Count; ; pos++)
        {
            output.Add(next);
            if (output.Count == newTokens) break;
            batch.Clear();
            batch.Add(next, pos, LLamaSeqId.Zero, logits: true);
            Check(Context.Decode(batch));
            next = Argmax(Context.NativeHandle.GetLogitsIth(0));
        }
        return [.. output];
    }

    static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {r}\n{RecentLog()}");
    }

    static int Argmax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        Context.Dispose();
        Weights.Dispose();
    }
}
