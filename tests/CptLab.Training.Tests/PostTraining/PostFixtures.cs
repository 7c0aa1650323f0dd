using CptLab.Model;
using CptLab.Training.PostTraining;
using static TorchSharp.torch;

namespace CptLab.Training.Tests.PostTraining;

static class PostFixtures
{
    /// <summary>
    /// Examples of 6–24 tokens over the tiny model's 64 ids: a "prompt" of random tokens, then a "response" following
    /// next = (5·prev + 3) mod 64 (learnable), the response trained.
    /// </summary>
    public static List<TokenizedExample> Examples(int count, int seed, int minLength = 6, int maxLength = 24)
    {
        var rng = new Random(seed);
        var list = new List<TokenizedExample>();
        for (int n = 0; n < count; n++)
        {
            int length = rng.Next(minLength, maxLength + 1), prompt = rng.Next(2, length - 2);
            var ids = new int[length];
            var trained = new bool[length];
            for (int i = 0; i < length; i++)
            {
                ids[i] = i < prompt ? rng.Next(64) : (ids[i - 1] * 5 + 3) % 64;
                trained[i] = i >= prompt;
            }
            list.Add(new TokenizedExample(ids, trained));
        }
        return list;
    }

    public static LlamaForCausalLM Model(long seed = 3)
    {
        var m = new LlamaForCausalLM(Fixtures.Tiny, ScalarType.Float32);
        m.InitWeights(seed);
        return m;
    }

    /// <summary>The gradient of <paramref name="loss"/> wrt every parameter, then cleared from the model.</summary>
    public static Dictionary<string, Tensor> Gradients(LlamaForCausalLM model, Func<Tensor> loss)
    {
        model.zero_grad();
        using (var scope = NewDisposeScope())
        using (enable_grad())
            loss().backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().DetachFromDisposeScope());
        model.zero_grad();
        return grads;
    }

    public static void AssertClose(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, double tolerance)
    {
        foreach (var (name, g) in expected)
        {
            double diff = (actual[name] - g).abs().max().item<float>();
            double scale = g.abs().max().item<float>();
            Assert.True(diff <= tolerance * scale + 1e-9, $"{name}: max diff {diff:E2} of {scale:E2}");
        }
    }
}
