using CptLab.Core;
using CptLab.Model;
using CptLab.Training.PostTraining;
using static TorchSharp.torch;

namespace CptLab.Training.Tests.PostTraining;

public class DpoTests
{
    public DpoTests() => TorchRuntime.Initialise(1);

    /// <summary>Pairs over the tiny model's ids: a random prompt, chosen following next = (5·prev + 3) mod 64, rejected random.</summary>
    static List<PreferencePair> Pairs(int count, int seed)
    {
        var rng = new Random(seed);
        var pairs = new List<PreferencePair>();
        for (int n = 0; n < count; n++)
        {
            int prompt = rng.Next(3, 8), completion = rng.Next(4, 10);
            var p = Enumerable.Range(0, prompt).Select(_ => rng.Next(64)).ToArray();
            var chosen = new List<int>(p);
            for (int i = 0; i < completion; i++) chosen.Add((chosen[^1] * 5 + 3) % 64);
            var rejected = p.Concat(Enumerable.Range(0, completion).Select(_ => rng.Next(64))).ToArray();
            bool[] Mask(int length) => [.. Enumerable.Range(0, length).Select(i => i >= prompt)];
            pairs.Add(new PreferencePair(new TokenizedExample([.. chosen], Mask(chosen.Count)), new TokenizedExample(rejected, Mask(rejected.Length))));
        }
        return pairs;
    }

    static TrainConfig Config(long budgetSteps = 12, double lr = 3e-3) =>
        Fixtures.Config(seqLen: 32, micro: 4, globalTokens: 8 * 32, budget: budgetSteps * 8 * 32) with { Lr = lr, WarmupTokens = 0, Schedule = ScheduleKind.Constant };

    static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    [Fact]
    public void Every_loss_equals_its_formula()
    {
        double[] pc = [-12.5, -3.0, -40.2], pr = [-14.0, -2.5, -39.0], rc = [-13.0, -3.2, -41.0], rr = [-13.5, -2.0, -40.5];
        Tensor T(double[] v) => tensor(v.Select(x => (float)x).ToArray());
        const double beta = 0.2, eps = 0.1, gamma = 0.7;
        for (int i = 0; i < pc.Length; i++)
        {
            double h = (pc[i] - pr[i]) - (rc[i] - rr[i]);
            var expected = new Dictionary<DpoLossType, double>
            {
                [DpoLossType.Sigmoid] = -(1 - eps) * LogSigmoid(beta * h) - eps * LogSigmoid(-beta * h),
                [DpoLossType.Robust] = (-(1 - eps) * LogSigmoid(beta * h) + eps * LogSigmoid(-beta * h)) / (1 - 2 * eps),
                [DpoLossType.Hinge] = Math.Max(0, 1 - beta * h),
                [DpoLossType.Ipo] = Math.Pow(h - 1 / (2 * beta), 2),
            };
            double hs = pc[i] - pr[i] - gamma / beta;
            expected[DpoLossType.Simpo] = -(1 - eps) * LogSigmoid(beta * hs) - eps * LogSigmoid(-beta * hs);
            // ORPO on average log-probs (here the same numbers, scaled into (−∞, 0)): log odds(p) = p − log(1 − e^p).
            double odds = (pc[i] / 20 - Math.Log(1 - Math.Exp(pc[i] / 20))) - (pr[i] / 20 - Math.Log(1 - Math.Exp(pr[i] / 20)));
            expected[DpoLossType.Orpo] = -beta * LogSigmoid(odds);
            foreach (var (type, value) in expected)
            {
                var s = new DpoSettings(type, beta, type == DpoLossType.Hinge || type == DpoLossType.Ipo ? 0 : eps, gamma);
                double scale = type == DpoLossType.Orpo ? 20 : 1;
                var (losses, chosen, rejected) = DpoLoss.Compute(s, T([pc[i] / scale]), T([pr[i] / scale]), T([rc[i]]), T([rr[i]]));
                Assert.Equal(value, losses.item<float>(), 4);
                double expectChosen = s.ReferenceFree ? beta * pc[i] / scale : beta * (pc[i] - rc[i]);
                Assert.Equal(expectChosen, chosen.item<float>(), 4);
                double expectRejected = s.ReferenceFree ? beta * pr[i] / scale : beta * (pr[i] - rr[i]);
                Assert.Equal(expectRejected, rejected.item<float>(), 4);
            }
        }
    }

    [Fact]
    public void At_step_zero_the_policy_is_the_reference_sigmoid_loss_is_ln2_and_rewards_are_zero()
    {
        var dir = Fixtures.RunDir();
        var config = Config(budgetSteps: 1);
        var objective = new DpoObjective(Pairs(16, 1), Pairs(4, 2), config, new DpoSettings(), dir, null, null);
        TrainProgress? first = null;
        Trainer.Run(config, objective, dir, resume: false, new TrainerHooks { Progress = new SyncProgress<TrainProgress>(p => { first ??= p; }) }, default);
        Assert.Equal(Math.Log(2), first!.Loss, 6);
        Assert.Equal(0, first.Metrics!["rewards/margins"], 6);
        Assert.Equal(0, first.Metrics["rewards/chosen"], 6);
        Assert.Equal(0, first.Metrics["rewards/accuracies"]);
        Assert.True(first.Metrics["logps/chosen"] < 0);
        Assert.Equal(1, objective.ReferenceComputations);
    }

