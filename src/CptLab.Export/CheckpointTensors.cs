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
        var (readers, owner) = HfCheckpoint.OpenTensors(dir);
        try
        {
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
            var extra = owner.Keys.Where(n => !known.Contains(n) && !HfTensorNames.IsIgnoredExtra(n, config)).ToList();
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
}
