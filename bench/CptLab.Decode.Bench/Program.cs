using System.Diagnostics;
using System.Globalization;
using CptLab.Data.Tokenization;
using CptLab.Export;
using CptLab.Model;
using CptLab.Model.Hardware;
using LLama;
using LLama.Common;
using LLama.Native;
using static TorchSharp.torch;

// Decode speed, batch 1, greedy: CptLab's Generation.Generate against llama.cpp (LLamaSharp 0.30.0, build b10221)
// on the same weights — one Hugging Face folder, exported to GGUF for llama.cpp — with the same thread count, in one
// run. Prefill (the prompt) is timed apart; tokens/s counts the decode steps after the first generated token.
//
//   dotnet run -c Release --project bench/CptLab.Decode.Bench -- [--threads 2] [--new-tokens 48] [--prompt-tokens 16]
//       [--models cpu-20m,Llama-3.2-1B] [--work /tmp/cptlab-decode-bench] [--tokenizer DIR]
//
// The random models are written once under --work and reused. Llama-3.2-1B needs Meta's tokenizer.json
// (scripts/fetch-test-peers.sh puts it in .cache/llama3-tokenizer); cpu-20m gets an 8,192-token BPE trained here.

var opts = Args.Parse(args);
NativeLibraryConfig.All.WithLogCallback((_, _) => { });
TorchRuntime.Initialise(opts.Threads);
Directory.CreateDirectory(opts.Work);
Console.WriteLine($"decode bench: {opts.Threads} thread(s), prompt {opts.PromptTokens} tokens, {opts.NewTokens} new tokens, greedy, batch 1");
Console.WriteLine($"cpu: {CpuInfo.Current.ModelName}; {CpuInfo.Current.Bf16Support}");

var rows = new List<string>();
foreach (var flavor in opts.Models)
{
    var dir = Path.Combine(opts.Work, flavor);
    var config = PrepareFolder(flavor, dir, opts);
    var prompt = Enumerable.Range(0, opts.PromptTokens).Select(i => (i * 7919 + 13) % Math.Min(config.VocabSize, 100_000)).ToArray();
    prompt[0] = config.BosTokenId ?? 0;

    // CptLab, in the dtype `auto` chooses for inference on this machine.
    var precision = ComputePrecision.ForInference(dir, null, Console.Error.WriteLine);
    var (cptTps, cptPrefill, cptIds) = RunCptLab(dir, precision.Dtype, prompt, opts.NewTokens);
    Console.WriteLine($"{flavor}: CptLab {precision.Name} ({precision.Reason}): prefill {cptPrefill * 1e3:F0} ms, decode {cptTps:F1} tok/s");
    var (pagedTps, pagedPrefill, pagedIds) = RunCptLabPaged(dir, precision.Dtype, prompt, opts.NewTokens);
    int pagedSame = 0;
    while (pagedSame < pagedIds.Length && pagedIds[pagedSame] == cptIds[pagedSame]) pagedSame++;
    Console.WriteLine($"{flavor}: CptLab serving path (paged KV cache, DecodePaged at batch 1): prefill {pagedPrefill * 1e3:F0} ms, decode {pagedTps:F1} tok/s; greedy tokens identical to Generation for the first {pagedSame}/{pagedIds.Length}");

    foreach (var type in new[] { GgufWeightType.F32, GgufWeightType.BF16 })
    {
        var gguf = Path.Combine(opts.Work, $"{flavor}-{type.ToString().ToLowerInvariant()}.gguf");
        if (!File.Exists(gguf)) GgufExport.Export(dir, gguf, type);
        var (tps, prefill, ids) = RunLlamaCpp(gguf, prompt, opts.NewTokens, opts.Threads, config.MaxPositionEmbeddings);
        int same = 0;
        while (same < ids.Length && ids[same] == cptIds[same]) same++;
        double ratio = cptTps / tps;
        Console.WriteLine($"{flavor}: llama.cpp {type.ToString().ToLowerInvariant()} GGUF: prefill {prefill * 1e3:F0} ms, decode {tps:F1} tok/s; " +
            $"CptLab/llama.cpp = {ratio:F2}; greedy tokens identical for the first {same}/{ids.Length}");
        rows.Add(string.Create(CultureInfo.InvariantCulture,
            $"| {flavor} | {precision.Name} | {cptTps:F1} | {pagedTps:F1} | {type.ToString().ToLowerInvariant()} | {tps:F1} | **{ratio:F2}** / {pagedTps / tps:F2} | {same}/{ids.Length} |"));
    }
    GC.Collect();
    GC.WaitForPendingFinalizers();
}

