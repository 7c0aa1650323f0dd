using CptLab.Sweep.ScaleOut;
using CptLab.TestKit;
using CptLab.Training;

namespace CptLab.Sweep.Tests;

/// <summary>The train config → Megatron-LM mapping accounts for every key of the config file.</summary>
public class MegatronMappingTests
{
    [Fact]
    public void Every_train_config_key_has_exactly_one_row()
    {
        // Enumerated from the config's own key table: a new key without a mapping or an exclusion fails here.
        Assert.NotEmpty(TrainConfig.KeyPaths);
        foreach (var key in TrainConfig.KeyPaths)
            Assert.True(MegatronMapping.Rows.Count(r => r.Covers(key)) == 1, $"train config key '{key}' has {MegatronMapping.Rows.Count(r => r.Covers(key))} rows in MegatronMapping.Rows; add a mapping or a not-representable reason");
        // And no row names a key the config does not have (a renamed key would leave a stale row).
        foreach (var row in MegatronMapping.Rows)
            foreach (var k in row.Keys)
                Assert.True(TrainConfig.KeyPaths.Any(p => new MappingRow([k], "", "", null).Covers(p)), $"row key '{k}' is not a train config key");
        Assert.All(MegatronMapping.Rows.Where(r => !r.Representable), r => Assert.False(string.IsNullOrWhiteSpace(r.Transform)));
    }

    [Fact]
    public void Vocab_divisor_avoids_padding_the_converted_embedding()
    {
        // Megatron-LM pads to a multiple of divisor × TP; Llama-3's 128,256 = 2^8 × 501.
        Assert.Equal(128, MegatronMapping.VocabDivisor(128256, 1, () => new Exception()));
        Assert.Equal(128, MegatronMapping.VocabDivisor(128256, 2, () => new Exception()));
        Assert.Equal(32, MegatronMapping.VocabDivisor(128256, 8, () => new Exception()));
        Assert.Equal(0, 128256 % (32 * 8));
        Assert.NotEqual(0, 128256 % (64 * 8));
        Assert.Throws<InvalidOperationException>(() => MegatronMapping.VocabDivisor(128257, 8, () => new InvalidOperationException()));
    }

    [Fact]
    public void Docs_scale_out_holds_the_mapping_table_as_the_code_has_it()
    {
        var docs = File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", "scale-out.md")).ReplaceLineEndings("\n");
        var table = MegatronMapping.MarkdownTable();
        Assert.True(docs.Contains(table, StringComparison.Ordinal), "docs/scale-out.md's mapping table is stale; replace it with:\n" + table);
    }
}
