using System.CommandLine;
using CptLab.Core;
using CptLab.Model;
using CptLab.Model.Hardware;

namespace CptLab.Cli;

/// <summary>`cptlab generate`: continue a prompt of token ids, printing ids as they come.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model directory in Hugging Face layout.", Required = true };
        var promptIds = new Option<string>("--prompt-ids") { Description = "Comma-separated token ids, e.g. 128000,9906.", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 32 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy.", DefaultValueFactory = _ => 0.0 };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (0 = off).", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling threshold (1 = off).", DefaultValueFactory = _ => 1.0 };
        var minP = new Option<double>("--min-p") { Description = "Drop tokens below min-p × the best probability (0 = off).", DefaultValueFactory = _ => 0.0 };
        var repetition = new Option<double>("--repetition-penalty") { Description = "Penalty for tokens already seen (1 = off).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<ulong>("--seed") { Description = "Seed for sampling.", DefaultValueFactory = _ => 0UL };
        var stopIds = new Option<string?>("--stop-ids") { Description = "Comma-separated ids that end generation (default: the model's eos_token_id)." };
        var dtype = ServeCommands.DtypeOption();
        var threads = new Option<int>("--threads") { Description = "CPU threads (0 = the cores free at start-up).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("generate", "Generate token ids from a prompt of token ids.")
        {
            model, promptIds, maxNew, temperature, topK, topP, minP, repetition, seed, stopIds, dtype, threads,
        };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var sampling = new SamplingOptions
            {
                Temperature = r.GetValue(temperature), TopK = r.GetValue(topK), TopP = r.GetValue(topP), MinP = r.GetValue(minP),
                RepetitionPenalty = r.GetValue(repetition), Seed = r.GetValue(seed),
            }.Validate();
            var prompt = ParseIds(r.GetValue(promptIds)!, "--prompt-ids");
            var scalar = ServeCommands.ParseDtype(r.GetValue(dtype));
            var dir = r.GetValue(model)!.FullName;
            var threadChoice = CpuLoad.ChooseThreads(r.GetValue(threads));
            TorchRuntime.Initialise(threadChoice.Threads);
            var precision = ComputePrecision.ForInference(dir, scalar, Console.Error.WriteLine);
            Console.Error.WriteLine($"compute {precision.Name} ({precision.Reason}); {threadChoice.Threads} thread(s) ({threadChoice.Reason})");
            using var lm = HfCheckpoint.Load(dir, precision.Dtype);
            var stops = r.GetValue(stopIds) is { } s ? ParseIds(s, "--stop-ids") : lm.Config.EosTokenIds;
            var request = new GenerationRequest(prompt, r.GetValue(maxNew), sampling) { StopIds = stops.ToHashSet() };
            FinishReason? finish = null;
            bool first = true;
            foreach (var token in Generation.Generate(lm, request))
            {
                Console.Write(first ? $"{token.Id}" : $",{token.Id}");
                Console.Out.Flush();
                first = false;
                finish = token.Finish;
            }
            Console.WriteLine();
            Console.Error.WriteLine($"finish: {finish?.ToString().ToLowerInvariant()}");
            return 0;
        }));
        return cmd;
    }

    public static IReadOnlyList<int> ParseIds(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var ids = new List<int>(parts.Length);
        foreach (var p in parts)
            ids.Add(int.TryParse(p, out var id) && id >= 0 ? id : throw new CptLabException($"{option}: '{p}' is not a non-negative integer token id"));
        return ids.Count > 0 ? ids : throw new CptLabException($"{option}: no token ids given");
    }
}
