using CptLab.Model;
using CptLab.Training.PostTraining;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CptLab.Training.Tests.PostTraining;

/// <summary>Packing and accumulation change nothing but speed; the loss is exactly the mean over trained tokens.</summary>
public class PackingTests
{
    public PackingTests() => TorchRuntime.Initialise(1);

    /// <summary>The reference: each example alone through the plain causal forward, log_softmax taken here, at its trained tokens.</summary>
    static Tensor OneByOneSummedLoss(LlamaForCausalLM model, IReadOnlyList<TokenizedExample> examples)
    {
        Tensor total = zeros(1);
        foreach (var e in examples)
        {
            var ids = tensor(e.Ids.Select(x => (long)x).ToArray()).view(1, -1);
            var logp = model.forward(ids).log_softmax(-1)[0];                          // (T, V)
            for (int j = 0; j + 1 < e.Length; j++)
                if (e.Trained[j + 1]) total = total - logp[j, e.Ids[j + 1]];
        }
        return total.squeeze();
    }

    [Fact]
    public void Packed_rows_give_the_loss_and_gradients_of_the_examples_one_by_one()
    {
        using var model = PostFixtures.Model();
        var examples = PostFixtures.Examples(12, seed: 4);
        var rows = SequencePacker.Pack(examples.Select(e => e.Length).ToList(), 48);
        Assert.True(rows.Any(r => r.Length > 2), "the test needs rows holding several examples");
        Assert.Equal(Enumerable.Range(0, 12), rows.SelectMany(r => r).Order());
        Assert.All(rows, r => Assert.True(r.Sum(i => examples[i].Length) <= 48));
        long trained = examples.Sum(e => e.TrainedCount - (e.Trained[0] ? 1 : 0));

        var batch = PackedBatch.Build(examples, rows);
        Assert.True(batch.Packed);
        Assert.Equal(trained, batch.TrainedTokens);
        var packed = PostFixtures.Gradients(model, () => batch.SummedLoss(batch.Logits(model)) / trained);
        var single = PostFixtures.Gradients(model, () => OneByOneSummedLoss(model, examples) / trained);
        PostFixtures.AssertClose(single, packed, 1e-5);

        using var _ = no_grad();
        double packedLoss = (batch.SummedLoss(batch.Logits(model)) / trained).item<float>();
        double reference = (OneByOneSummedLoss(model, examples) / trained).item<float>();
        Assert.Equal(reference, packedLoss, 5);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Four_micro_batches_of_one_row_equal_one_of_four_and_the_logged_loss_is_the_trained_token_mean(bool packing)
    {
        var examples = PostFixtures.Examples(16, seed: 7);
        var rows = packing ? SequencePacker.Pack(examples.Select(e => e.Length).ToList(), 48) : SequencePacker.OnePerRow(16);
        (double Loss, Dictionary<string, Tensor> Grads, List<int[]> Rows) Step(int micro)
        {
            var config = Fixtures.Config(seqLen: 48, micro: micro, globalTokens: 4 * 48) with { ModelConfigPath = Fixtures.ModelConfig() };
            using var run = new RunState(config, ScalarType.Float32);
            run.InitialiseWeights(config);
            var objective = new SftObjective(examples, [], rows, config, null);
            var (loss, _) = run.ForwardBackward(objective, poison: false);
            var taken = objective.StepRows.ToList();
            return (loss, run.Gradients.ToDictionary(g => g.Name, g => g.Grad.clone().DetachFromDisposeScope()), taken);
        }
        var (loss1, grads1, taken) = Step(1);
        var (loss4, grads4, _) = Step(4);
        PostFixtures.AssertClose(grads4, grads1, 1e-5);
        Assert.Equal(loss4, loss1, 5);

        // The logged loss: the mean over the step's trained tokens, computed from each example alone.
        var config = Fixtures.Config(seqLen: 48, micro: 4, globalTokens: 4 * 48) with { ModelConfigPath = Fixtures.ModelConfig() };
        using var reference = new RunState(config, ScalarType.Float32);
        reference.InitialiseWeights(config);
        var stepExamples = taken.SelectMany(r => r).Select(i => examples[i]).ToList();
        using var _ = no_grad();
        double expected = OneByOneSummedLoss(reference.Master, stepExamples).item<float>() / stepExamples.Sum(e => e.TrainedCount);
        Assert.Equal(expected, loss4, 5);
    }

    [Fact]
    public void A_token_that_is_no_target_and_precedes_no_target_leaves_the_update_bitwise_unchanged()
    {
        using var model = PostFixtures.Model();
        var examples = PostFixtures.Examples(6, seed: 9);
        // Append one untrained token to every example: a mask that trained it (an off-by-one) would change the gradients.
        List<TokenizedExample> WithTail(int id) => [.. examples.Select(e => new TokenizedExample([.. e.Ids, id], [.. e.Trained, false]))];
        var rowsTail = SequencePacker.Pack(WithTail(0).Select(e => e.Length).ToList(), 56);
        Dictionary<string, Tensor> Grads(int id)
        {
            var batch = PackedBatch.Build(WithTail(id), rowsTail);
            return PostFixtures.Gradients(model, () => batch.SummedLoss(batch.Logits(model)));
        }
        var a = Grads(1);
        var b = Grads(40);
        foreach (var (name, g) in a)
            Assert.True(g.equal(b[name]).all().item<bool>(), $"{name} changed with the untrained token");
    }
}

public class SftLearningTests
{
    [Fact]
    public void Sft_on_a_few_examples_drives_their_assistant_token_loss_near_zero()
    {
        TorchRuntime.Initialise(1);
        var examples = PostFixtures.Examples(6, seed: 21);
        var rows = SequencePacker.Pack(examples.Select(e => e.Length).ToList(), 48);
        var config = Fixtures.Config(seqLen: 48, micro: 2, globalTokens: 2 * 48, budget: 150 * 2 * 48) with
        {
            Lr = 1e-2, WarmupTokens = 0, Schedule = ScheduleKind.Constant, WeightDecay = 0, EvalEverySteps = 1000, CheckpointEverySteps = 1000,
        };
        var dir = Fixtures.RunDir();
        var result = Trainer.Run(config, new SftObjective(examples, examples, rows, config, null), dir, resume: false, null, default);
        var held = result.Validation["sft"];
        Assert.Equal(examples.Sum(e => e.TrainedCount), held.Tokens);
        Assert.True(held.Loss < 0.05, $"assistant-token loss after 150 steps: {held.Loss:F4}");
    }
}
