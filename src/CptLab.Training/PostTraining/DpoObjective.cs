using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Training.PostTraining;

/// <summary>
/// Preference optimisation over pairs: each micro-batch holds <c>micro_batch_size / 2</c> pairs as adjacent rows
/// (chosen, rejected), padded to its longest. The step's loss is the mean over the global batch's pairs (plus, with an
/// NLL weight, the mean cross-entropy over its chosen completions' tokens), so accumulation changes nothing but memory.
/// Logged per step by TRL's names: rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
/// logps/rejected (and nll_loss where it is part of the loss).
/// </summary>
internal sealed class DpoObjective : IStepObjective
{
    readonly IReadOnlyList<PreferencePair> _train, _validation;
    readonly TokenizedExample[] _trainFlat;
    readonly TrainConfig _config;
    readonly DpoSettings _settings;
    readonly RowStream _pairs;
    readonly string _runDir;
    readonly Action<string>? _log;
    readonly int _pairsPerMicro;
    readonly List<(PackedBatch Batch, int[] Pairs)> _step = [];
    readonly Dictionary<string, double> _sums = [];
    ReferenceLogps? _reference;
    long _stepChosenTokens;

    public DpoObjective(IReadOnlyList<PreferencePair> train, IReadOnlyList<PreferencePair> validation, TrainConfig config, DpoSettings settings,
                        string runDir, string? tokenizerPath, Action<string>? log)
    {
        (_train, _validation, _config, _settings, _runDir, TokenizerPath, _log) = (train, validation, config, settings, runDir, tokenizerPath, log);
        _trainFlat = Flatten(train);
        _pairs = new RowStream(Enumerable.Range(0, train.Count).Select(i => new[] { i }).ToList(), config.Seed);
        _pairsPerMicro = config.MicroBatchSize / 2;
    }

    public string? TokenizerPath { get; }

    /// <summary>How many times this objective computed the reference log-probabilities (tests: never again on resume).</summary>
    public int ReferenceComputations { get; private set; }

    static TokenizedExample[] Flatten(IReadOnlyList<PreferencePair> pairs) => [.. pairs.SelectMany(p => new[] { p.Chosen, p.Rejected })];

    /// <summary>Rows (chosen, rejected) of the given pairs, as indices into the flattened examples.</summary>
    static List<int[]> PairRows(IEnumerable<int> pairs) => [.. pairs.SelectMany(k => new[] { new[] { 2 * k }, new[] { 2 * k + 1 } })];

    public void Prepare(LlamaForCausalLM compute, bool resumed)
    {
        if (_settings.ReferenceFree) return;
        var hash = ReferenceLogps.Hash(_train, _validation);
        if (ReferenceLogps.TryRead(_runDir) is { } saved)
        {
            if (saved.DataHash != hash || saved.Train.Length != _train.Count || saved.Validation.Length != _validation.Count)
                throw new CptLabException($"{Path.Combine(_runDir, ReferenceLogps.FileName)} was computed for other pairs than this run's data ({saved.Train.Length} + {saved.Validation.Length} pairs, data hash {saved.DataHash[..12]}…); the data changed since the run began: restore it, or start a new run");
            _reference = saved;
            _log?.Invoke($"reference log-probs of {_train.Count + _validation.Count:N0} pairs read from {ReferenceLogps.FileName} (not recomputed)");
            return;
        }
        if (resumed)
            throw new CptLabException($"{_runDir} has checkpoints but no {ReferenceLogps.FileName}: the reference (the starting model) is gone from memory and cannot be recomputed from trained weights; start a new run");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        _reference = new ReferenceLogps(hash, Score(compute, _train), Score(compute, _validation));
        _reference.Write(_runDir);
        ReferenceComputations++;
        _log?.Invoke($"reference log-probs of {_train.Count + _validation.Count:N0} pairs computed from the starting model in {sw.Elapsed.TotalSeconds:F1} s, kept in {ReferenceLogps.FileName}");
    }

    /// <summary>Summed completion log-probs and token counts of every pair under <paramref name="model"/>, in the micro-batches training uses.</summary>
    double[][] Score(LlamaForCausalLM model, IReadOnlyList<PreferencePair> pairs)
    {
        using var _ = no_grad();
        var flat = Flatten(pairs);
        var result = new double[pairs.Count][];
        for (int start = 0; start < pairs.Count; start += _pairsPerMicro)
        {
            using var scope = NewDisposeScope();
            var ks = Enumerable.Range(start, Math.Min(_pairsPerMicro, pairs.Count - start)).ToArray();
            var batch = PackedBatch.Build(flat, PairRows(ks));
            batch.CheckVocabulary(model.Config.VocabSize);
            var (sums, counts) = batch.SequenceLogps(batch.Logits(model));
            var values = sums.data<float>().ToArray();
            for (int i = 0; i < ks.Length; i++) result[ks[i]] = [values[2 * i], values[2 * i + 1], counts[2 * i], counts[2 * i + 1]];
        }
        return result;
    }

