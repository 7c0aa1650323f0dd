using CptLab.Core;
using CptLab.Data.Shards;

namespace CptLab.Data.Tests;

public class IndexedDatasetTests
{
    static byte[] U64(ulong v) => BitConverter.GetBytes(v);
    static byte[] I64(long v) => BitConverter.GetBytes(v);
    static byte[] I32(int v) => BitConverter.GetBytes(v);

    /// <summary>The .idx spelled out field by field from Megatron's layout, independently of the writer.</summary>
    static byte[] ExpectedIdx(byte dtype, int[] lengths, int itemSize)
    {
        var b = new List<byte>();
        b.AddRange("MMIDIDX"u8.ToArray()); b.Add(0); b.Add(0);
        b.AddRange(U64(1));
        b.Add(dtype);
        b.AddRange(U64((ulong)lengths.Length));
        b.AddRange(U64((ulong)lengths.Length + 1));
        foreach (var n in lengths) b.AddRange(I32(n));
        long offset = 0;
        foreach (var n in lengths) { b.AddRange(I64(offset)); offset += n * itemSize; }
        for (var d = 0; d <= lengths.Length; d++) b.AddRange(I64(d));
        return [.. b];
    }

    [Fact]
    public void Uint16_shard_matches_hand_built_bytes()
    {
        using var dir = new TempDir();
        var prefix = dir.File("en.train");
        using (var w = new IndexedDatasetWriter(prefix, vocabSize: 1000))
        {
            w.Add([1, 2, 3]);
            w.Add([]);
            w.Add([7, 300]);
            w.Finish();
        }
        Assert.Equal(ExpectedIdx(8, [3, 0, 2], 2), File.ReadAllBytes(prefix + ".idx"));
        Assert.Equal(new byte[] { 1, 0, 2, 0, 3, 0, 7, 0, 0x2C, 0x01 }, File.ReadAllBytes(prefix + ".bin"));

        using var r = new IndexedDataset(prefix);
        Assert.Equal(3, r.Count);
        Assert.Equal(3, r.DocumentCount);
        Assert.Equal(5, r.TokenCount);
        Assert.Equal([7, 300], r.Get(2));
        Assert.Empty(r.Get(1));
        var two = new int[2];
        r.Read(0, 1, two);
        Assert.Equal([2, 3], two);
    }

    [Fact]
    public void Int32_shard_for_a_llama3_vocabulary()
    {
        using var dir = new TempDir();
        var prefix = dir.File("zh.train");
        using (var w = new IndexedDatasetWriter(prefix, vocabSize: 128_256))
        {
            w.Add([128000, 70000, 128001]);
            w.Add([5]);
            w.Finish();
        }
        Assert.Equal(ExpectedIdx(4, [3, 1], 4), File.ReadAllBytes(prefix + ".idx"));
        var bin = new List<byte>();
        foreach (var t in new[] { 128000, 70000, 128001, 5 }) bin.AddRange(I32(t));
        Assert.Equal(bin.ToArray(), File.ReadAllBytes(prefix + ".bin"));
        using var r = new IndexedDataset(prefix);
        Assert.Equal([128000, 70000, 128001], r.Get(0));
        Assert.Equal(IndexedFormat.DTypeInt32, r.DType);
    }

    [Fact]
    public void Damaged_files_are_reported_not_misread()
    {
        using var dir = new TempDir();
        var prefix = dir.File("x");
        using (var w = new IndexedDatasetWriter(prefix, 1000)) { w.Add([1, 2]); w.Finish(); }
        var bin = File.ReadAllBytes(prefix + ".bin");
        File.WriteAllBytes(prefix + ".bin", bin[..^2]);
        Assert.Contains("x.bin", Assert.Throws<CorruptFileException>(() => new IndexedDataset(prefix)).Message);
        File.WriteAllBytes(prefix + ".bin", bin);
        var idx = File.ReadAllBytes(prefix + ".idx");
        File.WriteAllBytes(prefix + ".idx", idx[..^8]);
        Assert.Contains("truncated", Assert.Throws<CorruptFileException>(() => new IndexedDataset(prefix)).Message);
        idx[0] = (byte)'X';
        File.WriteAllBytes(prefix + ".idx", idx);
        Assert.Contains("magic", Assert.Throws<CorruptFileException>(() => new IndexedDataset(prefix)).Message);
        Assert.Throws<CptLabException>(() => new IndexedDataset(dir.File("missing")));
    }

    [Fact]
    public void An_abandoned_writer_leaves_nothing_behind()
    {
        using var dir = new TempDir();
        using (var w = new IndexedDatasetWriter(dir.File("y"), 1000)) w.Add([1]);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
