using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Training;

/// <summary>
/// Pre-training's objective: next-token cross-entropy over every position of packed sequences of
/// <see cref="TrainConfig.SeqLen"/> + 1 tokens, as Megatron-LM trains. Legend: B micro-batch sequences, T sequence length, V vocabulary.
/// </summary>
internal sealed class NextTokenObjective(ITrainingData data, TrainConfig config) : IStepObjective
{
    public int BeginStep() => config.AccumulationSteps;

    public Tensor MicroLoss(LlamaForCausalLM model, int micro)
    {
        int b = config.MicroBatchSize, t = config.SeqLen, vocab = model.Config.VocabSize;
        var batch = new long[b * (t + 1)];
        for (int i = 0; i < b; i++)
        {
            var seq = data.Next();
            if (seq.Length != t + 1) throw new CptLabException($"the data yielded a sequence of {seq.Length} tokens, expected {t + 1}");
            for (int j = 0; j <= t; j++)
            {
                int id = seq[j];
                if ((uint)id >= (uint)vocab) throw new CptLabException($"token id {id} is outside the model's vocabulary of {vocab}; the data was tokenized for a different model");
                batch[i * (t + 1) + j] = id;
            }
        }
        var ids = tensor(batch).view(b, t + 1);                                              // (B, T+1)
        var logits = model.forward(ids.narrow(1, 0, t));                                     // (B, T, V) float32
        // Sum over tokens divided by the global batch's token count: the micro-batches add up to the mean.
        return F.cross_entropy(logits.view(-1, vocab), ids.narrow(1, 1, t).reshape(-1), reduction: nn.Reduction.Sum) / (double)config.GlobalBatchTokens;
    }

    public StepStats EndStep() => new(config.GlobalBatchTokens);

    public string SaveState() => data.SaveState();

    public void RestoreState(string state) => data.RestoreState(state);

    public Dictionary<string, ValidationResult> Validate(LlamaForCausalLM model) => ModelEvaluation.Evaluate(model, data.Validation, config.MicroBatchSize);

    public string? TokenizerPath => data.TokenizerPath;
}