    public int BeginStep()
    {
        _step.Clear();
        _sums.Clear();
        for (int m = 0; m < _config.AccumulationSteps; m++)
        {
            var ks = Enumerable.Range(0, _pairsPerMicro).Select(_ => _pairs.Next()[0]).ToArray();
            _step.Add((PackedBatch.Build(_trainFlat, PairRows(ks)), ks));
        }
        _stepChosenTokens = _step.Sum(s => s.Pairs.Sum(k => (long)_train[k].Chosen.TrainedCount));
        return _step.Count;
    }

    public Tensor MicroLoss(LlamaForCausalLM model, int micro)
    {
        var (batch, ks) = _step[micro];
        batch.CheckVocabulary(model.Config.VocabSize);
        var (loss, parts) = PairLoss(model, batch, ks, _reference?.Train, _step.Sum(s => s.Pairs.Length), _stepChosenTokens);
        foreach (var (name, v) in parts) _sums[name] = _sums.GetValueOrDefault(name) + v;
        return loss;
    }

    /// <summary>
    /// The batch's share of the step's loss (pair losses summed over <paramref name="totalPairs"/>, the NLL term over
    /// <paramref name="totalChosenTokens"/>) and its metrics' sums over its pairs.
    /// </summary>
    (Tensor Loss, Dictionary<string, double> Sums) PairLoss(LlamaForCausalLM model, PackedBatch batch, int[] ks, double[][]? reference, long totalPairs, long totalChosenTokens)
    {
        var (sums, counts) = batch.SequenceLogps(batch.Logits(model));                 // (2P)
        var even = arange(0, 2 * ks.Length, 2);
        var odd = arange(1, 2 * ks.Length, 2);
        var policy = _settings.AveragesLogps ? sums / tensor(counts.Select(c => (float)Math.Max(1, c)).ToArray()) : sums;
        var pc = policy.index_select(0, even);                                          // (P)
        var pr = policy.index_select(0, odd);                                           // (P)
        Tensor? rc = null, rr = null;
        if (!_settings.ReferenceFree)
        {
            var r = reference ?? throw new InvalidOperationException("reference log-probs not prepared");
            float Ref(int k, int which) => (float)(_settings.AveragesLogps ? r[k][which] / Math.Max(1, r[k][2 + which]) : r[k][which]);
            rc = tensor(ks.Select(k => Ref(k, 0)).ToArray());
            rr = tensor(ks.Select(k => Ref(k, 1)).ToArray());
        }
        var (losses, chosenRewards, rejectedRewards) = DpoLoss.Compute(_settings, pc, pr, rc, rr);
        var loss = losses.sum() / (double)totalPairs;
        var metrics = new Dictionary<string, double>();
        if (_settings.NllWeight > 0)
        {
            var nll = -sums.index_select(0, even).sum() / (double)Math.Max(1, totalChosenTokens);
            loss = loss + _settings.NllWeight * nll;
            metrics["nll_loss"] = nll.item<float>() * totalPairs;                       // summed like the per-pair metrics, divided by the pairs at the end
        }
        metrics["rewards/chosen"] = chosenRewards.sum().item<float>();
        metrics["rewards/rejected"] = rejectedRewards.sum().item<float>();
        metrics["rewards/accuracies"] = chosenRewards.gt(rejectedRewards).sum().item<long>();
        metrics["rewards/margins"] = (chosenRewards - rejectedRewards).sum().item<float>();
        metrics["logps/chosen"] = pc.detach().sum().item<float>();
        metrics["logps/rejected"] = pr.detach().sum().item<float>();
        return (loss, metrics);
    }

    public StepStats EndStep()
    {
        double pairs = _step.Sum(s => s.Pairs.Length);
        return new StepStats(_step.Sum(s => s.Batch.RealTokens), _sums.ToDictionary(kv => kv.Key, kv => kv.Value / pairs));
    }

    public string SaveState() => _pairs.SaveState();

    public void RestoreState(string state) => _pairs.RestoreState(state);

    public Dictionary<string, ValidationResult> Validate(LlamaForCausalLM model)
    {
        if (_validation.Count == 0) return [];
        using var _ = no_grad();
        var flat = Flatten(_validation);
        long chosenTokens = _validation.Sum(p => (long)p.Chosen.TrainedCount), tokens = 0;
        double loss = 0;
        var sums = new Dictionary<string, double>();
        for (int start = 0; start < _validation.Count; start += _pairsPerMicro)
        {
            using var scope = NewDisposeScope();
            var ks = Enumerable.Range(start, Math.Min(_pairsPerMicro, _validation.Count - start)).ToArray();
            var batch = PackedBatch.Build(flat, PairRows(ks));
            batch.CheckVocabulary(model.Config.VocabSize);
            var (l, parts) = PairLoss(model, batch, ks, _reference?.Validation, _validation.Count, chosenTokens);
            loss += l.item<float>();
            tokens += batch.RealTokens;
            foreach (var (name, v) in parts) sums[name] = sums.GetValueOrDefault(name) + v;
        }
        return new() { ["dpo"] = new ValidationResult(loss, double.NaN, tokens) { Metrics = sums.ToDictionary(kv => kv.Key, kv => kv.Value / _validation.Count) } };
    }
}
