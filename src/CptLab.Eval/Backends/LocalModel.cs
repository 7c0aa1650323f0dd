using CptLab.Core;
using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.Model.Hardware;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Eval.Backends;

/// <summary>A tokenized log-likelihood request: context ids (with BOS) and continuation ids.</summary>
public sealed record TokenRequest(IReadOnlyList<int> Context, IReadOnlyList<int> Continuation);

/// <summary>
/// The in-process backend over a CptLab model, scoring as lm-eval's HFLM does. Tokenization is lm-eval's
/// <c>_encode_pair</c>: trailing whitespace of the context moves into the continuation, the continuation's tokens are
/// tok(context + continuation) minus tok(context), both with BOS as a Hugging Face Llama-3 tokenizer adds it. Requests
/// are sorted long-first and batched (right padding: under the causal mask a padded row's real positions see only
/// real tokens); each batch is one forward pass under no_grad to hidden states, and the LM head and a float32
/// log_softmax run only at the continuation positions, so no (B, T, V) tensor is ever made. Requests whose model
/// input is the same token row (one-token choices A/B/C/D after the same context) share that row: one pass scores
/// them all. Generation is greedy (or seeded sampling when the request asks) with the KV cache, one request at a
/// time, at most max_gen_toks tokens, cut before the first stop string.
/// Legend: B rows in a batch, T padded length, C hidden size, N scored positions in the batch, V vocabulary.
/// </summary>
public sealed class LocalModel : IEvalModel
{
    readonly LlamaForCausalLM _model;
    readonly ITextTokenizer _tokenizer;
    readonly bool _ownsModel;
    readonly HashSet<int> _specialIds;

    public LocalModel(LlamaForCausalLM model, ITextTokenizer tokenizer, string name, int batchSize = 8, bool ownsModel = false)
    {
        if (batchSize < 1) throw new CptLabException($"batch size {batchSize} must be at least 1");
        _model = model;
        _tokenizer = tokenizer;
        _ownsModel = ownsModel;
        _specialIds = tokenizer.SpecialTokens.Values.ToHashSet();
        Name = name;
        BatchSize = batchSize;
    }

    /// <summary>Loads a model folder: weights in the dtype asked for (auto: the faster on this machine) and its tokenizer.</summary>
    public static LocalModel Open(string dir, string? dtype = "auto", int batchSize = 8, Action<string>? warn = null, int maxLength = 0)
    {
        var asked = ComputePrecision.IsAuto(dtype) ? (ScalarType?)null
            : DtypeNames.Parse(dtype!) ?? throw new CptLabException($"dtype '{dtype}' is not one of auto, float32, bfloat16");
        var choice = ComputePrecision.ForInference(dir, asked, warn);
        var tokenizer = TextTokenizer.Load(dir);
        var model = HfCheckpoint.Load(dir, choice.Dtype);
        model.eval();
        return new LocalModel(model, tokenizer, Path.GetFullPath(dir), batchSize, ownsModel: true) { DtypeChoice = choice, MaxLength = maxLength };
    }

    public string Name { get; }
    public int BatchSize { get; }
    public PrecisionChoice? DtypeChoice { get; init; }
    public ScalarType Dtype => _model.Dtype;
    /// <summary>Share one forward row between requests with the same input (on by default; tests turn it off to compare).</summary>
    public bool ShareRows { get; init; } = true;
    /// <summary>Forward rows run so far (a shared row counts once): what the one-pass A/B/C/D path saves.</summary>
    public int RowsForwarded { get; private set; }
    /// <summary>Tokens of the rows forwarded for log-likelihoods (padding not counted): what the throughput benchmark divides by.</summary>
    public long TokensForwarded { get; private set; }
    readonly int _maxLength;

    /// <summary>The longest model input (lm-eval's max_length): the model's context unless set lower (<c>--max-length</c>; 0 = the model's).</summary>
    public int MaxLength
    {
        get => _maxLength == 0 ? _model.Config.MaxPositionEmbeddings : _maxLength;
        init => _maxLength = value >= 0 && value <= _model.Config.MaxPositionEmbeddings ? value
            : throw new CptLabException($"max length {value} must be between 1 and the model's context of {_model.Config.MaxPositionEmbeddings} tokens");
    }

    /// <summary>The token ids of a text with BOS first, as the model's Hugging Face tokenizer encodes by default.</summary>
    public List<int> Encode(string text) => PairEncoding.Encode(_tokenizer, text);

