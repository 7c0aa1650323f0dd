using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Core.Tests;

/// <summary>The one token-count parser: exact decimal scaling, whole numbers only, 0 allowed (budgets check it).</summary>
public class TokenAmountTests
{
    [Theory]
    [InlineData("250000", 250_000L)]
    [InlineData("250_000", 250_000L)]
    [InlineData(" 250k ", 250_000L)]
    [InlineData("20M", 20_000_000L)]
    [InlineData("1.5K", 1_500L)]
    [InlineData("1.1K", 1_100L)]          // 1.1 × 1e3 is 1100.0000000000002 in double: decimal keeps it exact
    [InlineData("0.3M", 300_000L)]
    [InlineData("1.5B", 1_500_000_000L)]
    [InlineData("1.5G", 1_500_000_000L)]
    [InlineData("2T", 2_000_000_000_000L)]
    [InlineData("5e9", 5_000_000_000L)]
    [InlineData("0", 0L)]
    [InlineData("0K", 0L)]
    public void Counts_parse_exactly(string text, long expected) => Assert.Equal(expected, TokenAmount.Parse(text));

    [Theory]
    [InlineData("1.2345K", "1234.5 tokens is not a whole number")]
    [InlineData("0.5", "0.5 tokens is not a whole number")]
    [InlineData("2X", "unknown suffix 'X'")]
    [InlineData("-5", "cannot be negative")]
    [InlineData("", "not a number")]
    [InlineData("many", "unknown suffix 'y'")]
    [InlineData("1e30", "too large")]
    [InlineData("10000000T", "too large")]
    [InlineData("∞", "not a number")]
    public void Bad_counts_say_what_is_wrong(string text, string says)
    {
        var e = Assert.Throws<CptLabException>(() => TokenAmount.Parse(text));
        Assert.Contains($"'{text}'", e.Message);
        Assert.Contains(says, e.Message);
    }

    [Fact]
    public void A_budget_must_be_more_than_zero_and_names_its_option()
    {
        Assert.Equal(100_000_000_000L, TokenAmount.ParsePositive("100B", "--tokens"));
        var e = Assert.Throws<CptLabException>(() => TokenAmount.ParsePositive("0", "--tokens"));
        Assert.Contains("--tokens '0'", e.Message);
        Assert.Contains("more than 0", e.Message);
    }

    [Theory]
    [InlineData(1_000_000L, "1M")]
    [InlineData(1_500L, "1.5K")]
    [InlineData(999L, "999")]
    [InlineData(2_500_000_000L, "2.5B")]
    public void Format_reads_back(long n, string text)
    {
        Assert.Equal(text, TokenAmount.Format(n));
        Assert.Equal(n, TokenAmount.Parse(text));
    }

    [Fact]
    public void Config_keys_take_numbers_or_suffixed_text_and_errors_name_the_key()
    {
        var root = (JsonObject)JsonNode.Parse("""{"a": 1024, "b": "20M", "c": {"d": -1}, "e": 1.5, "f": "1.5"}""")!;
        var r = new ConfigReader(root, "spec.yaml");
        Assert.Equal(1024, r.Tokens("a"));
        Assert.Equal(20_000_000, r.Tokens("b"));
        Assert.Null(r.Tokens("missing"));
        var negative = Assert.Throws<ConfigException>(() => r.Section("c").Tokens("d"));
        Assert.Equal("c.d", negative.Key);
        Assert.Equal("e", Assert.Throws<ConfigException>(() => r.Tokens("e")).Key);
        var text = Assert.Throws<ConfigException>(() => r.Tokens("f"));
        Assert.Contains("spec.yaml", text.Message);
        Assert.Contains("not a whole number", text.Message);
    }
}

public class JsonPathTests
{
    [Fact]
    public void Find_follows_dotted_paths_and_first_difference_names_the_key()
    {
        var a = JsonNode.Parse("""{"optimizer": {"lr": 0.003, "beta1": 0.9}, "seed": 1}""");
        var b = JsonNode.Parse("""{"optimizer": {"lr": 0.01, "beta1": 0.9}, "seed": 1}""");
        Assert.Equal(0.003, JsonPath.Find(a, "optimizer.lr")!.GetValue<double>());
        Assert.Null(JsonPath.Find(a, "optimizer.lr.x"));
        Assert.Null(JsonPath.Find(a, "schedule.kind"));
        Assert.Equal("optimizer.lr", JsonPath.FirstDifference(a, b));
        Assert.Null(JsonPath.FirstDifference(a, a!.DeepClone()));
        var c = JsonNode.Parse("""{"optimizer": {"lr": 0.003, "beta1": 0.9}, "seed": 1, "threads": 2}""");
        Assert.Equal("threads", JsonPath.FirstDifference(a, c));
        Assert.Equal("absent", JsonPath.Show(JsonPath.Find(a, "threads")));
    }
}
