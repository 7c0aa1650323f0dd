using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

public class GenerationTests
{
    [Fact]
    public void Greedy_generation_equals_argmax_of_full_forward_passes()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        int[] prompt = [5, 17, 3];
        var generated = Generation.Generate(model, new GenerationRequest(prompt, 10, SamplingOptions.Greedy)).Select(t => t.Id).ToList();

        // Without a cache: re-run the whole sequence each step and take the argmax of the last position.
        var seq = prompt.Select(t => (long)t).ToList();
        using var _ = no_grad();
        for (int i = 0; i < 10; i++)
        {
            using var scope = NewDisposeScope();
            var last = model.forward(tensor(seq.ToArray()).unsqueeze(0))[0, -1];
            seq.Add(last.argmax().item<long>());
        }
        Assert.Equal(seq.Skip(prompt.Length).Select(t => (int)t), generated);
    }

    [Fact]
    public void Stops_at_a_stop_token_and_at_the_length_limit()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var all = Generation.Generate(model, new GenerationRequest([5, 17, 3], 8, SamplingOptions.Greedy)).ToList();
        Assert.Equal(8, all.Count);
        Assert.Equal(FinishReason.Length, all[^1].Finish);
        Assert.All(all[..^1], t => Assert.Null(t.Finish));

        int stop = all[3].Id;
        int firstStop = all.FindIndex(t => t.Id == stop);
        var stopped = Generation.Generate(model, new GenerationRequest([5, 17, 3], 8, SamplingOptions.Greedy) { StopIds = new HashSet<int> { stop } }).ToList();
        Assert.Equal(firstStop + 1, stopped.Count);
        Assert.Equal(FinishReason.Stop, stopped[^1].Finish);
    }

    [Fact]
    public void Seeded_sampling_repeats_and_streams_the_same_tokens_async()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var request = new GenerationRequest([1, 2], 12, new SamplingOptions { Temperature = 0.9, TopK = 20, TopP = 0.95, MinP = 0.01, RepetitionPenalty = 1.1, Seed = 9 });
        var a = Generation.Generate(model, request).Select(t => t.Id).ToList();
        var b = Generation.Generate(model, request).Select(t => t.Id).ToList();
        Assert.Equal(a, b);
        var c = Generation.GenerateAsync(model, request).ToBlockingEnumerable().Select(t => t.Id).ToList();
        Assert.Equal(a, c);
    }

    [Fact]
    public void Bad_requests_are_refused_clearly()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        Assert.Contains("outside the vocabulary", Assert.Throws<CptLabException>(() => Generation.Generate(model, new GenerationRequest([500], 4, SamplingOptions.Greedy)).ToList()).Message);
        Assert.Contains("exceeds the context", Assert.Throws<CptLabException>(() => Generation.Generate(model, new GenerationRequest([1], 64, SamplingOptions.Greedy)).ToList()).Message);
        Assert.Contains("prompt is empty", Assert.Throws<CptLabException>(() => Generation.Generate(model, new GenerationRequest([], 4, SamplingOptions.Greedy)).ToList()).Message);
    }
}
