using CptLab.Model;
using CptLab.Model.Hardware;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Training;

/// <summary>
/// Validation loss of a saved model without training it: what a sweep needs for the base model's loss per
/// validation set (forgetting is measured against it). The loop is the trainer's own validation — same
/// batching, same float32 logits, same sums — so a model saved by a run scores here what the run logged.
/// </summary>
public static class ModelEvaluation
{
    /// <param name="modelDir">A Hugging Face checkpoint folder (config.json + safetensors).</param>
    /// <param name="microBatch">Sequences per forward pass (the runs' batch.micro_batch_size, to match their numbers).</param>
    /// <param name="dtype">Compute dtype, "auto", "float32" or "bfloat16", as model.dtype of a training config. To compare with a
    /// run's logged numbers, give the dtype the run computed in (its config's resolved.dtype).</param>
    public static IReadOnlyDictionary<string, ValidationResult> Evaluate(string modelDir, IReadOnlyList<ValidationSet> sets, int microBatch,
        string dtype = ComputePrecision.Auto, int threads = 0)
    {
        if (microBatch <= 0) throw new ArgumentOutOfRangeException(nameof(microBatch), microBatch, "must be positive");
        TorchRuntime.Initialise(CpuLoad.ChooseThreads(threads).Threads);
        var scalar = ComputePrecision.IsAuto(dtype)
            ? ComputePrecision.ForInference(modelDir, null).Dtype
            : DtypeNames.Parse(dtype) ?? throw new Core.CptLabException($"dtype '{dtype}' is not auto, float32 or bfloat16");
        using var model = HfCheckpoint.Load(modelDir, scalar);
        return Evaluate(model, sets, microBatch, modelDir);
    }

    /// <summary>
    /// Loss (nats per target token) and bits per byte of <paramref name="model"/> on each set, under no_grad, in
    /// micro-batches of <paramref name="microBatch"/> sequences with float32 logits. The trainer's validation
    /// calls this too, so a run's logged numbers and a later evaluation of its saved model agree.
    /// </summary>
    public static Dictionary<string, ValidationResult> Evaluate(LlamaForCausalLM model, IReadOnlyList<ValidationSet> sets, int microBatch, string? modelName = null)
    {
        using var _ = no_grad();
        int vocab = model.Config.VocabSize;
        var results = new Dictionary<string, ValidationResult>();
        foreach (var set in sets)
        {
            double nll = 0;
            long tokens = 0;
            for (int start = 0; start < set.Sequences.Count; start += microBatch)
            {
                using var scope = NewDisposeScope();
                var chunk = set.Sequences.Skip(start).Take(microBatch).ToList();
                int t = chunk[0].Length - 1;
                foreach (var id in chunk.SelectMany(s => s))
                    if ((uint)id >= (uint)vocab)
                        throw new Core.CptLabException($"validation set '{set.Name}': token id {id} is outside {modelName ?? "the model"}'s vocabulary of {vocab}; the data was tokenized for a different model");
                var ids = tensor(chunk.SelectMany(s => s.Select(x => (long)x)).ToArray()).view(chunk.Count, t + 1); // (B, T+1)
                var logits = model.forward(ids.narrow(1, 0, t));                                                       // (B, T, V) float32
                nll += F.cross_entropy(logits.view(-1, vocab), ids.narrow(1, 1, t).reshape(-1), reduction: nn.Reduction.Sum).item<float>();
                tokens += (long)chunk.Count * t;
            }
            if (tokens == 0) continue;
            results[set.Name] = new ValidationResult(nll / tokens, set.TargetBytes > 0 ? nll / Math.Log(2) / set.TargetBytes : double.NaN, tokens);
        }
        return results;
    }
}