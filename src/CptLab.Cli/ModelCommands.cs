using System.CommandLine;
using CptLab.Core;
using CptLab.Model;

namespace CptLab.Cli;

/// <summary>`cptlab model init|info`.</summary>
public static class ModelCommands
{
    public static Command Create()
    {
        var model = new Command("model", "Create and inspect models in Hugging Face layout.");
        model.Subcommands.Add(Init());
        model.Subcommands.Add(Info());
        return model;
    }

    static Command Init()
    {
        var flavor = new Option<string?>("--flavor") { Description = $"Named size: {string.Join(", ", Flavors.All.Keys)}." };
        var config = new Option<FileInfo?>("--config") { Description = "Or a Hugging Face config.json to take the architecture from." };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder to write the model into (config.json, generation_config.json, weights, tokenizer files).", Required = true };
        var seed = new Option<long>("--seed") { Description = "Seed of the random initialisation.", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string?>("--dtype") { Description = "Stored dtype: float32, bfloat16 or float16 (default: the flavor's)." };
        var tokenizer = new Option<string?>("--tokenizer")
        {
            Description = "The tokenizer the folder gets (tokenizer.json, tokenizer.model or a folder holding one, with its tokenizer_config.json): " +
                          "without it the folder holds weights only and cannot be served.",
        };
        var shard = new Option<string>("--max-shard-size") { Description = "Shard the weights past this size, as transformers' max_shard_size (e.g. 500MB, 5GB).", DefaultValueFactory = _ => "5GB" };
        var cmd = new Command("init", "Write a randomly initialised model folder (for pre-training from scratch).") { flavor, config, outDir, seed, dtype, tokenizer, shard };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var c = (r.GetValue(flavor), r.GetValue(config)) switch
            {
                ({ } name, null) => Flavors.Get(name),
                (null, { } file) => LlamaConfig.Load(file.FullName),
                _ => throw new CptLabException("give exactly one of --flavor or --config"),
            };
            var scalar = r.GetValue(dtype) is { } d ? DtypeNames.Parse(d) ?? throw new CptLabException($"--dtype '{d}' is not one of float32, bfloat16, float16") : (TorchSharp.torch.ScalarType?)null;
            TorchRuntime.Initialise();
            var dir = r.GetValue(outDir)!.FullName;
            var contents = r.GetValue(tokenizer) is { } tok ? ModelFolderContents.For(tok, null, c.MaxPositionEmbeddings) : ModelFolderContents.None;
            ModelFactory.InitAndSave(c, dir, r.GetValue(seed), scalar, contents, ParseSize(r.GetValue(shard)!, "--max-shard-size"));
            Console.WriteLine($"wrote {dir} ({ModelMath.ParameterCount(c):N0} parameters{(contents.Tokenizer is null ? "; no --tokenizer, so weights only" : $", tokenizer of {contents.Tokenizer.Source}")})");
            return 0;
        }));
        return cmd;
    }

    /// <summary>"500MB", "5GB", "2GiB" or a byte count, as transformers' max_shard_size reads them (KB/MB/GB decimal, KiB/MiB/GiB binary).</summary>
    internal static long ParseSize(string text, string option)
    {
        var t = text.Trim();
        var units = new (string Suffix, long Factor)[] { ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1) };
        foreach (var (suffix, factor) in units)
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(t[..^suffix.Length], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0)
                return (long)(v * factor);
        if (long.TryParse(t, out var bytes) && bytes > 0) return bytes;
        throw new CptLabException($"{option} '{text}' is not a size such as 500MB or 5GB");
    }

    static Command Info()
    {
        var target = new Argument<string>("model") { Description = "A model directory (with config.json) or a flavor name." };
        var seqLen = new Option<int?>("--seq-len") { Description = "Context length for the FLOPs figure (default: the model's maximum)." };
        var cmd = new Command("info", "Print a model's configuration, parameter count and FLOPs per token.") { target, seqLen };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var name = r.GetValue(target)!;
            var configPath = Path.Combine(name, HfCheckpoint.ConfigFile);
            var c = Directory.Exists(name) ? LlamaConfig.Load(configPath)
                : Flavors.All.ContainsKey(name) ? Flavors.Get(name)
                : throw new CptLabException($"'{name}' is neither a model directory nor a flavor ({string.Join(", ", Flavors.All.Keys)})");
            Console.Write(ModelFactory.Describe(c, r.GetValue(seqLen) ?? c.MaxPositionEmbeddings));
            return 0;
        }));
        return cmd;
    }
}
