using System.Globalization;
using System.Text;

namespace CptLab.Serving;

/// <summary>
/// Counters and gauges for GET /metrics, in the Prometheus text format (version 0.0.4). Written by the
/// scheduler thread and the request handlers; every field is updated atomically, no lock on the hot path
/// except the TTFT histogram's.
/// </summary>
public sealed class ServerMetrics
{
    // Time-to-first-token buckets in seconds, as vLLM's (a CPU serves slower; the tail buckets catch it).
    static readonly double[] TtftBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    long _requests, _rejected, _failed, _cancelled, _preempted, _promptTokens, _generatedTokens, _steps;
    readonly long[] _ttftCounts = new long[TtftBuckets.Length + 1];
    double _ttftSum;
    long _ttftCount;
    readonly object _ttftGate = new();
    // Throughput over a sliding window: (time, tokens generated so far) samples, oldest first.
    readonly Queue<(DateTime Time, long Tokens)> _window = new();
    static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    public int Running;
    public int Waiting;
    KvCacheSnapshot _kv = new(0, 0, 0, 0, 0);

    /// <summary>The KV cache at the end of the last scheduler iteration, every field from the same moment.</summary>
    public KvCacheSnapshot Kv
    {
        get => Volatile.Read(ref _kv);
        set => Volatile.Write(ref _kv, value);
    }
    public bool ModelLoaded;

    public long RequestsTotal => Interlocked.Read(ref _requests);
    public long RejectedTotal => Interlocked.Read(ref _rejected);
    public long CancelledTotal => Interlocked.Read(ref _cancelled);
    public long GeneratedTokensTotal => Interlocked.Read(ref _generatedTokens);
    public long PreemptionsTotal => Interlocked.Read(ref _preempted);

    public void RequestAccepted() => Interlocked.Increment(ref _requests);
    public void RequestRejected() => Interlocked.Increment(ref _rejected);
    public void SequenceFailed() => Interlocked.Increment(ref _failed);
    public void SequenceCancelled() => Interlocked.Increment(ref _cancelled);
    public void SequencePreempted() => Interlocked.Increment(ref _preempted);
    public void PromptTokens(int n) => Interlocked.Add(ref _promptTokens, n);
    public void StepDone() => Interlocked.Increment(ref _steps);

    public void TokensGenerated(int n)
    {
        Interlocked.Add(ref _generatedTokens, n);
        lock (_window)
        {
            var now = DateTime.UtcNow;
            _window.Enqueue((now, Interlocked.Read(ref _generatedTokens)));
            while (_window.Count > 2 && now - _window.Peek().Time > Window) _window.Dequeue();
        }
    }

    public void TimeToFirstToken(TimeSpan t)
    {
        double s = t.TotalSeconds;
        lock (_ttftGate)
        {
            int i = 0;
            while (i < TtftBuckets.Length && s > TtftBuckets[i]) i++;
            _ttftCounts[i]++;
            _ttftSum += s;
            _ttftCount++;
        }
    }

    /// <summary>Generated tokens per second over the last ten seconds (0 when idle).</summary>
    public double TokensPerSecond()
    {
        lock (_window)
        {
            if (_window.Count < 2) return 0;
            var now = DateTime.UtcNow;
            var (t0, n0) = _window.Peek();
            var n1 = Interlocked.Read(ref _generatedTokens);
            double seconds = (now - t0).TotalSeconds;
            return seconds > 0 && now - t0 <= Window + Window ? (n1 - n0) / seconds : 0;
        }
    }

    public string ToPrometheus(string model)
    {
        var inv = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        var label = $"model=\"{model.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"";
        void Metric(string name, string type, string help, FormattableString value)
        {
            s.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            s.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            s.Append(name).Append('{').Append(label).Append("} ").Append(value.ToString(inv)).Append('\n');
        }
        Metric("cptlab_model_loaded", "gauge", "1 once the model is loaded and serving.", $"{(ModelLoaded ? 1 : 0)}");
        Metric("cptlab_requests_running", "gauge", "Sequences being generated (in the running batch).", $"{Volatile.Read(ref Running)}");
        Metric("cptlab_requests_waiting", "gauge", "Sequences queued for admission.", $"{Volatile.Read(ref Waiting)}");
        var kv = Kv;
        Metric("cptlab_kv_caches_live", "gauge", "Sequences holding KV-cache blocks.", $"{kv.Sequences}");
        Metric("cptlab_kv_cache_tokens", "gauge", "Positions cached over all sequences.", $"{kv.TokensHeld}");
        Metric("cptlab_kv_blocks_used", "gauge", "KV-cache blocks held by sequences.", $"{kv.BlocksUsed}");
        Metric("cptlab_kv_blocks_free", "gauge", "KV-cache blocks free.", $"{kv.BlocksTotal - kv.BlocksUsed}");
        Metric("cptlab_kv_block_size", "gauge", "Positions per KV-cache block.", $"{kv.BlockSize}");
        Metric("cptlab_requests_total", "counter", "Sequences accepted by the scheduler.", $"{RequestsTotal}");
        Metric("cptlab_requests_rejected_total", "counter", "Requests refused with 429 because the queue was full.", $"{RejectedTotal}");
        Metric("cptlab_requests_cancelled_total", "counter", "Sequences cancelled before they finished (client gone, stop string).", $"{CancelledTotal}");
        Metric("cptlab_preemptions_total", "counter", "Sequences preempted (blocks freed, recomputed later) because the KV cache was full.", $"{PreemptionsTotal}");
        Metric("cptlab_requests_failed_total", "counter", "Sequences that failed in the model.", $"{Interlocked.Read(ref _failed)}");
        Metric("cptlab_prompt_tokens_total", "counter", "Prompt tokens prefilled.", $"{Interlocked.Read(ref _promptTokens)}");
        Metric("cptlab_generation_tokens_total", "counter", "Tokens generated.", $"{GeneratedTokensTotal}");
        Metric("cptlab_scheduler_steps_total", "counter", "Scheduler iterations that ran the model.", $"{Interlocked.Read(ref _steps)}");
        Metric("cptlab_generation_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s.", $"{TokensPerSecond():F3}");

        lock (_ttftGate)
        {
            const string name = "cptlab_time_to_first_token_seconds";
            s.Append("# HELP ").Append(name).Append(" Time from submission to the first generated token.\n");
            s.Append("# TYPE ").Append(name).Append(" histogram\n");
            long cumulative = 0;
            for (int i = 0; i < TtftBuckets.Length; i++)
            {
                cumulative += _ttftCounts[i];
                s.Append(inv, $"{name}_bucket{{{label},le=\"{TtftBuckets[i].ToString(inv)}\"}} {cumulative}\n");
            }
            cumulative += _ttftCounts[^1];
            s.Append(inv, $"{name}_bucket{{{label},le=\"+Inf\"}} {cumulative}\n");
            s.Append(inv, $"{name}_sum{{{label}}} {_ttftSum.ToString("R", inv)}\n");
            s.Append(inv, $"{name}_count{{{label}}} {_ttftCount}\n");
        }
        return s.ToString();
    }
}

/// <summary>The KV-cache pool at one moment: blocks held and in the pool (the reserved block not counted), positions cached, sequences holding blocks.</summary>
public sealed record KvCacheSnapshot(int BlocksUsed, int BlocksTotal, int BlockSize, long TokensHeld, int Sequences);
