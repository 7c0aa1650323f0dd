using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

public class CheckpointTests
{
    static Dictionary<string, byte[]> Bytes(LlamaForCausalLM model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.bytes.ToArray());

    [Theory]
    [InlineData(ScalarType.Float32, false)]
    [InlineData(ScalarType.Float32, true)]
    [InlineData(ScalarType.BFloat16, false)]
    [InlineData(ScalarType.BFloat16, true)]
    [InlineData(ScalarType.Float16, false)]
    public void Save_then_load_is_bit_exact(ScalarType dtype, bool sharded)
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        using var model = TestModels.Random(TestModels.Tiny(), dtype: dtype);
        HfCheckpoint.Save(model, dir, maxShardBytes: sharded ? 20_000 : long.MaxValue);

        Assert.Equal(sharded, File.Exists(Path.Combine(dir, HfCheckpoint.IndexFile)));
        Assert.Equal(!sharded, File.Exists(Path.Combine(dir, HfCheckpoint.SingleFile)));
        if (sharded) Assert.True(Directory.GetFiles(dir, "model-*-of-*.safetensors").Length > 2);

        using var loaded = HfCheckpoint.Load(dir);
        Assert.Equal(dtype, loaded.Dtype);
        Assert.Equal(model.Config with { TorchDtype = DtypeNames.HfName(dtype) }, loaded.Config with { EosTokenIds = model.Config.EosTokenIds });
        var expected = Bytes(model);
        var actual = Bytes(loaded);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, bytes) in expected) Assert.True(bytes.AsSpan().SequenceEqual(actual[name]), $"tensor {name} differs");
    }

    [Fact]
    public void Bf16_checkpoint_loads_into_an_fp32_model_by_widening()
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        using var model = TestModels.Random(TestModels.Tiny(), dtype: ScalarType.BFloat16);
        HfCheckpoint.Save(model, dir);
        using var wide = HfCheckpoint.Load(dir, ScalarType.Float32);
        foreach (var ((name, a), (_, b)) in model.named_parameters().Zip(wide.named_parameters()))
            Assert.True(a.to(ScalarType.Float32).equal(b).all().item<bool>(), name);
    }

    [Fact]
    public void Saved_file_has_the_safetensors_layout()
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        using var model = TestModels.Random(TestModels.Tiny());
        HfCheckpoint.Save(model, dir);
        var bytes = File.ReadAllBytes(Path.Combine(dir, HfCheckpoint.SingleFile));
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + n) % 8);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n))!.AsObject();
        Assert.Equal("pt", header["__metadata__"]!["format"]!.GetValue<string>());
        var q = header["model.layers.0.self_attn.q_proj.weight"]!;
        Assert.Equal("F32", q["dtype"]!.GetValue<string>());
        Assert.Equal([32L, 32L], q["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
        // Tensors tile the data section exactly.
        long total = header.Where(kv => kv.Key != "__metadata__").Sum(kv => kv.Value!["data_offsets"]![1]!.GetValue<long>() - kv.Value!["data_offsets"]![0]!.GetValue<long>());
        Assert.Equal(bytes.Length - 8 - n, total);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, HfCheckpoint.ConfigFile)))!;
        Assert.Equal("LlamaForCausalLM", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal("llama3", config["rope_scaling"]!["rope_type"]!.GetValue<string>());
    }

    // ---- corrupt checkpoints: each is refused with its own message naming the file and tensor ----

    static string SavedCheckpoint(out LlamaForCausalLM model)
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        model = TestModels.Random(TestModels.Tiny());
        HfCheckpoint.Save(model, dir);
        return dir;
    }

    static void Rewrite(string dir, LlamaForCausalLM model, Func<List<(string Name, Tensor Tensor)>, List<(string Name, Tensor Tensor)>> edit)
    {
        var tensors = edit(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList());
        SafetensorsWriter.Write(Path.Combine(dir, HfCheckpoint.SingleFile), tensors, ScalarType.Float32);
    }

    [Fact]
    public void Missing_tensor_is_named()
    {
        var dir = SavedCheckpoint(out var model);
        using var _ = model;
        Rewrite(dir, model, ts => ts.Where(t => t.Name != "model.layers.1.mlp.up_proj.weight").ToList());
        var e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("lacks 1 tensor", e.Message);
        Assert.Contains("'model.layers.1.mlp.up_proj.weight'", e.Message);
    }

    [Fact]
    public void Unexpected_tensor_is_named()
    {
        var dir = SavedCheckpoint(out var model);
        using var _ = model;
        using var extra = zeros(3);
        Rewrite(dir, model, ts => [.. ts, ("model.layers.2.mlp.up_proj.weight", extra)]);
        var e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("does not have", e.Message);
        Assert.Contains("'model.layers.2.mlp.up_proj.weight'", e.Message);
        Assert.Contains(HfCheckpoint.SingleFile, e.Message);
    }

    [Fact]
    public void Wrong_shape_is_named()
    {
        var dir = SavedCheckpoint(out var model);
        using var _ = model;
        using var wrong = zeros(32, 31);
        Rewrite(dir, model, ts => ts.Select(t => t.Name == "model.layers.0.self_attn.q_proj.weight" ? (t.Name, wrong) : t).ToList());
        var e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("'model.layers.0.self_attn.q_proj.weight' has shape [32, 31], the model expects [32, 32]", e.Message);
    }

    [Fact]
    public void Non_float_dtype_is_named()
    {
        var dir = SavedCheckpoint(out var model);
        using var _ = model;
        // Re-label one tensor's bytes as I32 (same size as F32): a well-formed file with a wrong dtype.
        var path = Path.Combine(dir, HfCheckpoint.SingleFile);
        var bytes = File.ReadAllBytes(path);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, n))!.AsObject();
        header["model.norm.weight"]!["dtype"] = "I32";
        WriteWithHeader(path, header, bytes.AsSpan(8 + n).ToArray());
        var e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("'model.norm.weight' has dtype I32", e.Message);
    }

    [Fact]
    public void Truncated_file_is_refused_before_reading()
    {
        var dir = SavedCheckpoint(out var model);
        using var _ = model;
        var path = Path.Combine(dir, HfCheckpoint.SingleFile);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^100]);
        var e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(path, e.Message);
        File.WriteAllBytes(path, bytes[..5]);
        e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("shorter than the 8-byte header length", e.Message);
    }

    [Fact]
    public void Malformed_header_is_refused()
    {
        var dir = SavedCheckpoint(out var model);
        using var _ = model;
        var path = Path.Combine(dir, HfCheckpoint.SingleFile);
        var bytes = File.ReadAllBytes(path);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal((byte)'{', bytes[8]);
        bytes[8] = (byte)'x'; // no longer a JSON object
        File.WriteAllBytes(path, bytes);
        var e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("malformed safetensors header", e.Message);

        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1UL << 40); // absurd header length
        File.WriteAllBytes(path, bytes);
        e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains("header length", e.Message);
    }

    [Fact]
    public void Sharded_index_that_points_at_a_missing_shard_is_refused()
    {
        TorchRuntime.Initialise();
        var dir = TestModels.TempDir();
        using var model = TestModels.Random(TestModels.Tiny());
        HfCheckpoint.Save(model, dir, maxShardBytes: 20_000);
        var shard = Directory.GetFiles(dir, "model-*-of-*.safetensors").Order().Last();
        File.Delete(shard);
        var e = Assert.ThrowsAny<CptLabException>(() => HfCheckpoint.Load(dir));
        Assert.Contains($"shard '{Path.GetFileName(shard)}'", e.Message);
    }

    [Fact]
    public void Config_errors_name_the_key()
    {
        var dir = SavedCheckpoint(out var model);
        using var _ = model;
        var path = Path.Combine(dir, HfCheckpoint.ConfigFile);
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        config["num_key_value_heads"] = 3;
        File.WriteAllText(path, config.ToJsonString());
        var e = Assert.Throws<ConfigException>(() => HfCheckpoint.Load(dir));
        Assert.Equal("num_key_value_heads", e.Key);
        Assert.Contains(path, e.Message);
    }

    static void WriteWithHeader(string path, JsonObject header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var fs = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)json.Length);
        fs.Write(len);
        fs.Write(json);
        fs.Write(data);
    }
}
