using CptLab.Core;

namespace CptLab.Core.Tests;

public class AtomicFileTests
{
    static string TempDir() => Directory.CreateTempSubdirectory("cptlab-core-").FullName;

    [Fact]
    public void Write_replaces_the_file_and_leaves_no_temporary()
    {
        var dir = TempDir();
        var path = Path.Combine(dir, "x.json");
        AtomicFile.WriteAllText(path, "one");
        AtomicFile.WriteAllText(path, "two");
        Assert.Equal("two", File.ReadAllText(path));
        Assert.Equal(["x.json"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void A_failing_write_keeps_the_old_file()
    {
        var dir = TempDir();
        var path = Path.Combine(dir, "x.bin");
        AtomicFile.WriteAllBytes(path, [1, 2, 3]);
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[1000]);
            throw new InvalidOperationException("disk on fire");
        }));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir));
    }
}

public class JsonTests
{
    [Fact]
    public void Malformed_json_names_file_and_line()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("cptlab-core-").FullName, "bad.json");
        File.WriteAllText(path, "{\n  \"a\": 1,\n  \"b\": ]\n}");
        var e = Assert.Throws<CorruptFileException>(() => Json.ParseFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void Missing_file_is_a_user_error()
    {
        var e = Assert.Throws<CptLabException>(() => Json.ParseFile("/nonexistent/config.json"));
        Assert.Contains("file not found", e.Message);
    }
}

public class ConfigReaderTests
{
    enum Shape { Linear, OneMinusSqrt }

    static ConfigReader Read(string json) => new((System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(json)!, "spec.yaml");

    [Fact]
    public void Reads_typed_values_lists_and_enums()
    {
        var r = Read("""{"lr": "3e-4", "n": 4, "xs": [1, 2.5], "names": "en", "s": {"shape": "one_minus_sqrt"}}""");
        Assert.Equal(3e-4, r.Double("lr"));
        Assert.Equal(4, r.Int("n"));
        Assert.Equal([1.0, 2.5], r.Doubles("xs"));
        Assert.Equal(["en"], r.Strings("names"));
        Assert.Equal(Shape.OneMinusSqrt, r.Section("s").Enum<Shape>("shape"));
        r.RejectUnknown();
    }

    [Fact]
    public void Errors_name_the_file_and_dotted_key()
    {
        var r = Read("""{"s": {"n": 2.5, "shape": "round"}, "typo": 1}""");
        var s = r.Section("s");
        Assert.Equal("s.n", Assert.Throws<ConfigException>(() => s.Int("n")).Key);
        var e = Assert.Throws<ConfigException>(() => s.Enum<Shape>("shape"));
        Assert.Contains("not one of linear, one_minus_sqrt", e.Message);
        Assert.StartsWith("spec.yaml: key 's.shape'", e.Message);
        Assert.Equal("typo", Assert.Throws<ConfigException>(r.RejectUnknown).Key);
    }
}
