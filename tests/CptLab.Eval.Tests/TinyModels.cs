using CptLab.Data.Tokenization;
using CptLab.Model;
using CptLab.TestKit;
using static TorchSharp.torch;

namespace CptLab.Eval.Tests;

/// <summary>Small random models for the scoring tests: the real Llama-3 tokenizer's vocabulary with a debug-size body.</summary>
public static class TinyModels
{
    static readonly Lazy<TextTokenizer> _llama3 = new(() => TextTokenizer.Load(RepoPaths.Llama3TokenizerDir));
    public static TextTokenizer Llama3Tokenizer => _llama3.Value;

    public static LlamaForCausalLM Random(int vocab, long seed = 7, int context = 1024)
    {
        TorchRuntime.Initialise();
        var config = Flavors.Get("debug") with { VocabSize = vocab, MaxPositionEmbeddings = context };
        var model = RandomWeights.Fill(new LlamaForCausalLM(config, ScalarType.Float32), seed);
        model.eval();
        return model;
    }
}
