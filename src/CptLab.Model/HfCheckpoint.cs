using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;
using static TorchSharp.torch;

namespace CptLab.Model;

/// <summary>
/// Checkpoints in the Hugging Face layout: <c>config.json</c>, <c>generation_config.json</c>, and the weights in
/// <c>model.safetensors</c> or in shards listed by <c>model.safetensors.index.json</c>, under the Hub's tensor
/// names (<see cref="HfTensorNames"/>). What this writes follows that layout, and an independent PyTorch reader
/// (tools/check_with_pytorch.py) loads it and generates the same tokens; loading in transformers itself is not
/// tested here (no PyPI on the build machines), so no claim is made for it.
/// </summary>
public static class HfCheckpoint
{
    public const string ConfigFile = "config.json";
    public const string GenerationConfigFile = GenerationConfig.FileName;
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>
    /// Writes config, generation config and weights into <paramref name="dir"/>, each file atomically. A complete model
    /// folder (with the tokenizer files, written as one unit) is <see cref="ModelFolder.Save"/>'s; this is its weights part.
    /// </summary>
    /// <param name="dtype">Stored dtype; defaults to the model's.</param>
    /// <param name="maxShardBytes">Shard the weights when they exceed this many bytes.</param>
    /// <param name="config">The config.json to write (default: the model's); it must describe the model's architecture.</param>
    /// <param name="generation">The generation_config.json to write (default: the config's bos and eos ids).</param>
    public static void Save(LlamaForCausalLM model, string dir, ScalarType? dtype = null, long maxShardBytes = 5L << 30,
        LlamaConfig? config = null, GenerationConfig? generation = null)
    {
        var stored = dtype ?? model.Dtype;
        int size = SafetensorsReader.ElementSize(SafetensorsReader.DtypeOf(stored))!.Value;
        Directory.CreateDirectory(dir);
        var tensors = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();

        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long shardBytes = 0, totalBytes = 0;
        foreach (var t in tensors)
        {
            long bytes = t.Item2.numel() * size;
            if (shards[^1].Count > 0 && shardBytes + bytes > maxShardBytes)
            {
                shards.Add(new());
                shardBytes = 0;
            }
            shards[^1].Add(t);
            shardBytes += bytes;
            totalBytes += bytes;
        }

        var written = (config ?? model.Config) with { TorchDtype = DtypeNames.HfName(stored) };
        if (ModelMath.ParameterCount(written) != ModelMath.ParameterCount(model.Config) || written.NumHiddenLayers != model.Config.NumHiddenLayers)
            throw new ArgumentException("the config to write does not describe this model's architecture", nameof(config));
        written.Save(Path.Combine(dir, ConfigFile));
        (generation ?? new GenerationConfig { BosTokenId = written.BosTokenId, EosTokenIds = written.EosTokenIds }).Save(Path.Combine(dir, GenerationConfigFile));

        // Remove the other layout's files first, so a directory never holds two disagreeing sets of weights.
        foreach (var stale in Directory.EnumerateFiles(dir, "model-*-of-*.safetensors")) File.Delete(stale);
        if (shards.Count == 1)
        {
            File.Delete(Path.Combine(dir, IndexFile));
            SafetensorsWriter.Write(Path.Combine(dir, SingleFile), shards[0], stored);
            return;
        }
        File.Delete(Path.Combine(dir, SingleFile));
        var weightMap = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            var file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            SafetensorsWriter.Write(Path.Combine(dir, file), shards[i], stored);
            foreach (var (name, _) in shards[i]) weightMap[name] = file;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalBytes }, ["weight_map"] = weightMap };
        AtomicFile.WriteAllText(Path.Combine(dir, IndexFile), index.ToJsonString(Json.Indented) + "\n");
    }

    /// <summary>Loads config and weights. The model is built in <paramref name="dtype"/> (default: the config's torch_dtype).</summary>
    public static LlamaForCausalLM Load(string dir, ScalarType? dtype = null)
    {
        if (!Directory.Exists(dir)) throw new CptLabException($"{dir}: model directory not found");
        var config = LlamaConfig.Load(Path.Combine(dir, ConfigFile));
        var model = new LlamaForCausalLM(config, dtype);
        try
        {
            LoadWeights(model, dir);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>
    /// Fills the model's parameters from the checkpoint in <paramref name="dir"/>, strictly: every parameter must
    /// be present once, with its shape and a float dtype; a tensor the model lacks is an error too (except
    /// <c>lm_head.weight</c> beside tied embeddings, which transformers also ignores).
    /// </summary>
    public static void LoadWeights(LlamaForCausalLM model, string dir)
    {
        var (readers, owner) = OpenTensors(dir);
        try
        {
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            var missing = parameters.Keys.Where(n => !owner.ContainsKey(n)).ToList();
            if (missing.Count > 0)
                throw new CptLabException($"{dir}: checkpoint lacks {missing.Count} tensor(s) the model needs: {Names(missing)} — is config.json the one for these weights?");
            var unexpected = owner.Keys.Where(n => !parameters.ContainsKey(n) && !HfTensorNames.IsIgnoredExtra(n, model.Config)).ToList();
            if (unexpected.Count > 0)
                throw new CorruptFileException(owner[unexpected[0]].Path, $"{unexpected.Count} tensor(s) the model does not have: {Names(unexpected)} — is config.json the one for these weights?");

            foreach (var (name, p) in parameters) owner[name].ReadInto(name, p);
        }
        finally
        {
            foreach (var r in readers) r.Dispose();
        }
    }

    static string Names(List<string> names) =>
        string.Join(", ", names.Take(5).Select(n => $"'{n}'")) + (names.Count > 5 ? $" and {names.Count - 5} more" : "");

    /// <summary>
    /// Opens every weight file of the checkpoint in <paramref name="dir"/> (checking each header, and the index against the
    /// shards) and maps each tensor name to the file holding it; a name in two files is refused. The caller disposes the readers.
    /// </summary>
    public static (List<SafetensorsReader> Readers, Dictionary<string, SafetensorsReader> Owner) OpenTensors(string dir)
    {
        var readers = OpenWeights(dir);
        try
        {
            var owner = new Dictionary<string, SafetensorsReader>(StringComparer.Ordinal);
            foreach (var r in readers)
                foreach (var name in r.Entries.Keys)
                {
                    if (owner.TryGetValue(name, out var other))
                        throw new CorruptFileException(r.Path, $"tensor '{name}' is also in {other.Path}");
                    owner[name] = r;
                }
            return (readers, owner);
        }
        catch
        {
            foreach (var r in readers) r.Dispose();
            throw;
        }
    }

    /// <summary>Opens every weight file of the checkpoint, checking each header and the index against the shards.</summary>
    static List<SafetensorsReader> OpenWeights(string dir)
    {
        var indexPath = Path.Combine(dir, IndexFile);
        var singlePath = Path.Combine(dir, SingleFile);
        if (File.Exists(indexPath)) return OpenSharded(dir, indexPath);
        if (File.Exists(singlePath)) return [new SafetensorsReader(singlePath)];
        if (File.Exists(Path.Combine(dir, "pytorch_model.bin")) || File.Exists(Path.Combine(dir, "consolidated.00.pth")))
            throw new CptLabException($"{dir}: has PyTorch pickle weights only; CptLab reads safetensors (convert with transformers' save_pretrained(safe_serialization=True))");
        throw new CptLabException($"{dir}: no {SingleFile} or {IndexFile}");
    }

    static List<SafetensorsReader> OpenSharded(string dir, string indexPath)
    {
        using var doc = Json.ParseFile(indexPath);
        if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new ConfigException(indexPath, "weight_map", "missing or not an object");
        var byFile = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var p in map.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new ConfigException(indexPath, $"weight_map.{p.Name}", "expected a file name");
            var file = p.Value.GetString()!;
            if (file.Contains('/') || file.Contains('\\') || file.StartsWith('.'))
                throw new ConfigException(indexPath, $"weight_map.{p.Name}", $"'{file}' is not a file name in the checkpoint directory");
            (byFile.TryGetValue(file, out var list) ? list : byFile[file] = []).Add(p.Name);
        }
        var readers = new List<SafetensorsReader>();
        try
        {
            foreach (var (file, names) in byFile)
            {
                var path = Path.Combine(dir, file);
                if (!File.Exists(path)) throw new CptLabException($"{indexPath}: shard '{file}' listed in weight_map is missing (it should hold '{names[0]}')");
                var reader = new SafetensorsReader(path);
                readers.Add(reader);
                foreach (var name in names)
                    if (!reader.Entries.ContainsKey(name))
                        throw new CorruptFileException(path, $"tensor '{name}' is listed in {IndexFile} for this shard but is not in it");
                foreach (var name in reader.Entries.Keys)
                    if (!names.Contains(name))
                        throw new CorruptFileException(path, $"tensor '{name}' is in this shard but not listed for it in {IndexFile}");
            }
        }
        catch
        {
            foreach (var r in readers) r.Dispose();
            throw;
        }
        return readers;
    }
}