Console.WriteLine();
Console.WriteLine("| model | CptLab dtype | CptLab tok/s | CptLab serving (paged) tok/s | llama.cpp GGUF | llama.cpp tok/s | CptLab ÷ llama.cpp (generate / serving) | same greedy tokens |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
foreach (var r in rows) Console.WriteLine(r);
return 0;

static LlamaConfig PrepareFolder(string flavor, string dir, Args opts)
{
    if (File.Exists(Path.Combine(dir, HfCheckpoint.ConfigFile)) && File.Exists(Path.Combine(dir, "tokenizer.json")))
        return LlamaConfig.Load(Path.Combine(dir, HfCheckpoint.ConfigFile));
    Directory.CreateDirectory(dir);
    var config = Flavors.Get(flavor);
    if (config.VocabSize == 128256)
    {
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(opts.Tokenizer, f), Path.Combine(dir, f), overwrite: true);
    }
    else
    {
        // A byte-level BPE with Llama-3's pattern and special tokens, trained on generated text: decode cost does not
        // depend on which strings the ids stand for. Ids it does not reach are exported as unused [PAD] tokens.
        var texts = Enumerable.Range(0, 4000).Select(i => $"document {i}: the quick brown fox {i * 31 % 997} jumps over the lazy dog {i % 13} 快速的棕色狐狸 {i % 101}");
        var bpe = BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = config.VocabSize, MinPairCount = 1 });
        bpe.Save(Path.Combine(dir, "tokenizer.json"));
        config = config with { VocabSize = Math.Max(config.VocabSize, bpe.VocabSize), BosTokenId = bpe.FirstSpecialId, EosTokenIds = [bpe.FirstSpecialId + 1] };
    }
    // Stored in bf16, as Hub checkpoints are: the f32 and bf16 GGUFs and CptLab's float32 copy then hold the very same values.
    using var model = new LlamaForCausalLM(config, ScalarType.Float32);
    model.InitWeights(1);
    HfCheckpoint.Save(model, dir, ScalarType.BFloat16);
    return config;
}

static (double TokensPerSecond, double PrefillSeconds, int[] Ids) RunCptLab(string dir, ScalarType dtype, int[] prompt, int newTokens)
{
    using var model = HfCheckpoint.Load(dir, dtype);
    var request = new GenerationRequest(prompt, newTokens, new SamplingOptions { Temperature = 0 });
    foreach (var _ in Generation.Generate(model, request with { MaxNewTokens = 4 })) { } // warm-up
    var ids = new List<int>();
    var sw = Stopwatch.StartNew();
    double firstAt = 0;
    foreach (var t in Generation.Generate(model, request))
    {
        if (ids.Count == 0) firstAt = sw.Elapsed.TotalSeconds;
        ids.Add(t.Id);
    }
    double total = sw.Elapsed.TotalSeconds;
    return ((newTokens - 1) / (total - firstAt), firstAt, [.. ids]);
}

