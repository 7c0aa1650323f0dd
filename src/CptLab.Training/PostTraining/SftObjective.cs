using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Training.PostTraining;

/// <summary>
/// Supervised fine-tuning: cross-entropy on the trained tokens (assistant turns by default) of chat examples, packed or
/// padded into rows. The loss of a step is the mean over all trained tokens of its global batch — each micro-batch's
/// summed loss divided by the global batch's trained-token count — so the split into micro-batches (4×1 or 1×4) and
/// packing change nothing but speed.
/// </summary>
internal sealed class SftObjective : IStepObjective
{
    readonly IReadOnlyList<TokenizedExample> _train;
    readonly IReadOnlyList<TokenizedExample> _validation;
    readonly RowStream _rows;
    readonly TrainConfig _config;
    readonly int _rowsPerStep;
    readonly List<PackedBatch> _step = [];
    readonly List<int[]> _stepRows = [];
    long _stepTrained;

    public SftObjective(IReadOnlyList<TokenizedExample> train, IReadOnlyList<TokenizedExample> validation, IReadOnlyList<int[]> rows,
                        TrainConfig config, string? tokenizerPath)
    {
        (_train, _validation, _config, TokenizerPath) = (train, validation, config, tokenizerPath);
        _rows = new RowStream(rows, config.Seed);
        _rowsPerStep = (int)(config.GlobalBatchTokens / config.SeqLen);
    }

    public string? TokenizerPath { get; }

    /// <summary>The rows of the current step, in order (for tests and diagnostics).</summary>
    internal IReadOnlyList<int[]> StepRows => _stepRows;

    public int BeginStep()
    {
        _step.Clear();
        _stepRows.Clear();
        for (int m = 0; m < _config.AccumulationSteps; m++)
        {
            var rows = new List<int[]>(_config.MicroBatchSize);
            for (int i = 0; i < _config.MicroBatchSize; i++) rows.Add(_rows.Next());
            _stepRows.AddRange(rows);
            _step.Add(PackedBatch.Build(_train, rows));
        }
        _stepTrained = _step.Sum(b => b.TrainedTokens);
        return _step.Count;
    }

    public Tensor MicroLoss(LlamaForCausalLM model, int micro)
    {
        var batch = _step[micro];
        if (micro == 0) foreach (var b in _step) b.CheckVocabulary(model.Config.VocabSize);
        return batch.SummedLoss(batch.Logits(model)) / (double)Math.Max(1, _stepTrained);
    }

    public StepStats EndStep()
    {
        long real = _step.Sum(b => b.RealTokens);
        double capacity = (double)_rowsPerStep * _config.SeqLen;
        return new StepStats(real, new Dictionary<string, double>
        {
            ["trained_tokens"] = _stepTrained,
            ["packing_efficiency"] = real / capacity,
            ["trained_share"] = _stepTrained / capacity,
        });
    }

    public string SaveState() => _rows.SaveState();

    public void RestoreState(string state) => _rows.RestoreState(state);

    /// <summary>Loss per trained token of the held-out examples, one example per row, <c>batch.micro_batch_size</c> rows per pass.</summary>
    public Dictionary<string, ValidationResult> Validate(LlamaForCausalLM model)
    {
        if (_validation.Count == 0) return [];
        using var _ = no_grad();
        double nll = 0;
        long tokens = 0;
        for (int start = 0; start < _validation.Count; start += _config.MicroBatchSize)
        {
            using var scope = NewDisposeScope();
            var rows = Enumerable.Range(start, Math.Min(_config.MicroBatchSize, _validation.Count - start)).Select(i => new[] { i }).ToList();
            var batch = PackedBatch.Build(_validation, rows);
            batch.CheckVocabulary(model.Config.VocabSize);
            nll += batch.SummedLoss(batch.Logits(model)).item<float>();
            tokens += batch.TrainedTokens;
        }
        return new() { ["sft"] = new ValidationResult(nll / tokens, double.NaN, tokens) };
    }
}
