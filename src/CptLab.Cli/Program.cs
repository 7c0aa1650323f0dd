using System.CommandLine;

namespace CptLab.Cli;

/// <summary>
/// The `cptlab` command. Each verb group lives in its own file (ModelCommands, GenerateCommand, …) and is a
/// thin layer over a library call that a test also makes; this file only assembles them.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // Before anything loads LibTorch: its OpenMP runtime reads the wait policy once, at load.
        CptLab.Model.TorchRuntime.PrepareNativeEnvironment();
        return BuildRoot().Parse(args).Invoke(new InvocationConfiguration
        {
            EnableDefaultExceptionHandler = false,
            // Ctrl-C / SIGTERM cancel the verb's token; a training run then checkpoints at the next step boundary.
            ProcessTerminationTimeout = TimeSpan.FromSeconds(120),
        });
    }

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("CptLab: continual pre-training of Llama-family models with the mixture ratio and learning rate chosen by measurement.");
        root.Subcommands.Add(ModelCommands.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(TrainCommand.CreateSft());
        root.Subcommands.Add(TrainCommand.CreateDpo());
        root.Subcommands.Add(SweepCommands.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(DataCommands.Create());
        root.Subcommands.Add(LawsCommands.Create());
        root.Subcommands.Add(ServeCommands.Serve());
        root.Subcommands.Add(ServeCommands.Chat());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        return root;
    }
}