// The serving engine's path at batch 1: a paged KV cache, prefill with last-position logits, then DecodePaged per token.
static (double TokensPerSecond, double PrefillSeconds, int[] Ids) RunCptLabPaged(string dir, ScalarType dtype, int[] prompt, int newTokens)
{
    using var model = HfCheckpoint.Load(dir, dtype);
    using var pool = new KvBlockPool(model.Config, (prompt.Length + newTokens) / 16 + 2, 16, model.Dtype);
    var logits = new float[model.Config.VocabSize];
    int[] Run(int n, Stopwatch? sw, out double firstAt)
    {
        var seq = new PagedSequence(pool);
        using var _ = no_grad();
        seq.Reserve(prompt.Length);
        using (var scope = NewDisposeScope()) TensorData.CopyTo(model.PrefillPaged(seq, prompt, allPositions: false)[0], logits);
        var ids = new List<int> { TokenSampler.ArgMax(logits) };
        firstAt = sw?.Elapsed.TotalSeconds ?? 0;
        while (ids.Count < n)
        {
            using var scope = NewDisposeScope();
            seq.Reserve(1);
            TensorData.CopyTo(model.DecodePaged([seq], [ids[^1]])[0], logits);
            ids.Add(TokenSampler.ArgMax(logits));
        }
        seq.Release();
        return [.. ids];
    }
    Run(4, null, out _); // warm-up
    var sw = Stopwatch.StartNew();
    var result = Run(newTokens, sw, out double first);
    double total = sw.Elapsed.TotalSeconds;
    return ((newTokens - 1) / (total - first), first, result);
}

static (double TokensPerSecond, double PrefillSeconds, int[] Ids) RunLlamaCpp(string gguf, int[] prompt, int newTokens, int threads, int maxContext)
{
    uint ctx = (uint)Math.Min(maxContext, 512);
    var p = new ModelParams(gguf)
    {
        ContextSize = ctx, BatchSize = ctx, UBatchSize = ctx, GpuLayerCount = 0, Threads = threads, BatchThreads = threads,
    };
    using var weights = LLamaWeights.LoadFromFile(p);
    using var context = weights.CreateContext(p);
    Decode(context, prompt, 4); // warm-up
    var sw = Stopwatch.StartNew();
    var (ids, firstAt) = Decode(context, prompt, newTokens, sw);
    double total = sw.Elapsed.TotalSeconds;
    return ((newTokens - 1) / (total - firstAt), firstAt, ids);
}

static (int[] Ids, double FirstAt) Decode(LLamaContext context, int[] prompt, int newTokens, Stopwatch? sw = null)
{
    context.NativeHandle.MemoryClear(true);
    var batch = new LLamaBatch();
    for (int i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
    if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama_decode failed on the prompt");
    var ids = new List<int> { Argmax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1)) };
    double firstAt = sw?.Elapsed.TotalSeconds ?? 0;
    for (int pos = prompt.Length; ids.Count < newTokens; pos++)
    {
        batch.Clear();
        batch.Add(ids[^1], pos, LLamaSeqId.Zero, true);
        if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode failed at position {pos}");
        ids.Add(Argmax(context.NativeHandle.GetLogitsIth(0)));
    }
    return ([.. ids], firstAt);
}

static int Argmax(ReadOnlySpan<float> logits)
{
    int best = 0;
    for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
    return best;
}

sealed record Args(int Threads, int NewTokens, int PromptTokens, string[] Models, string Work, string Tokenizer)
{
    public static Args Parse(string[] args)
    {
        string Get(string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var root = FindRoot();
        return new Args(
            int.Parse(Get("--threads", "2"), CultureInfo.InvariantCulture),
            int.Parse(Get("--new-tokens", "48"), CultureInfo.InvariantCulture),
            int.Parse(Get("--prompt-tokens", "16"), CultureInfo.InvariantCulture),
            Get("--models", "cpu-20m,Llama-3.2-1B").Split(','),
            Get("--work", Path.Combine(Path.GetTempPath(), "cptlab-decode-bench")),
            Get("--tokenizer", Path.Combine(root, ".cache", "llama3-tokenizer")));
    }

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "CptLab.slnx"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
