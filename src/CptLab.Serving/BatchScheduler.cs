using System.Collections.Concurrent;
using System.Diagnostics;
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
    /// <summary>Most tokens one iteration feeds the model: one per running sequence plus the prompts admitted (vLLM's max_num_batched_tokens).</summary>
    public int MaxBatchedTokens { get; init; } = 2048;
    /// <summary>
    /// Most KV-cache positions allocated at once over the running batch (each sequence holds prompt + max
    /// tokens from admission to its end); 0 = no limit. A sequence larger than the whole budget runs alone.
    /// </summary>
    public long MaxCacheTokens { get; init; }
    /// <summary>Most sequences waiting for admission; one more is refused (HTTP 429).</summary>
    public int MaxWaiting { get; init; } = 256;
    /// <summary>LibTorch intra-op threads (0 = the cores free when the server starts).</summary>
    public int Threads { get; init; }

    public SchedulerOptions Validate()
    {
        if (MaxConcurrentSequences < 1) throw new CptLabException($"max concurrent sequences {MaxConcurrentSequences} must be ≥ 1");
        if (MaxBatchedTokens < MaxConcurrentSequences) throw new CptLabException($"max batched tokens {MaxBatchedTokens} must be ≥ max concurrent sequences {MaxConcurrentSequences} (each running sequence feeds one token per step)");
        if (MaxCacheTokens < 0) throw new CptLabException($"max cache tokens {MaxCacheTokens} must be ≥ 0 (0 = no limit)");
        if (MaxWaiting < 0) throw new CptLabException($"max waiting {MaxWaiting} must be ≥ 0");
        return this;
    }
}

public enum EngineState { Loading, Ready, Failed, Stopped }

