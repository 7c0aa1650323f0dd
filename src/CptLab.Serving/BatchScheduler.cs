using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Hardware;
using static TorchSharp.torch;

namespace CptLab.Serving;

public sealed record SchedulerOptions
{
    /// <summary>Most sequences in the running batch (vLLM's max_num_seqs).</summary>
    public int MaxConcurrentSequences { get; init; } = 32;
    /// <summary>Most tokens one iteration feeds the model: one per decoding sequence plus prompt chunks (vLLM's max_num_batched_tokens).</summary>
    public int MaxBatchedTokens { get; init; } = 2048;
    /// <summary>Longest piece of a prompt prefilled in one iteration, so a long prompt does not stall the sequences decoding.</summary>
    public int PrefillChunkTokens { get; init; } = 512;
    /// <summary>Memory of the KV-cache block pool; 0 = <see cref="DefaultKvCacheFraction"/> of the memory available when the model has loaded.</summary>
    public long KvCacheBytes { get; init; }
    /// <summary>Size the pool in tokens instead of bytes (tests, benchmarks); 0 = by <see cref="KvCacheBytes"/>.</summary>
    public long KvCacheTokens { get; init; }
    /// <summary>Positions per KV-cache block (vLLM's block_size).</summary>
    public int KvBlockSize { get; init; } = 16;
    /// <summary>Most sequences waiting for admission; one more is refused (HTTP 429).</summary>
    public int MaxWaiting { get; init; } = 256;
    /// <summary>LibTorch intra-op threads (0 = the cores free when the server starts).</summary>
    public int Threads { get; init; }

    public const double DefaultKvCacheFraction = 0.25;

    public SchedulerOptions Validate()
    {
        if (MaxConcurrentSequences < 1) throw new CptLabException($"max concurrent sequences {MaxConcurrentSequences} must be ≥ 1");
        if (MaxBatchedTokens < MaxConcurrentSequences) throw new CptLabException($"max batched tokens {MaxBatchedTokens} must be ≥ max concurrent sequences {MaxConcurrentSequences} (each running sequence feeds one token per step)");
        if (PrefillChunkTokens < 1) throw new CptLabException($"prefill chunk {PrefillChunkTokens} must be ≥ 1 token");
        if (KvCacheBytes < 0) throw new CptLabException($"KV-cache memory {KvCacheBytes} bytes must be ≥ 0 (0 = a quarter of the free memory)");
        if (KvCacheTokens < 0) throw new CptLabException($"KV-cache tokens {KvCacheTokens} must be ≥ 0 (0 = sized by memory)");
        if (KvBlockSize is < 1 or > 1024) throw new CptLabException($"KV block size {KvBlockSize} must be in [1, 1024]");
        if (MaxWaiting < 0) throw new CptLabException($"max waiting {MaxWaiting} must be ≥ 0");
        return this;
    }
}

public enum EngineState { Loading, Ready, Failed, Stopped }

/// <summary>How the KV-cache pool was sized, for the start-up line.</summary>
public sealed record KvCacheLayout(long Bytes, int Blocks, int BlockSize, long Tokens, string Reason);

