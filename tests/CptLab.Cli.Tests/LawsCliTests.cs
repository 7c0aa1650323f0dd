using System.Text;
using System.Text.Json.Nodes;
using CptLab.Laws.Registry;
using CptLab.Laws.Tests;

namespace CptLab.Cli.Tests;

/// <summary>`cptlab laws list|fit` run as a child process, as a user runs it: exit code, stdout/stderr, and the --out JSON.</summary>
public class LawsCliTests
{
    static (int Code, string Output) Cptlab(params string[] args)
    {
        var output = new StringBuilder();
        using var p = CliProcess.Start(output, args);
        var code = p.WaitForExitOrKill(TimeSpan.FromMinutes(2));
        p.WaitForExit(); // the asynchronous readers have delivered every line once this returns
        lock (output) return (code, output.ToString());
    }

    static string TempDir() => Directory.CreateTempSubdirectory("cptlab-laws-").FullName;

    /// <summary>The fixture's table as a file: CSV with a header row, or JSONL with one object per row.</summary>
    static string Write(LawTable table, string path)
    {
        var lines = Path.GetExtension(path) == ".jsonl"
            ? table.Rows.Select(r => "{" + string.Join(", ", table.Columns.Select((c, i) => $"\"{c}\": {r.Cells[i]}")) + "}")
            : [string.Join(",", table.Columns), .. table.Rows.Select(r => string.Join(",", r.Cells))];
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void Laws_list_names_every_registered_law_with_its_formula()
    {
        var (code, output) = Cptlab("laws", "list");
        Assert.True(code == 0, output);
        foreach (var law in LawRegistry.All)
        {
            Assert.Contains($"\n{law.Name}", "\n" + output);
            Assert.Contains(law.Formula, output);
        }
        Assert.Contains("alpha  [0, 5]", output);
    }

    /// <summary>
    /// Noise-free points of Epoch AI's Chinchilla fit on Hoffmann et al.'s design (244 points), written here as a file:
    /// the fit read back from --out recovers the generating parameters to 1e-3 relative.
    /// </summary>
    [Theory]
    [InlineData("points.csv")]
    [InlineData("points.jsonl")]
    public void Laws_fit_recovers_a_known_chinchilla_law_and_writes_the_json(string name)
    {
        var dir = TempDir();
        var data = Write(LawFixtures.Chinchilla(0, 1), Path.Combine(dir, name));
        var json = Path.Combine(dir, "out", "fit.json");
        var (code, output) = Cptlab("laws", "fit", "--data", data, "--law", "chinchilla", "--huber-delta", "1e-3", "--bootstrap", "4", "--out", json);
        Assert.True(code == 0, output);
        Assert.Contains("244 points", output);
        Assert.Contains("robust loss: Huber on log L residuals, δ = 0.001 (fixed)", output);
        Assert.Contains("levenberg_marquardt  converged", output);
        Assert.Contains("irls_huber           converged", output);
        Assert.Contains("residual RMS", output);
        Assert.Contains("4 replicates", output);
        Assert.Contains($"wrote {json}", output);
        Assert.Equal(["fit.json"], Directory.GetFiles(Path.GetDirectoryName(json)!).Select(Path.GetFileName)); // no temporary file left beside it

        // Read with a plain JSON parser, not the library's reader.
        var root = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("chinchilla", (string)root["law"]!);
        Assert.Equal(244, (int)root["points"]!);
        Assert.Equal(0.001, (double)root["huber_delta"]!);
        var parameters = root["parameters"]!.AsArray().ToDictionary(p => (string)p!["name"]!, p => (double)p!["value"]!);
        string[] names = ["E", "A", "B", "alpha", "beta"];
        for (var j = 0; j < names.Length; j++)
        {
            var rel = Math.Abs(parameters[names[j]] / LawFixtures.Epoch[j] - 1);
            Assert.True(rel < 1e-3, $"{names[j]}: fitted {parameters[names[j]]}, generated with {LawFixtures.Epoch[j]} (relative error {rel:E2})");
        }
        Assert.All(root["stages"]!.AsArray().Take(2), s => Assert.True((bool)s!["converged"]!));
    }

    [Fact]
    public void A_bad_number_is_reported_with_file_line_and_column_without_a_stack_trace()
    {
        var dir = TempDir();
        var csv = Path.Combine(dir, "bad.csv");
        File.WriteAllLines(csv, ["# tokens and loss of one run", "d,loss", "1e8,3.1", "2e8,2.9", "4e8,2.8O", "8e8,2.7", "1.6e9,2.65"]);
        var (code, output) = Cptlab("laws", "fit", "--data", csv, "--law", "token_law");
        Assert.Equal(1, code);
        Assert.Contains($"error: {csv}: line 5, column 'loss': '2.8O' is not a finite number", output);
        Assert.DoesNotContain("Exception", output);
        Assert.DoesNotContain("   at ", output);
        Assert.Single(output.Trim().Split('\n'));
    }

    [Fact]
    public void An_unknown_law_lists_the_known_ones()
    {
        var dir = TempDir();
        var data = Write(LawFixtures.Chinchilla(0, 1), Path.Combine(dir, "points.csv"));
        var (code, output) = Cptlab("laws", "fit", "--data", data, "--law", "chinchila");
        Assert.Equal(1, code);
        Assert.Contains("unknown law 'chinchila'", output);
        foreach (var law in LawRegistry.All) Assert.Contains(law.Name, output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public void A_folder_that_is_not_a_sweep_and_a_missing_file_are_named()
    {
        var dir = TempDir();
        var (code, output) = Cptlab("laws", "fit", "--data", dir, "--law", "chinchilla");
        Assert.Equal(1, code);
        Assert.Contains($"error: --data {dir}: a folder, but not a sweep folder (it has no sweep.db)", output);
        (code, output) = Cptlab("laws", "fit", "--data", Path.Combine(dir, "none.csv"), "--law", "chinchilla");
        Assert.Equal(1, code);
        Assert.Contains($"error: {Path.Combine(dir, "none.csv")}: file not found", output);
    }

    [Theory]
    [InlineData("--huber-delta 'big': give a positive number (e.g. 1e-3) or 'mad'", "--huber-delta", "big")]
    [InlineData("--loss 'sqrt': give 'log'", "--loss", "sqrt")]
    [InlineData("--input 'n': write NAME=COLUMN", "--input", "n")]
    [InlineData("law chinchilla has no input 'x'", "--input", "x=n")]
    [InlineData("no loss column 'val'", "--target", "val")]
    public void Option_errors_say_what_to_write(string message, params string[] options)
    {
        var dir = TempDir();
        var data = Write(LawFixtures.Chinchilla(0, 1), Path.Combine(dir, "points.csv"));
        var (code, output) = Cptlab(["laws", "fit", "--data", data, "--law", "chinchilla", .. options]);
        Assert.Equal(1, code);
        Assert.Contains(message, output);
        Assert.DoesNotContain("   at ", output);
    }
}
