using CptLab.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

public class MemoryTests
{
    [Fact]
    public void Live_tensor_count_stays_flat_over_200_forward_passes()
    {
        TorchRuntime.Initialise();
        using var model = TestModels.Random(TestModels.Tiny());
        var tokens = TestModels.Tokens(16, model.Config.VocabSize);
        using var input = tensor(tokens).unsqueeze(0);
        var stats = DisposeScopeManager.Statistics;

        void Pass()
        {
            using var _ = no_grad();
            using var logits = model.forward(input);
            using var cache = new KvCache(model.Config, 1, 20, model.Dtype);
            model.forward(input, cache).Dispose();
        }

        Pass(); // warm up
        long before = stats.ThreadTotalLiveCount;
        var counts = new List<long>();
        for (int i = 0; i < 200; i++)
        {
            Pass();
            counts.Add(stats.ThreadTotalLiveCount);
        }
        Assert.All(counts, c => Assert.Equal(before, c));
    }

    [Fact]
    public void The_count_does_detect_a_leak()
    {
        TorchRuntime.Initialise();
        var stats = DisposeScopeManager.Statistics;
        long before = stats.ThreadTotalLiveCount;
        var leaked = new List<Tensor>();
        for (int i = 0; i < 5; i++) leaked.Add(zeros(2) + 1); // the temporary zeros(2) and the sum both stay alive
        Assert.Equal(before + 10, stats.ThreadTotalLiveCount);
        foreach (var t in leaked) t.Dispose();
    }
}
