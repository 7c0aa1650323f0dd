using System.Text.Json;
using CptLab.Core;
using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Export;

/// <summary>
/// The tensors of a Hugging Face checkpoint folder (model.safetensors, or the shards its index lists), read one at
/// a time as float32 — for exporters, which never need the whole model in memory. Checked as strictly as loading:
/// every tensor the config implies must be there once with its shape, and a tensor the model does not have is
/// refused (so weights and config.json cannot silently disagree), except those transformers also ignores.
/// </summary>
public sealed class CheckpointTensors : IDisposable
{
    readonly List<SafetensorsReader> _readers;
    readonly Dictionary<string, SafetensorsReader> _owner;

    CheckpointTensors(List<SafetensorsReader> readers, Dictionary<string, SafetensorsReader> owner)
    {
        _readers = readers;
        _owner = owner;
    }

    public static CheckpointTensors Open(string dir, LlamaConfig config)
    {
        var readers = OpenReaders(dir);
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
            var expected = HfTensorNames.Expected(config);
            foreach (var (name, shape) in expected)
            {
                if (!owner.TryGetValue(name, out var r))
                    throw new CptLabException($"{dir}: checkpoint lacks tensor '{name}' that config.json implies; is config.json the one for these weights?");
                var found = r.Entries[name].Shape;
                if (!found.SequenceEqual(shape))
                    throw new CorruptFileException(r.Path, $"tensor '{name}' has shape [{string.Join(", ", found)}], config.json implies [{string.Join(", ", shape)}]");
            }
            var known = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
            var extra = owner.Keys.Where(n => !known.Contains(n) && !HfTensorNames.IsIgnoredExtra(n, config) && !n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)).ToList();
            if (extra.Count > 0)
                throw new CorruptFileException(owner[extra[0]].Path, $"{extra.Count} tensor(s) a Llama model does not have, which GGUF export would drop: {string.Join(", ", extra.Take(5).Select(n => $"'{n}'"))}");
            return new CheckpointTensors(readers, owner);
        }
        catch
        {
            foreach (var r in readers) r.Dispose();
            throw;
        }
    }

    /// <summary>The tensor as float32 (from F32, BF16 or F16 — all exact in float32), in the caller's dispose scope.</summary>
    public Tensor ReadFloat32(string name, long[] shape)
    {
        var t = empty(shape, ScalarType.Float32);
        _owner[name].ReadInto(name, t);
        return t;
    }

    public void Dispose()
    {
        foreach (var r in _readers) r.Dispose();
    }

    static List<SafetensorsReader> OpenReaders(string dir)
    {
        var index = Path.Combine(dir, HfCheckpoint.IndexFile);
        var single = Path.Combine(dir, HfCheckpoint.SingleFile);
        if (File.Exists(index))
        {
            using var doc = Json.ParseFile(index);
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new ConfigException(index, "weight_map", "missing or not an object");
            var files = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                var file = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new ConfigException(index, $"weight_map.{p.Name}", "expected a file name");
                if (file.Contains('/') || file.Contains('\\') || file.StartsWith('.'))
                    throw new ConfigException(index, $"weight_map.{p.Name}", $"'{file}' is not a file name in the checkpoint directory");
                files.Add(file);
            }
            var readers = new List<SafetensorsReader>();
            try
            {
                foreach (var f in files)
                {
                    var path = Path.Combine(dir, f);
                    if (!File.Exists(path)) throw new CptLabException($"{index}: shard '{f}' listed in weight_map is missing");
                    readers.Add(new SafetensorsReader(path));
                }
            }
            catch
            {
                foreach (var r in readers) r.Dispose();
                throw;
            }
            return readers;
        }
        if (File.Exists(single)) return [new SafetensorsReader(single)];
        throw new CptLabException($"{dir}: no {HfCheckpoint.SingleFile} or {HfCheckpoint.IndexFile}; GGUF export reads safetensors weights");
    }
}