    /// <summary>lm-eval's _encode_pair (and, for an empty context, the BOS alone as the context).</summary>
    public TokenRequest EncodePair(string context, string continuation) => PairEncoding.EncodePair(_tokenizer, context, continuation);

    public IReadOnlyList<LoglikelihoodResult> Loglikelihood(IReadOnlyList<LoglikelihoodRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default) =>
        ScoreTokens(requests.Select(r => EncodePair(r.Context, r.Continuation)).ToArray(), progress, cancellation);

    /// <summary>
    /// lm-eval's HFLM.loglikelihood_rolling: each text tokenized without BOS, cut into <see cref="RollingWindows"/> of
    /// <see cref="MaxLength"/> with BOS (EOS for a tokenizer without one) as the prefix token, every window scored as a
    /// request (batched across texts), the windows' log-likelihoods summed per text. An empty text scores 0 over 0 tokens.
    /// </summary>
    public IReadOnlyList<LoglikelihoodResult> LoglikelihoodRolling(IReadOnlyList<string> texts, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default)
    {
        int prefix = _tokenizer.BosId ?? _tokenizer.EosId;
        var windows = new List<TokenRequest>();
        var owner = new List<int>();
        for (int i = 0; i < texts.Count; i++)
        {
            var ids = new List<int>();
            _tokenizer.Encode(texts[i], ids);
            foreach (var w in RollingWindows.Windows(ids, prefix, MaxLength)) { windows.Add(w); owner.Add(i); }
        }
        var scored = ScoreTokens(windows, progress, cancellation);
        var ll = new double[texts.Count];
        var tokens = new int[texts.Count];
        var greedy = Enumerable.Repeat(true, texts.Count).ToArray();
        for (int w = 0; w < windows.Count; w++)
        {
            ll[owner[w]] += scored[w].LogLikelihood;
            tokens[owner[w]] += scored[w].Tokens;
            greedy[owner[w]] &= scored[w].IsGreedy;
        }
        return Enumerable.Range(0, texts.Count).Select(i => new LoglikelihoodResult(ll[i], greedy[i], tokens[i])).ToArray();
    }

