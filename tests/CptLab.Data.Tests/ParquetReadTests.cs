using CptLab.Data.Sources;

namespace CptLab.Data.Tests;

/// <summary>Broken Parquet files are drops with a reason; the reader's catch is no wider than Parquet's failures.</summary>
public class ParquetReadTests
{
    public sealed class Row { public string? text { get; set; } }

    static SourceSpec Source(string file) => new() { Name = "p", Tag = "zh", Files = [file] };

    [Fact]
    public async Task A_file_that_is_not_parquet_and_a_truncated_one_are_unreadable_drops()
    {
        using var dir = new TempDir();
        var good = dir.File("good.parquet");
        await Parquet.Serialization.ParquetSerializer.SerializeAsync(Enumerable.Range(0, 50).Select(i => new Row { text = Corpus.Chinese(i) }), good);
        Assert.Equal(50, DocumentReader.Read(good, Source(good)).Count(d => d.Error is null));

        var garbage = dir.File("garbage.parquet");
        File.WriteAllText(garbage, "this is a CSV file, not Parquet\n1,2,3\n");
        var cut = dir.File("cut.parquet");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        // Header and footer intact, the data pages overwritten: the file opens, its row group does not decode.
        var damaged = dir.File("damaged.parquet");
        var broken = (byte[])bytes.Clone();
        for (int i = 8; i < broken.Length / 2; i++) broken[i] = 0xAB;
        File.WriteAllBytes(damaged, broken);
        var rows = DocumentReader.Read(damaged, Source(damaged)).ToList();
        Assert.NotEmpty(rows);
        Assert.All(rows, r => Assert.Equal(DropReason.UnreadableFile, r.Error));

        foreach (var file in new[] { garbage, cut })
        {
            var docs = DocumentReader.Read(file, Source(file)).ToList();
            var d = Assert.Single(docs);
            Assert.Equal(DropReason.UnreadableFile, d.Error);
            Assert.StartsWith("not a readable Parquet file: ", d.Detail);
        }
    }
}
