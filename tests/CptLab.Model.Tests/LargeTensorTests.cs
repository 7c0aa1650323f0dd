using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

/// <summary>Tensors past 2 GiB (Llama-3-70B's embedding in float32 is 4.2 GB) go through safetensors whole.</summary>
public class LargeTensorTests
{
    [Fact]
    public void A_tensor_over_2_GiB_is_written_and_read_back_exactly()
    {
        TorchRuntime.Initialise();
        long n = (1L << 29) + (1L << 20) + 3;   // 2.15 GB of float32: past int.MaxValue bytes, not a multiple of the piece size
        var path = Path.Combine(Path.GetTempPath(), $"cptlab-large-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var big = arange(n, dtype: ScalarType.Int32).remainder(65_521).to(ScalarType.Float32).view(1, n))
                SafetensorsWriter.Write(path, [("embed", big)], ScalarType.Float32);
            Assert.InRange(new FileInfo(path).Length - n * 4, 8, 8 + 256); // header + data

            using var reader = new SafetensorsReader(path);
            Assert.Equal([1, n], reader.Entries["embed"].Shape);
            using var back = empty([1, n], ScalarType.Float32);
            reader.ReadInto("embed", back);
            // Spot checks at the start, across the first 2 GiB boundary and at the very end, then the whole tensor.
            foreach (var i in new[] { 0L, 1L, (1L << 29) - 1, 1L << 29, (1L << 29) + 1, n - 1 })
                Assert.Equal((float)(i % 65_521), back[0, i].item<float>());
            using var expected = arange(n, dtype: ScalarType.Int32).remainder(65_521).to(ScalarType.Float32).view(1, n);
            Assert.True(back.equal(expected).all().item<bool>(), "the tensor read back differs");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
