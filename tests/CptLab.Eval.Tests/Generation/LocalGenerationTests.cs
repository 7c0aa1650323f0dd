using CptLab.Eval.Backends;
using CptLab.Model;

namespace CptLab.Eval.Tests.Generation;

/// <summary>
/// The in-process backend's generate_until on a small random model: max_gen_toks is the model's own token count
/// (compared with CptLab.Model's generator run directly), the text is cut before the earliest stop string, and sampled
/// generation is reproducible from the request's seed and changes with it.
/// </summary>
public class LocalGenerationTests
{
    readonly LlamaForCausalLM _model = TinyModels.Random(TinyModels.Llama3Tokenizer.VocabSize, seed: 11);

    LocalModel Backend() => new(_model, TinyModels.Llama3Tokenizer, "tiny");

    const string Prompt = "Question: what is two plus two?\nAnswer:";

    [Fact]
    public void Greedy_text_is_max_gen_toks_tokens_and_is_cut_before_the_first_stop_string()
    {
        var tok = TinyModels.Llama3Tokenizer;
        using var lm = Backend();
        var ids = lm.Encode(Prompt);
        var direct = global::CptLab.Model.Generation.Generate(_model, new GenerationRequest(ids, 12, SamplingOptions.Greedy) { StopIds = tok.StopTokenIds.ToHashSet() })
            .Where(t => t.Finish != FinishReason.Stop).Select(t => t.Id).ToArray();
        var expected = tok.Decode(direct);
        var text = lm.GenerateUntil([new GenerateUntilRequest(Prompt, [], 12)]).Single();
        Assert.Equal(expected, text);
        Assert.Equal(12, direct.Length);          // a random model does not stop early here

        // A stop string taken from the middle of the text: the generation ends just before its first occurrence.
        var stop = text.Substring(text.Length / 2, 2);
        var cut = lm.GenerateUntil([new GenerateUntilRequest(Prompt, ["never there", stop], 12)]).Single();
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], cut);
        Assert.True(cut.Length < text.Length);
    }

    [Fact]
    public void Sampling_is_reproducible_from_the_seed_and_changes_with_it()
    {
        using var lm = Backend();
        GenerateUntilRequest Sampled(ulong seed) => new(Prompt, [], 10) { Sampling = new SamplingOptions { Temperature = 1.0, TopK = 50, Seed = seed } };
        var first = lm.GenerateUntil([Sampled(1), Sampled(2), Sampled(3), Sampled(1)]);
        Assert.Equal(first[0], first[3]);
        Assert.NotEqual(first[0], first[1]);
        Assert.NotEqual(first[1], first[2]);
        var greedy = lm.GenerateUntil([new GenerateUntilRequest(Prompt, [], 10)]).Single();
        Assert.DoesNotContain(greedy, first);
    }
}