    [Theory]
    [InlineData(DpoLossType.Sigmoid, 0.0)]
    [InlineData(DpoLossType.Ipo, 0.0)]
    [InlineData(DpoLossType.Orpo, 0.0)]
    [InlineData(DpoLossType.Sigmoid, 0.5)]
    public void The_gradient_matches_finite_differences(DpoLossType type, double rpoAlpha)
    {
        var dir = Fixtures.RunDir();
        var config = Config();
        using var reference = PostFixtures.Model(seed: 8); // a reference other than the policy, so the loss is not at its symmetric point
        using var model = PostFixtures.Model(seed: 3);
        var objective = new DpoObjective(Pairs(8, 5), [], config, new DpoSettings(type, Beta: 0.5, RpoAlpha: rpoAlpha), dir, null, null);
        objective.Prepare(reference, resumed: false);
        var state = objective.SaveState();
        double Loss()
        {
            using var scope = NewDisposeScope();
            objective.RestoreState(state);
            int micros = objective.BeginStep();
            double sum = 0;
            for (int m = 0; m < micros; m++) sum += objective.MicroLoss(model, m).item<float>();
            return sum;
        }
        var grads = PostFixtures.Gradients(model, () =>
        {
            objective.RestoreState(state);
            int micros = objective.BeginStep();
            Tensor total = objective.MicroLoss(model, 0);
            for (int m = 1; m < micros; m++) total = total + objective.MicroLoss(model, m);
            return total;
        });
        var rng = new Random(1);
        foreach (var name in new[] { "model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight" })
        {
            var p = model.named_parameters().Single(x => x.name == name).parameter;
            var flatGrad = grads[name].flatten();
            // The entry with the largest gradient: finite differences in float32 resolve it best.
            long at = flatGrad.abs().argmax().item<long>();
            double analytic = flatGrad[at].item<float>();
            const double h = 1e-2;
            double Shifted(double by)
            {
                using (no_grad()) p.view(-1)[at] = p.view(-1)[at] + by;
                var l = Loss();
                using (no_grad()) p.view(-1)[at] = p.view(-1)[at] - by;
                return l;
            }
            double numeric = (Shifted(h) - Shifted(-h)) / (2 * h);
            Assert.True(Math.Abs(numeric - analytic) <= 0.03 * Math.Abs(analytic) + 1e-4, $"{name}[{at}]: finite differences {numeric:E4}, autograd {analytic:E4}");
        }
        _ = rng;
    }

    [Fact]
    public void A_tiny_model_learns_the_preferences_and_its_margin_grows()
    {
        var dir = Fixtures.RunDir();
        var pairs = Pairs(16, 3);
        var config = Config(budgetSteps: 40, lr: 1e-2) with { EvalEverySteps = 20 };
        var objective = new DpoObjective(pairs, pairs, config, new DpoSettings(Beta: 0.5), dir, null, null);
        var log = new List<TrainProgress>();
        var result = Trainer.Run(config, objective, dir, resume: false, new TrainerHooks { Progress = new SyncProgress<TrainProgress>(log.Add) }, default);
        var val = result.Validation["dpo"].Metrics!;
        Assert.True(val["rewards/accuracies"] >= 0.95, $"accuracy on the training pairs {val["rewards/accuracies"]:F3}");
        Assert.True(val["rewards/margins"] > log[0].Metrics!["rewards/margins"] + 1, $"margin {log[0].Metrics!["rewards/margins"]:F3} → {val["rewards/margins"]:F3}");
        Assert.True(log[^1].Loss < 0.3, $"final loss {log[^1].Loss:F3}");
    }

    [Fact]
    public void A_run_stopped_and_resumed_ends_bitwise_equal_and_reuses_the_reference()
    {
        var pairs = Pairs(16, 4);
        var config = Config(budgetSteps: 12) with { CheckpointEverySteps = 4 };
        var straight = Fixtures.RunDir();
        Trainer.Run(config, new DpoObjective(pairs, [], config, new DpoSettings(), straight, null, null), straight, false, null, default);

        var interrupted = Fixtures.RunDir();
        Trainer.Run(config, new DpoObjective(pairs, [], config, new DpoSettings(), interrupted, null, null), interrupted, false, new TrainerHooks { StopAfter = s => s == 6 }, default);
        var lines = new List<string>();
        var resumed = new DpoObjective(pairs, [], config, new DpoSettings(), interrupted, null, lines.Add);
        Trainer.Run(config, resumed, interrupted, true, new TrainerHooks { Log = lines.Add }, default);
        Assert.Equal(0, resumed.ReferenceComputations);
        Assert.Contains(lines, l => l.Contains("not recomputed"));
        Assert.Equal(Fixtures.FinalWeights(straight), Fixtures.FinalWeights(interrupted));
    }
}