    /// <summary>Scores tokenized requests: batched, long-first, shared rows; results in request order.</summary>
    public IReadOnlyList<LoglikelihoodResult> ScoreTokens(IReadOnlyList<TokenRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default)
    {
        // The model input of a request is (context + continuation)[:-1], left-truncated to the context length;
        // its last |continuation| positions predict the continuation.
        var rows = new List<int[]>();
        var rowOf = new Dictionary<string, int>();
        var requestRow = new int[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            if (r.Continuation.Count == 0) throw new CptLabException("a continuation with no tokens cannot be scored");
            if (r.Continuation.Count > MaxLength) throw new CptLabException($"a continuation of {r.Continuation.Count} tokens is longer than the model's context ({MaxLength})");
            var full = r.Context.Concat(r.Continuation).ToArray();
            var input = full[Math.Max(0, full.Length - (MaxLength + 1))..^1];
            var key = ShareRows ? string.Join(',', input) : i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!rowOf.TryGetValue(key, out var row)) { rowOf[key] = row = rows.Count; rows.Add(input); }
            requestRow[i] = row;
        }
        var byRow = Enumerable.Range(0, requests.Count).GroupBy(i => requestRow[i]).ToDictionary(g => g.Key, g => g.ToArray());
        var order = Enumerable.Range(0, rows.Count).OrderByDescending(r => rows[r].Length).ThenBy(r => r).ToArray();
        var results = new LoglikelihoodResult[requests.Count];
        int done = 0;
        for (int start = 0; start < order.Length; start += BatchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var batch = order[start..Math.Min(order.Length, start + BatchSize)];
            ScoreBatch(batch, rows, byRow, requests, results);
            RowsForwarded += batch.Length;
            TokensForwarded += batch.Sum(b => (long)rows[b].Length);
            done += batch.Sum(b => byRow[b].Length);
            progress?.Report(new EvalProgress("loglikelihood", done, requests.Count));
        }
        return results;
    }

    void ScoreBatch(int[] batch, List<int[]> rows, Dictionary<int, int[]> byRow, IReadOnlyList<TokenRequest> requests, LoglikelihoodResult[] results)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var device = _model.Body.EmbedTokens.device;
        int t = rows[batch[0]].Length;
        var ids = new long[batch.Length * t];
        for (int b = 0; b < batch.Length; b++)
            for (int j = 0; j < rows[batch[b]].Length; j++) ids[b * t + j] = rows[batch[b]][j];
        var hidden = _model.Hidden(tensor(ids, [batch.Length, t], ScalarType.Int64, device));          // (B, T, C)

        // Every scored position of every request in the batch: row, position, target token.
        var rowIdx = new List<long>();
        var posIdx = new List<long>();
        var targets = new List<long>();
        var spans = new List<(int Request, int Start, int Count)>();
        for (int b = 0; b < batch.Length; b++)
        {
            int len = rows[batch[b]].Length;
            foreach (var q in byRow[batch[b]])
            {
                var cont = requests[q].Continuation;
                spans.Add((q, targets.Count, cont.Count));
                for (int k = 0; k < cont.Count; k++)
                {
                    rowIdx.Add(b);
                    posIdx.Add(len - cont.Count + k);
                    targets.Add(cont[k]);
                }
            }
        }
        // The head in chunks of positions: a rolling window scores every position, and (T, V) float32 logits of a
        // long window with Llama-3's vocabulary would be gigabytes.
        var picked = new double[targets.Count];
        var greedy = new bool[targets.Count];
        for (int c0 = 0; c0 < targets.Count; c0 += HeadChunk)
        {
            using var chunkScope = NewDisposeScope();
            int n = Math.Min(HeadChunk, targets.Count - c0);
            var h = hidden[tensor(rowIdx.GetRange(c0, n).ToArray(), ScalarType.Int64, device), tensor(posIdx.GetRange(c0, n).ToArray(), ScalarType.Int64, device)]; // (n, C)
            var logits = F.linear(h, _model.HeadWeight).to(ScalarType.Float32);                            // (n, V)
            var logp = F.log_softmax(logits, -1);                                                           // (n, V)
            var tgt = tensor(targets.GetRange(c0, n).ToArray(), ScalarType.Int64, device).unsqueeze(1);     // (n, 1)
            logp.gather(1, tgt).squeeze(1).to(ScalarType.Float64).cpu().data<double>().CopyTo(picked, c0); // (n)
            logp.argmax(1).eq(tgt.squeeze(1)).cpu().data<bool>().CopyTo(greedy, c0);                      // (n)
        }
        foreach (var (q, s, n) in spans)
        {
            double sum = 0;
            bool all = true;
            for (int k = s; k < s + n; k++) { sum += picked[k]; all &= greedy[k]; }
            results[q] = new LoglikelihoodResult(sum, all, n);
        }
    }

    const int HeadChunk = 1024;

    public IReadOnlyList<string> GenerateUntil(IReadOnlyList<GenerateUntilRequest> requests, IProgress<EvalProgress>? progress = null, CancellationToken cancellation = default)
    {
        var outputs = new string[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            outputs[i] = GenerateOne(requests[i], cancellation);
            progress?.Report(new EvalProgress("generate_until", i + 1, requests.Count));
        }
        return outputs;
    }

    string GenerateOne(GenerateUntilRequest r, CancellationToken cancellation)
    {
        int maxNew = Math.Min(r.MaxGenToks, MaxLength - 1);
        var prompt = Encode(r.Context);
        if (prompt.Count + maxNew > MaxLength) prompt = prompt.GetRange(prompt.Count - (MaxLength - maxNew), MaxLength - maxNew); // lm-eval truncates the context from the left
        var request = new GenerationRequest(prompt, maxNew, (r.Sampling ?? SamplingOptions.Greedy).Validate()) { StopIds = _tokenizer.StopTokenIds.ToHashSet() };
        var produced = new List<int>();
        string text = "";
        foreach (var tok in Generation.Generate(_model, request, cancellation))
        {
            if (tok.Finish == FinishReason.Stop) break;         // the end-of-text token itself is not text
            if (_specialIds.Contains(tok.Id)) continue;         // lm-eval's HFLM decodes with skip_special_tokens=True, as vLLM and cptlab serve do
            produced.Add(tok.Id);
            text = _tokenizer.Decode(produced.ToArray());
            if (Cut(text, r.Until) is { } cut) return cut;
        }
        return Cut(text, r.Until) ?? text;
    }

    /// <summary>The text before the earliest stop string, or null when none occurs.</summary>
    public static string? Cut(string text, IReadOnlyList<string> until)
    {
        int best = -1;
        foreach (var u in until)
        {
            if (u.Length == 0) continue;
            int at = text.IndexOf(u, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best)) best = at;
        }
        return best < 0 ? null : text[..best];
    }

    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
    }
}
