using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

public class TensorDataTests
{
    [Fact]
    public void Block_copies_equal_the_element_accessor_for_rows_views_and_transposes()
    {
        TorchRuntime.Initialise();
        using var scope = NewDisposeScope();
        var t = randn(5, 7, generator: new Generator(3));
        foreach (var (name, view) in new[] { ("whole", t), ("last row", t[-1]), ("middle rows", t.narrow(0, 1, 3)), ("transpose", t.t()), ("column", t[.., 2]) })
            Assert.True(view.data<float>().ToArray().SequenceEqual(TensorData.ToFloats(view)), name);
        Assert.Throws<ArgumentException>(() => TensorData.ToFloats(t.to(ScalarType.Float64)));
    }
}
