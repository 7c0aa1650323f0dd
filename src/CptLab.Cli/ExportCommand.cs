using System.CommandLine;
using CptLab.Core;
using CptLab.Export;
using CptLab.Model;
using Spectre.Console;

namespace CptLab.Cli;

/// <summary>`cptlab export gguf`: a Hugging Face model folder to one GGUF file for llama.cpp and Ollama (docs/gguf.md).</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var export = new Command("export", "Export a model to another runtime's format.");
        export.Subcommands.Add(Gguf());
        return export;
    }

    static Command Gguf()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model directory: config.json, safetensors weights, tokenizer.json (and tokenizer_config.json for the chat template).", Required = true };
        var outFile = new Option<FileInfo>("--out") { Description = "GGUF file to write (atomically).", Required = true };
        var type = new Option<string>("--type") { Description = "Weight matrices as f32, f16, bf16 or q8_0 (norms and other 1-D tensors stay f32).", DefaultValueFactory = _ => "f16" };
        var force = new Option<bool>("--force") { Description = "Overwrite --out if it exists." };
        var cmd = new Command("gguf", "Write a GGUF v3 file that llama.cpp loads as its llama architecture, with the tokenizer and chat template.")
        {
            model, outFile, type, force,
        };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var weightType = GgufExport.ParseType(r.GetValue(type)!);
            TorchRuntime.Initialise();
            GgufExportResult? result = null;
            GgufExportResult Run(IProgress<GgufExportProgress>? progress) =>
                GgufExport.Export(r.GetValue(model)!.FullName, r.GetValue(outFile)!.FullName, weightType, r.GetValue(force), progress);
            // A progress bar on a terminal; in a log or a pipe, only the result line.
            if (Console.IsOutputRedirected)
                result = Run(null);
            else
                AnsiConsole.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("tensors", maxValue: 1.0);
                        result = Run(new SyncProgress<GgufExportProgress>(p =>
                            {
                                task.Description = p.Tensor < p.TensorCount ? $"{p.Name} ({p.Tensor + 1}/{p.TensorCount})" : $"{p.TensorCount} tensors";
                                task.Value = p.TotalBytes == 0 ? 1.0 : (double)p.BytesWritten / p.TotalBytes;
                            }));
                    });
            foreach (var note in result!.Notes) Console.Error.WriteLine($"note: {note}");
            Console.WriteLine($"wrote {result.Path}: {result.Bytes / 1e6:N1} MB, {result.TensorCount} tensors, {result.Type.ToString().ToLowerInvariant()} weights, vocabulary {result.VocabSize:N0}");
            return 0;
        }));
        return cmd;
    }
}