/// <summary>
/// Continuous batching over a paged KV cache. One dedicated thread owns the model (LibTorch and its dispose scopes are per
/// thread) and the block pool, and loops: admit waiting sequences while the batch has room (max sequences) and the pool has
/// the blocks their prompts need; prefill admitted prompts in chunks (at most max batched tokens per iteration, minus one
/// per decoding sequence), emitting each prompt's first token when its last chunk is done; then advance every decoding
/// sequence by one token in a single <see cref="LlamaForCausalLM.DecodePaged"/>. A sequence takes a block when its next
/// position crosses into one; when the pool has none left, the newest sequence is preempted — its blocks freed, itself put
/// back at the head of the queue to be recomputed (prompt and the tokens it had generated) when blocks free up — as vLLM
/// does. A sequence that finishes or is cancelled frees its blocks at once. Request handlers talk to the thread through a
/// queue in and one channel per sequence out; nothing here awaits, and no tensor outlives the iteration that made it
/// except the pool.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    readonly Func<ServedModel> _load;
    readonly SchedulerOptions _options;
    readonly ConcurrentQueue<Sequence> _incoming = new();
    readonly SemaphoreSlim _wake = new(0);
    readonly Thread _thread;
    readonly List<Sequence> _running = [];     // admission order: prefilling and decoding
    readonly List<Sequence> _waiting = [];     // preempted sequences go back to the front
    readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    volatile bool _stopping;
    long _nextId;
    ServedModel? _model;
    KvBlockPool? _pool;

    /// <param name="load">Loads the model; runs on the scheduler thread, so the server answers (/health 503) meanwhile.</param>
    public BatchScheduler(Func<ServedModel> load, SchedulerOptions? options = null, ServerMetrics? metrics = null)
    {
        _load = load;
        _options = (options ?? new SchedulerOptions()).Validate();
        Metrics = metrics ?? new ServerMetrics();
        _thread = new Thread(Run) { IsBackground = true, Name = "cptlab-scheduler" };
        _thread.Start();
    }

    public ServerMetrics Metrics { get; }
    public SchedulerOptions Options => _options;
    public EngineState State { get; private set; } = EngineState.Loading;
    public string? LoadError { get; private set; }
    /// <summary>The KV-cache pool's size and why; set once the model has loaded.</summary>
    public KvCacheLayout? KvCache { get; private set; }

    /// <summary>Completes when the model is loaded; faults with the load error.</summary>
    public Task Loaded => _loaded.Task;

    /// <summary>The served model; throws <see cref="ModelNotReadyException"/> while loading or after a failed load.</summary>
    public ServedModel Model => State == EngineState.Ready ? _model! : throw NotReady();

    Exception NotReady() => new ModelNotReadyException(State switch
    {
        EngineState.Loading => "the model is still loading; retry when GET /health answers 200",
        EngineState.Failed => $"the model failed to load: {LoadError}",
        _ => "the server is shutting down",
    });

    /// <summary>
    /// Queues a sequence. Throws <see cref="QueueFullException"/> when the waiting queue is full, a
    /// <see cref="CptLabException"/> for a request the model cannot take. Cancelling <paramref name="cancellation"/>
    /// (a client that went away) removes the sequence and frees its cache.
    /// </summary>
    public SequenceHandle Submit(SequenceRequest request, CancellationToken cancellation = default)
    {
        var model = Model;
        request.Validate(model.Model.Config.VocabSize, model.ContextLength);
        if (KvCache is { } kv && (request.PromptIds.Count + 1 + kv.BlockSize - 1) / kv.BlockSize > kv.Blocks - 1)
            throw new CptLabException($"the prompt ({request.PromptIds.Count} tokens) does not fit the server's KV cache of {kv.Tokens:N0} tokens; shorten it, or restart the server with more --kv-cache-memory");
        if (Interlocked.Increment(ref Metrics.Waiting) > _options.MaxWaiting)
        {
            int waiting = Interlocked.Decrement(ref Metrics.Waiting);
            Metrics.RequestRejected();
            throw new QueueFullException(waiting);
        }
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var channel = Channel.CreateUnbounded<SequenceEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var seq = new Sequence(Interlocked.Increment(ref _nextId), request, channel.Writer, cancel);
        Metrics.RequestAccepted();
        _incoming.Enqueue(seq);
        _wake.Release();
        return new SequenceHandle(seq.Id, channel.Reader, cancel);
    }

    /// <summary>The threads the model runs with, and why; set once the model thread has started.</summary>
    public ThreadChoice? Threads { get; private set; }

    void Run()
    {
        try
        {
            Threads = CpuLoad.ChooseThreads(_options.Threads);
            TorchRuntime.Initialise(Threads.Threads);
            _model = _load();
            (_pool, KvCache) = CreatePool(_model.Model);
            PublishCacheMetrics();
            State = EngineState.Ready;
            Metrics.ModelLoaded = true;
            _loaded.TrySetResult();
        }
        catch (Exception e)
        {
            LoadError = e.Message;
            State = EngineState.Failed;
            _loaded.TrySetException(e);
            return;
        }

        while (!_stopping)
        {
            if (_running.Count == 0 && _waiting.Count == 0 && _incoming.IsEmpty)
            {
                _wake.Wait(TimeSpan.FromMilliseconds(200));
                continue;
            }
            while (_incoming.TryDequeue(out var s)) _waiting.Add(s);
            DropCancelled();
            Admit();
            var firstTokens = Prefill();
            Decode(firstTokens);
            PublishCacheMetrics();
            Metrics.StepDone();
        }
        foreach (var s in _running.Concat(_waiting)) Finish(s, new SequenceFailed("the server is shutting down"));
        _running.Clear();
        _waiting.Clear();
    }

    /// <summary>
    /// The pool: --kv-cache-tokens if given, else --kv-cache-memory, else a quarter of the memory available now (the model
    /// loaded); never more blocks than max sequences × the context can use.
    /// </summary>
    (KvBlockPool, KvCacheLayout) CreatePool(LlamaForCausalLM model)
    {
        var c = model.Config;
        int bs = _options.KvBlockSize;
        long perBlock = KvBlockPool.BytesPerBlock(c, bs, model.Dtype);
        long useful = (long)_options.MaxConcurrentSequences * ((c.MaxPositionEmbeddings + bs - 1) / bs) + 1;
        long blocks;
        string reason;
        if (_options.KvCacheTokens > 0)
        {
            blocks = (_options.KvCacheTokens + bs - 1) / bs + 1;
            reason = $"--max-kv-tokens {_options.KvCacheTokens:N0}";
        }
        else if (_options.KvCacheBytes > 0)
        {
            blocks = _options.KvCacheBytes / perBlock;
            reason = $"--kv-cache-memory {Gib(_options.KvCacheBytes)}";
        }
        else
        {
            long available = MemoryInfo.AvailableBytes();
            blocks = (long)(available * SchedulerOptions.DefaultKvCacheFraction) / perBlock;
            reason = $"{SchedulerOptions.DefaultKvCacheFraction:P0} of the {Gib(available)} available";
        }
        if (blocks > useful)
        {
            blocks = useful;
            reason += $", capped at what {_options.MaxConcurrentSequences} sequences × {c.MaxPositionEmbeddings:N0} positions can use";
        }
        if (blocks < 2) throw new CptLabException($"the KV cache ({reason}) holds less than one block of {bs} tokens ({perBlock:N0} bytes); give it more memory (--kv-cache-memory)");
        if (blocks > int.MaxValue) blocks = int.MaxValue;
        var pool = new KvBlockPool(c, (int)blocks, bs, model.Dtype, model.Body.EmbedTokens.device);
        return (pool, new KvCacheLayout(pool.Bytes, pool.TotalBlocks, bs, pool.CapacityTokens, reason));
    }

    static string Gib(long bytes) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.##} GiB");

    void DropCancelled()
    {
        for (int i = _running.Count - 1; i >= 0; i--)
            if (_running[i].Cancellation.IsCancellationRequested)
            {
                var s = _running[i];
                _running.RemoveAt(i);
                Metrics.SequenceCancelled();
                Finish(s, null);
            }
        for (int i = _waiting.Count - 1; i >= 0; i--)
            if (_waiting[i].Cancellation.IsCancellationRequested)
            {
                var s = _waiting[i];
                _waiting.RemoveAt(i);
                Interlocked.Decrement(ref Metrics.Waiting);
                Metrics.SequenceCancelled();
                Finish(s, null);
            }
        Volatile.Write(ref Metrics.Running, _running.Count);
    }

    /// <summary>
    /// Admits waiting sequences in order while the batch has room and the pool has free the blocks for the whole prompt and
    /// its next token (so admitted prefills never stall); the first sequence that does not fit waits, and those behind it too.
    /// </summary>
    void Admit()
    {
        var pool = _pool!;
        while (_waiting.Count > 0 && _running.Count < _options.MaxConcurrentSequences)
        {
            var s = _waiting[0];
            s.Paged ??= new PagedSequence(pool);
            int target = s.PrefillTarget.Count;
            if (!s.Paged.Reserve(target + 1))
            {
                // Nothing running to wait for: this prompt alone is larger than the whole pool (checked at submission for
                // prompts; a preempted sequence can have grown past it).
                if (_running.Count > 0) break;
                _waiting.RemoveAt(0);
                Interlocked.Decrement(ref Metrics.Waiting);
                Metrics.SequenceFailed();
                Finish(s, new SequenceFailed($"the sequence ({target + 1} tokens) no longer fits the server's KV cache of {pool.CapacityTokens:N0} tokens; restart the server with more --kv-cache-memory"));
                continue;
            }
            _waiting.RemoveAt(0);
            Interlocked.Decrement(ref Metrics.Waiting);
            s.Prefilling = true;
            _running.Add(s);
        }
        Volatile.Write(ref Metrics.Running, _running.Count);
    }

    /// <summary>
    /// Runs prompt chunks for the sequences still prefilling, oldest first, within this iteration's token budget; a sequence
    /// whose last chunk ran emits its first token (a resumed one goes straight back to decoding). Returns those that emitted.
    /// </summary>
    HashSet<Sequence> Prefill()
    {
        var emitted = new HashSet<Sequence>();
        int decoding = _running.Count(s => !s.Prefilling);
        int budget = _options.MaxBatchedTokens - decoding;
        // Fresh prompts that fit one chunk and need no prompt scores go through the model together, packed in one row.
        var packed = new List<Sequence>();
        foreach (var s in _running.Where(s => s.Prefilling).ToList())
        {
            if (budget <= 0 && (decoding > 0 || emitted.Count > 0 || packed.Count > 0)) break;
            int done = s.Paged!.Length, target = s.PrefillTarget.Count;
            int chunk = Math.Min(target - done, Math.Min(_options.PrefillChunkTokens, Math.Max(budget, 1)));
            budget -= chunk;
            if (done == 0 && chunk == target && s.Request.PromptLogprobs is null)
            {
                packed.Add(s);
                continue;
            }
            try
            {
                if (PrefillChunk(s, done, chunk)) emitted.Add(s);
            }
            catch (Exception e)
            {
                Fail(s, $"prefill failed: {e.Message}");
            }
        }
        if (packed.Count > 0) PrefillPacked(packed, emitted);
        return emitted;
    }

    /// <summary>Whole fresh prompts in one packed pass; each emits its first token (a resumed one goes back to decoding).</summary>
    void PrefillPacked(List<Sequence> packed, HashSet<Sequence> emitted)
    {
        float[] rows;
        int vocab = _model!.Model.Config.VocabSize;
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            rows = TensorData.ToFloats(_model.Model.PrefillPagedPacked(packed.Select(s => s.Paged!).ToList(), packed.Select(s => s.PrefillTarget.ToArray()).ToList())); // (n·V)
        }
        catch (Exception e)
        {
            foreach (var s in packed)
            {
                Fail(s, $"prefill failed: {e.Message}");
            }
            return;
        }
        for (int i = 0; i < packed.Count; i++)
        {
            var s = packed[i];
            s.Prefilling = false;
            if (s.Resumed) continue; // decodes in this iteration from the token it had emitted last
            Metrics.PromptTokens(s.PrefillTarget.Count);
            if (!Emit(s, rows.AsSpan(i * vocab, vocab))) _running.Remove(s);
            emitted.Add(s);
        }
    }

    /// <summary>One chunk [from, from + n) of a sequence's prefill; true when it was the last and the first token came out.</summary>
    bool PrefillChunk(Sequence s, int from, int n)
    {
        var model = _model!.Model;
        var r = s.Request;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = CollectionsMarshal.AsSpan(s.PrefillTarget).Slice(from, n);
        bool scoring = r.PromptLogprobs is not null && !s.Resumed;
        var logits = model.PrefillPaged(s.Paged!, ids, allPositions: scoring);                // (n or 1, V)
        if (!s.Resumed) Metrics.PromptTokens(n);
        if (scoring) s.PromptScores.AddRange(ScorePrompt(logits, r.PromptIds, from, r.PromptLogprobs!.Value));
        if (from + n < s.PrefillTarget.Count) return false;

        s.Prefilling = false;
        if (s.Resumed) return false; // its next input is the token it had emitted last: it decodes in this iteration
        if (scoring) s.Writer.TryWrite(new PromptScored(s.PromptScores));
        if (r.MaxNewTokens == 0)
        {
            _running.Remove(s);
            Finish(s, new SequenceFinished(FinishReason.Length));
            return false;
        }
        var row = TensorData.ToFloats(logits[-1]);                                               // (V)
        if (!Emit(s, row)) _running.Remove(s);
        return true;
    }

    /// <summary>
    /// Logits (n, V) of prompt positions [from, from + n) → for each position p with a next prompt token, log p(ids[p+1] | ids[..p])
    /// and the top k alternatives.
    /// </summary>
    static List<TokenLogprob> ScorePrompt(Tensor logits, IReadOnlyList<int> prompt, int from, int k)
    {
        int n = (int)Math.Min(logits.shape[0], prompt.Count - 1 - from);
        var result = new List<TokenLogprob>(Math.Max(n, 0));
        if (n <= 0) return result;
        var next = tensor(Enumerable.Range(from + 1, n).Select(p => (long)prompt[p]).ToArray(), device: logits.device);
        var lsm = logits.narrow(0, 0, n).log_softmax(-1);                                      // (n, V)
        var chosen = lsm.gather(1, next.unsqueeze(1)).squeeze(1).cpu().data<float>().ToArray(); // (n)
        float[] topValues = [];
        long[] topIds = [];
        if (k > 0)
        {
            var (values, indices) = lsm.topk(k, dim: 1);                                       // (n, k)
            topValues = values.cpu().data<float>().ToArray();
            topIds = indices.cpu().data<long>().ToArray();
        }
        for (int i = 0; i < n; i++)
        {
            var top = new (int, double)[k];
            for (int j = 0; j < k; j++) top[j] = ((int)topIds[i * k + j], topValues[i * k + j]);
            result.Add(new TokenLogprob(prompt[from + 1 + i], chosen[i], top));
        }
        return result;
    }

    /// <summary>
    /// One forward pass for every decoding sequence except those whose first token just came out of prefill. Each first takes
    /// the block its new position needs; when the pool is out of blocks the newest running sequence is preempted until it fits.
    /// </summary>
    void Decode(HashSet<Sequence> justEmitted)
    {
        var batch = new List<Sequence>();
        foreach (var s in _running.ToList())
        {
            if (s.Prefilling || justEmitted.Contains(s) || !_running.Contains(s)) continue;
            if (!MakeRoom(s)) continue;
            batch.Add(s);
        }
        batch.RemoveAll(s => !_running.Contains(s)); // preempted to make room for a later one
        if (batch.Count == 0) return;
        var model = _model!.Model;
        float[] rows;
        int vocab = model.Config.VocabSize;
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = batch.Select(s => s.Pending).ToArray();
            rows = TensorData.ToFloats(model.DecodePaged(batch.Select(s => s.Paged!).ToList(), ids)); // (B·V)
        }
        catch (Exception e)
        {
            foreach (var s in batch)
            {
                Fail(s, $"decode step failed: {e.Message}");
            }
            Volatile.Write(ref Metrics.Running, _running.Count);
            return;
        }
        for (int b = 0; b < batch.Count; b++)
            if (!Emit(batch[b], rows.AsSpan(b * vocab, vocab)))
                _running.Remove(batch[b]);
        Volatile.Write(ref Metrics.Running, _running.Count);
    }

    /// <summary>
    /// Takes the block for <paramref name="s"/>'s next position, preempting the newest running sequences (vLLM's recompute
    /// preemption) until the pool has one; false when <paramref name="s"/> itself was preempted or failed.
    /// </summary>
    bool MakeRoom(Sequence s)
    {
        while (!s.Paged!.Reserve(1))
        {
            var victim = _running[^1];
            if (victim == s && _running.Count == 1)
            {
                Fail(s, $"the sequence ({s.Paged.Length + 1} tokens) has outgrown the server's KV cache of {_pool!.CapacityTokens:N0} tokens; restart the server with more --kv-cache-memory");
                return false;
            }
            Preempt(victim);
            if (victim == s) return false;
        }
        return true;
    }

    void Preempt(Sequence s)
    {
        _running.Remove(s);
        s.Paged!.Release();
        s.Prefilling = false;
        s.Resumed = s.Output.Count > 0; // one preempted before its first token simply starts again
        s.PromptScores.Clear();
        // Recompute on readmission: the prompt and every token generated but the last, which is the next input.
        s.PrefillTarget.Clear();
        s.PrefillTarget.AddRange(s.Request.PromptIds);
        s.PrefillTarget.AddRange(s.Output.Take(s.Output.Count - 1));
        _waiting.Insert(0, s);
        Interlocked.Increment(ref Metrics.Waiting);
        Metrics.SequencePreempted();
    }

    void PublishCacheMetrics()
    {
        var pool = _pool!;
        Metrics.Kv = new KvCacheSnapshot(pool.UsedBlocks, pool.UsableBlocks, pool.BlockSize,
            _running.Sum(s => (long)s.Paged!.Length), _running.Count(s => s.Paged!.Blocks.Count > 0));
        Volatile.Write(ref Metrics.Running, _running.Count);
    }

    /// <summary>Chooses a sequence's next token from its logits row and reports it; false when the sequence finished (and was released).</summary>
    bool Emit(Sequence s, Span<float> row)
    {
        var r = s.Request;
        TokenLogprob? logprob = null;
        double[]? lsm = r.TopLogprobs is not null ? LogSoftmax(row) : null;
        s.Penalties.Apply(row);
        int token = s.Sampler.Next(row);
        s.Penalties.Record(token);
        if (lsm is not null) logprob = new TokenLogprob(token, lsm[token], Top(lsm, r.TopLogprobs!.Value));
        s.Output.Add(token);
        if (s.Output.Count == 1) Metrics.TimeToFirstToken(s.Clock.Elapsed);
        Metrics.TokensGenerated(1);
        bool stop = !r.IgnoreEos && r.StopIds.Contains(token);
        bool full = s.Output.Count >= r.MaxNewTokens;
        var finish = stop ? FinishReason.Stop : full ? FinishReason.Length : (FinishReason?)null;
        var e = new TokenGenerated(token, logprob, finish);
        if (finish is not null)
        {
            Finish(s, e);
            return false;
        }
        s.Writer.TryWrite(e);
        s.Pending = token;
        return true;
    }

    static double[] LogSoftmax(ReadOnlySpan<float> row)
    {
        double max = double.NegativeInfinity;
        foreach (var x in row) if (x > max) max = x;
        double sum = 0;
        foreach (var x in row) sum += Math.Exp(x - max);
        double log = max + Math.Log(sum);
        var result = new double[row.Length];
        for (int i = 0; i < row.Length; i++) result[i] = row[i] - log;
        return result;
    }

    static (int, double)[] Top(double[] lsm, int k)
    {
        if (k <= 0) return [];
        // Partial selection: k is small (≤ 20), the row can be 128k long.
        var best = new List<(int Id, double Lp)>(k + 1);
        for (int i = 0; i < lsm.Length; i++)
        {
            if (best.Count == k && lsm[i] <= best[^1].Lp) continue;
            int at = best.FindIndex(b => lsm[i] > b.Lp);
            best.Insert(at < 0 ? best.Count : at, (i, lsm[i]));
            if (best.Count > k) best.RemoveAt(k);
        }
        return [.. best];
    }

    /// <summary>Takes a running sequence out of the batch as failed, telling its client why.</summary>
    void Fail(Sequence s, string message)
    {
        _running.Remove(s);
        Metrics.SequenceFailed();
        Finish(s, new SequenceFailed(message));
    }

    /// <summary>Releases a sequence's blocks and closes its channel, after writing <paramref name="last"/> if any.</summary>
    void Finish(Sequence s, SequenceEvent? last)
    {
        if (last is not null) s.Writer.TryWrite(last);
        s.Writer.TryComplete();
        s.Paged?.Release();
        s.Paged = null;
        s.CancelSource.Dispose();
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Release();
        if (_thread.IsAlive) _thread.Join(TimeSpan.FromSeconds(30));
        State = EngineState.Stopped;
        Metrics.ModelLoaded = false;
        _model?.Dispose();
        _pool?.Dispose();
    }

    sealed class Sequence(long id, SequenceRequest request, ChannelWriter<SequenceEvent> writer, CancellationTokenSource cancel)
    {
        public long Id { get; } = id;
        public SequenceRequest Request { get; } = request;
        public ChannelWriter<SequenceEvent> Writer { get; } = writer;
        public CancellationTokenSource CancelSource { get; } = cancel;
        public CancellationToken Cancellation { get; } = cancel.Token;
        public TokenSampler Sampler { get; } = new(request.Sampling, request.PromptIds);
        public LogitPenalties Penalties { get; } = new(request);
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        /// <summary>Its blocks in the pool; null while waiting for the first time.</summary>
        public PagedSequence? Paged { get; set; }
        /// <summary>What prefill runs: the prompt, or after a preemption the prompt and the tokens generated before it.</summary>
        public List<int> PrefillTarget { get; } = [.. request.PromptIds];
        public bool Prefilling { get; set; }
        /// <summary>Preempted once at least: its prefill recomputes and emits nothing.</summary>
        public bool Resumed { get; set; }
        public List<TokenLogprob> PromptScores { get; } = [];
        public List<int> Output { get; } = [];
        public int Pending { get; set; }
    }
}