/// <summary>
/// Continuous batching. One dedicated thread owns the model (LibTorch and its dispose scopes are per thread)
/// and loops: admit waiting sequences while the batch has room (max sequences, max batched tokens), prefill
/// each admitted prompt with its own batch-1 KV cache, then advance every running sequence by one token in a
/// single <see cref="LlamaForCausalLM.DecodeStep"/> over their caches. A sequence leaves the batch when it
/// finishes or is cancelled, and its cache is freed at once, so the next iteration can admit another.
/// Request handlers talk to the thread through a queue in and one channel per sequence out; nothing here
/// awaits, and no tensor outlives the iteration that made it except the caches.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    readonly Func<ServedModel> _load;
    readonly SchedulerOptions _options;
    readonly ConcurrentQueue<Sequence> _incoming = new();
    readonly SemaphoreSlim _wake = new(0);
    readonly Thread _thread;
    readonly List<Sequence> _running = [];
    readonly Queue<Sequence> _waiting = new();
    readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    volatile bool _stopping;
    long _nextId;
    long _cacheTokens; // KV positions allocated over the running batch (scheduler thread only)
    ServedModel? _model;

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
            while (_incoming.TryDequeue(out var s)) _waiting.Enqueue(s);
            DropCancelled();
            var admitted = Admit();
            Decode(admitted);
            if (admitted.Count > 0 || _running.Count > 0) Metrics.StepDone();
        }
        foreach (var s in _running.Concat(_waiting)) Finish(s, new SequenceFailed("the server is shutting down"));
        _running.Clear();
    }

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
        int n = _waiting.Count;
        for (int i = 0; i < n; i++)
        {
            var s = _waiting.Dequeue();
            if (!s.Cancellation.IsCancellationRequested) { _waiting.Enqueue(s); continue; }
            Interlocked.Decrement(ref Metrics.Waiting);
            Metrics.SequenceCancelled();
            Finish(s, null);
        }
    }

    /// <summary>Admits waiting sequences in arrival order while the batch has room, and prefills each.</summary>
    List<Sequence> Admit()
    {
        var admitted = new List<Sequence>();
        int budget = _options.MaxBatchedTokens - _running.Count; // each running sequence feeds one token this step
        while (_waiting.Count > 0 && _running.Count < _options.MaxConcurrentSequences)
        {
            var s = _waiting.Peek();
            // A prompt longer than the whole budget is admitted alone, so it cannot wait forever.
            if (s.Request.PromptIds.Count > budget && admitted.Count > 0) break;
            long cache = CacheCapacity(s.Request);
            if (_options.MaxCacheTokens > 0 && _cacheTokens + cache > _options.MaxCacheTokens && _running.Count > 0) break;
            _waiting.Dequeue();
            Interlocked.Decrement(ref Metrics.Waiting);
            budget -= s.Request.PromptIds.Count;
            try
            {
                if (Prefill(s)) { _running.Add(s); admitted.Add(s); }
            }
            catch (Exception e)
            {
                Metrics.SequenceFailed();
                Finish(s, new SequenceFailed($"prefill failed: {e.Message}"));
            }
        }
        Volatile.Write(ref Metrics.Running, _running.Count);
        return admitted;
    }

    /// <summary>Runs the prompt through the model into a fresh cache and emits the first token; false when the sequence is already done.</summary>
    bool Prefill(Sequence s)
    {
        var model = _model!.Model;
        var r = s.Request;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Metrics.PromptTokens(r.PromptIds.Count);
        s.Cache = new KvCache(model.Config, 1, CacheCapacity(r), model.Dtype, model.Body.EmbedTokens.device);
        Interlocked.Increment(ref Metrics.LiveCaches);
        _cacheTokens += s.Cache.Capacity;
        Volatile.Write(ref Metrics.CacheTokens, _cacheTokens);
        var ids = tensor(r.PromptIds.Select(t => (long)t).ToArray(), ScalarType.Int64, model.Body.EmbedTokens.device).unsqueeze(0); // (1, T)
        var logits = model.forward(ids, s.Cache);                                                                              // (1, T, V)
        if (r.PromptLogprobs is int k) s.Writer.TryWrite(new PromptScored(ScorePrompt(logits[0], ids[0], k)));
        if (r.MaxNewTokens == 0)
        {
            Finish(s, new SequenceFinished(FinishReason.Length));
            return false;
        }
        var row = logits[0, -1].cpu().data<float>().ToArray();                                                                 // (V)
        return Emit(s, row);
    }

    static int CacheCapacity(SequenceRequest r) => r.PromptIds.Count + Math.Max(r.MaxNewTokens, 1);

    /// <summary>logits (T, V), ids (T) → for t ≥ 1, log p(ids[t] | ids[..t]) and the top k alternatives.</summary>
    static List<TokenLogprob> ScorePrompt(Tensor logits, Tensor ids, int k)
    {
        long t = ids.shape[0];
        var result = new List<TokenLogprob>((int)t);
        if (t < 2) return result;
        var lsm = logits.narrow(0, 0, t - 1).log_softmax(-1);                  // (T-1, V)
        var chosen = lsm.gather(1, ids.narrow(0, 1, t - 1).unsqueeze(1)).squeeze(1).cpu().data<float>().ToArray(); // (T-1)
        float[] topValues = [];
        long[] topIds = [];
        if (k > 0)
        {
            var (values, indices) = lsm.topk(k, dim: 1);                       // (T-1, k)
            topValues = values.cpu().data<float>().ToArray();
            topIds = indices.cpu().data<long>().ToArray();
        }
        var idArray = ids.cpu().data<long>().ToArray();
        for (int i = 0; i < t - 1; i++)
        {
            var top = new (int, double)[k];
            for (int j = 0; j < k; j++) top[j] = ((int)topIds[i * k + j], topValues[i * k + j]);
            result.Add(new TokenLogprob((int)idArray[i + 1], chosen[i], top));
        }
        return result;
    }

    /// <summary>One forward pass for every running sequence except those just prefilled (their first token is already out).</summary>
    void Decode(List<Sequence> justAdmitted)
    {
        var batch = _running.Where(s => !justAdmitted.Contains(s) && !s.Cancellation.IsCancellationRequested).ToList();
        if (batch.Count == 0) return;
        var model = _model!.Model;
        float[] rows;
        int vocab = model.Config.VocabSize;
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = tensor(batch.Select(s => (long)s.Pending).ToArray(), ScalarType.Int64, model.Body.EmbedTokens.device).unsqueeze(1); // (B, 1)
            rows = model.DecodeStep(ids, batch.Select(s => s.Cache!).ToList()).cpu().data<float>().ToArray();                      // (B·V)
        }
        catch (Exception e)
        {
            foreach (var s in batch)
            {
                _running.Remove(s);
                Metrics.SequenceFailed();
                Finish(s, new SequenceFailed($"decode step failed: {e.Message}"));
            }
            Volatile.Write(ref Metrics.Running, _running.Count);
            return;
        }
        for (int b = 0; b < batch.Count; b++)
            if (!Emit(batch[b], rows.AsSpan(b * vocab, vocab)))
                _running.Remove(batch[b]);
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
        s.Generated++;
        if (s.Generated == 1) Metrics.TimeToFirstToken(s.Clock.Elapsed);
        Metrics.TokensGenerated(1);
        bool stop = !r.IgnoreEos && r.StopIds.Contains(token);
        bool full = s.Generated >= r.MaxNewTokens;
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

    /// <summary>Releases a sequence's cache and closes its channel, after writing <paramref name="last"/> if any.</summary>
    void Finish(Sequence s, SequenceEvent? last)
    {
        if (last is not null) s.Writer.TryWrite(last);
        s.Writer.TryComplete();
        if (s.Cache is not null)
        {
            _cacheTokens -= s.Cache.Capacity;
            Volatile.Write(ref Metrics.CacheTokens, _cacheTokens);
            s.Cache.Dispose();
            s.Cache = null;
            Interlocked.Decrement(ref Metrics.LiveCaches);
        }
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
        public KvCache? Cache { get; set; }
        public int Pending { get; set; }
        public int Generated { get; set; }
    }
}
