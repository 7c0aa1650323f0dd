using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

static class TestModels
{
    /// <summary>
    /// 2 layers, 4 query heads over 2 key/value heads, untied head, llama3 rope scaling chosen so that head_dim 8
    /// has frequencies in all three bands (kept: wavelengths 6.3 and 63; blended: 628; divided: 6283).
    /// </summary>
    public static LlamaConfig Tiny(bool tied = false) => new()
    {
        VocabSize = 97, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2,
        NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 8, MaxPositionEmbeddings = 64,
        RopeTheta = 10000.0, RmsNormEps = 1e-5, TieWordEmbeddings = tied,
        RopeScaling = new RopeScaling("llama3", Factor: 8.0, LowFreqFactor: 1.0, HighFreqFactor: 4.0, OriginalMaxPositionEmbeddings: 1024),
        BosTokenId = 1, EosTokenIds = [2], TorchDtype = "float32",
    };

    /// <summary>A model with weights large enough that logits are far from zero (std 0.3; norms around 1).</summary>
    public static LlamaForCausalLM Random(LlamaConfig config, long seed = 7, ScalarType dtype = ScalarType.Float32) =>
        TestKit.RandomWeights.Fill(new LlamaForCausalLM(config, dtype), seed);

    public static long[] Tokens(int count, int vocab, int seed = 3)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (long)rng.Next(vocab)).ToArray();
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "cptlab-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
