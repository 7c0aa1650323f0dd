using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Training;

/// <summary>The trainer's position, stored beside the weights in every checkpoint.</summary>
public sealed record TrainerState(
    long Step,
    long Tokens,
    double LrScale,
    string DataState,
    double? BestLoss,
    long? BestStep,
    JsonObject Config);

/// <summary>
/// A checkpoint folder, <c>checkpoints/step-00000100/</c>: <c>config.json</c> + <c>model.safetensors</c> (the float32
/// master weights in Hugging Face layout, loadable as a model), <c>optimizer.safetensors</c> (AdamW moments),
/// <c>state.json</c> (<see cref="TrainerState"/>) and <c>manifest.json</c> (size and SHA-256 of each file).
/// It is written into a temporary folder, every file flushed to disk, then renamed into place, so a kill at
/// any moment leaves either the whole checkpoint or none of it.
/// </summary>
public static class TrainingCheckpoint
{
    public const string ManifestFile = "manifest.json";
    public const string StateFile = "state.json";
    public const string OptimizerFile = "optimizer.safetensors";
    const string Prefix = "step-";

    public static string FolderName(long step) => $"{Prefix}{step:D8}";

    /// <param name="contents">The tokenizer and generation config, so that the checkpoint's model part is a complete model folder.</param>
    public static void Write(string checkpointsDir, LlamaForCausalLM master, AdamW optimizer, TrainerState state, ModelFolderContents? contents = null)
    {
        Directory.CreateDirectory(checkpointsDir);
        var final = Path.Combine(checkpointsDir, FolderName(state.Step));
        var tmp = Path.Combine(checkpointsDir, $".tmp-{FolderName(state.Step)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            ModelFolder.WriteInto(master, tmp, contents ?? ModelFolderContents.None, ScalarType.Float32, maxShardBytes: long.MaxValue);
            SafetensorsWriter.Write(Path.Combine(tmp, OptimizerFile), optimizer.StateTensors(), ScalarType.Float32,
                new Dictionary<string, string> { ["step"] = optimizer.Step.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            AtomicFile.WriteAllText(Path.Combine(tmp, StateFile), JsonSerializer.Serialize(state, Json.SnakeCase) + "\n");
            var files = new JsonObject();
            foreach (var file in Directory.GetFiles(tmp).Order(StringComparer.Ordinal))
                files[Path.GetFileName(file)] = new JsonObject { ["bytes"] = new FileInfo(file).Length, ["sha256"] = Sha256(file) };
            AtomicFile.WriteAllText(Path.Combine(tmp, ManifestFile), new JsonObject { ["files"] = files }.ToJsonString(Json.Indented) + "\n");
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true); // a rolled-back run passing the same step again
            Directory.Move(tmp, final);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }

    /// <summary>Checkpoint folders of a run, oldest first (temporary folders of interrupted writes excluded).</summary>
    public static IReadOnlyList<(long Step, string Dir)> List(string checkpointsDir)
    {
        if (!Directory.Exists(checkpointsDir)) return [];
        return Directory.GetDirectories(checkpointsDir, Prefix + "*")
            .Select(d => (Ok: long.TryParse(Path.GetFileName(d)[Prefix.Length..], out var s), Step: s, Dir: d))
            .Where(x => x.Ok)
            .OrderBy(x => x.Step)
            .Select(x => (x.Step, x.Dir))
            .ToList();
    }

    /// <summary>Removes folders left by writes that a kill interrupted.</summary>
    public static void RemoveIncomplete(string checkpointsDir)
    {
        if (!Directory.Exists(checkpointsDir)) return;
        foreach (var d in Directory.GetDirectories(checkpointsDir, ".tmp-*")) Directory.Delete(d, recursive: true);
    }

    /// <summary>Checks every file against the manifest; a missing, resized or altered file is named.</summary>
    public static void Verify(string dir)
    {
        var manifestPath = Path.Combine(dir, ManifestFile);
        if (!File.Exists(manifestPath)) throw new CorruptFileException(dir, $"checkpoint has no {ManifestFile}; it is incomplete");
        using var doc = Json.ParseFile(manifestPath);
        if (!doc.RootElement.TryGetProperty("files", out var files)) throw new CorruptFileException(manifestPath, "no 'files' entry");
        foreach (var f in files.EnumerateObject())
        {
            var path = Path.Combine(dir, f.Name);
            if (!File.Exists(path)) throw new CorruptFileException(dir, $"checkpoint file {f.Name} is missing");
            long expected = f.Value.GetProperty("bytes").GetInt64(), actual = new FileInfo(path).Length;
            if (actual != expected) throw new CorruptFileException(path, $"checkpoint file is {actual} bytes, the manifest says {expected} (truncated?)");
            if (Sha256(path) != f.Value.GetProperty("sha256").GetString())
                throw new CorruptFileException(path, "checkpoint file's SHA-256 does not match the manifest (corrupted)");
        }
    }

    public static TrainerState ReadState(string dir)
    {
        var path = Path.Combine(dir, StateFile);
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json.SnakeCase)
                   ?? throw new CorruptFileException(path, "empty state");
        }
        catch (JsonException e)
        {
            throw new CorruptFileException(path, $"malformed trainer state: {e.Message}");
        }
    }

    /// <summary>Loads weights and optimizer moments of a verified checkpoint into the given master model and optimizer.</summary>
    public static void Restore(string dir, LlamaForCausalLM master, AdamW optimizer, long step)
    {
        HfCheckpoint.LoadWeights(master, dir);
        using var reader = new SafetensorsReader(Path.Combine(dir, OptimizerFile));
        optimizer.Restore((name, dest) =>
        {
            if (!reader.Entries.ContainsKey(name)) return false;
            reader.ReadInto(name, dest);
            return true;
        }, long.Parse(reader.Metadata.GetValueOrDefault("step", step.ToString(System.Globalization.CultureInfo.InvariantCulture)), System.Globalization.CultureInfo.InvariantCulture));
    }

    static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}
