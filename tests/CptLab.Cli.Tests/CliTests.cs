using CptLab.Cli;
using CptLab.Model;

namespace CptLab.Cli.Tests;

/// <summary>
/// The `cptlab` command run in-process with captured output. One class, so its tests run one at a time
/// (Console redirection is process-wide).
/// </summary>
public class CliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            int code = Program.Main(args);
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    static string TempDir() => Directory.CreateTempSubdirectory("cptlab-cli-").FullName;

    [Fact]
    public void Init_info_generate_round_trip_matches_the_library()
    {
        var dir = Path.Combine(TempDir(), "m");
        var init = Run("model", "init", "--flavor", "debug", "--out", dir, "--seed", "5");
        Assert.Equal(0, init.Code);
        Assert.Contains("parameters", init.Out);

        var info = Run("model", "info", dir, "--seq-len", "128");
        Assert.Equal(0, info.Code);
        var config = Flavors.Get("debug");
        Assert.Contains($"{ModelMath.ParameterCount(config):N0}", info.Out);
        Assert.Contains($"{ModelMath.TrainingFlopsPerToken(config, 128):E3}", info.Out);

        // float32 on both sides: dtype auto could pick bf16 on a CPU with native bf16.
        var gen = Run("generate", "--model", dir, "--prompt-ids", "1,7,9", "--max-new-tokens", "6", "--stop-ids", "511", "--dtype", "float32");
        Assert.Equal(0, gen.Code);
        TorchRuntime.Initialise();
        using var model = HfCheckpoint.Load(dir, TorchSharp.torch.ScalarType.Float32);
        var expected = Generation.Generate(model, new GenerationRequest([1, 7, 9], 6, SamplingOptions.Greedy) { StopIds = new HashSet<int> { 511 } }).Select(t => t.Id);
        Assert.Equal(string.Join(",", expected), gen.Out.Trim());
        Assert.Contains("finish:", gen.Err);
    }

    [Fact]
    public void Same_seed_same_model()
    {
        var root = TempDir();
        Run("model", "init", "--flavor", "debug", "--out", Path.Combine(root, "a"), "--seed", "3");
        Run("model", "init", "--flavor", "debug", "--out", Path.Combine(root, "b"), "--seed", "3");
        Run("model", "init", "--flavor", "debug", "--out", Path.Combine(root, "c"), "--seed", "4");
        var a = File.ReadAllBytes(Path.Combine(root, "a", HfCheckpoint.SingleFile));
        Assert.Equal(a, File.ReadAllBytes(Path.Combine(root, "b", HfCheckpoint.SingleFile)));
        Assert.NotEqual(a, File.ReadAllBytes(Path.Combine(root, "c", HfCheckpoint.SingleFile)));
    }

    [Theory]
    [InlineData("model directory not found", "generate", "--model", "/nonexistent/model", "--prompt-ids", "1")]
    [InlineData("'x' is not a non-negative integer token id", "generate", "--model", "/tmp", "--prompt-ids", "1,x")]
    [InlineData("unknown flavor 'huge'", "model", "init", "--flavor", "huge", "--out", "/tmp/never")]
    [InlineData("give exactly one of --flavor or --config", "model", "init", "--out", "/tmp/never")]
    [InlineData("neither a model directory nor a flavor", "model", "info", "nothing-here")]
    [InlineData("temperature -1 must be", "generate", "--model", "/tmp", "--prompt-ids", "1", "--temperature", "-1")]
    // Refused before the model is opened (there is none at /tmp/never), as lm-eval refuses without --confirm_run_unsafe_code.
    [InlineData("humaneval runs the model's generated code", "eval", "--model", "/tmp/never", "--tasks", "humaneval")]
    [InlineData("Pass --allow-code-execution", "eval", "--model", "/tmp/never", "--tasks", "gsm8k,humaneval")]
    public void User_errors_print_one_line_and_exit_1(string message, params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(1, code);
        Assert.Contains(message, err);
        Assert.StartsWith("error: ", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void Corrupt_checkpoint_is_a_one_line_error()
    {
        var dir = Path.Combine(TempDir(), "m");
        Run("model", "init", "--flavor", "debug", "--out", dir);
        var file = Path.Combine(dir, HfCheckpoint.SingleFile);
        File.WriteAllBytes(file, File.ReadAllBytes(file)[..1000]);
        var (code, _, err) = Run("generate", "--model", dir, "--prompt-ids", "1");
        Assert.Equal(1, code);
        Assert.Contains("truncated", err);
        Assert.DoesNotContain("   at ", err);
    }

    /// <summary>Every command in the tree, groups included, as the words that reach it ("sweep run", "data mix", …).</summary>
    static List<string> CommandPaths()
    {
        var paths = new List<string>();
        void Walk(System.CommandLine.Command c, string path)
        {
            foreach (var sub in c.Subcommands)
            {
                var p = path.Length == 0 ? sub.Name : $"{path} {sub.Name}";
                paths.Add(p);
                Walk(sub, p);
            }
        }
        Walk(Program.BuildRoot(), "");
        return paths;
    }

    public static TheoryData<string> AllCommands() => new(CommandPaths());

    [Fact]
    public void The_command_tree_holds_every_verb_of_the_readme()
    {
        var all = CommandPaths().ToHashSet();
        foreach (var verb in new[] { "model init", "model info", "generate", "train", "sweep run", "sweep status", "sweep fit", "sweep report", "sweep plan",
                                     "demo", "data prepare", "data mix", "data stats", "data inspect", "data train-tokenizer", "serve", "chat" })
            Assert.Contains(verb, all);
    }

    [Theory]
    [MemberData(nameof(AllCommands))]
    public void Every_verb_has_help(string verb)
    {
        var (code, output, _) = Run([.. verb.Split(' '), "--help"]);
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output);
        Assert.Contains("Description:", output);
        // A leaf verb lists its options; a group lists its verbs.
        Assert.True(output.Contains("Options:", StringComparison.Ordinal) || output.Contains("Commands:", StringComparison.Ordinal), output);
    }
}
