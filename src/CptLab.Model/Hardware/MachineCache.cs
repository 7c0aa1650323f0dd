using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Model.Hardware;

/// <summary>
/// Measurements of this machine kept between runs (matmul rates per dtype and thread count, model step times),
/// in <c>machine.json</c> under <c>$CPTLAB_CACHE_DIR</c>, else <c>$XDG_CACHE_HOME/cptlab</c>, else
/// <c>~/.cache/cptlab</c>. Keys carry the CPU's fingerprint and LibTorch's version, so another CPU or another
/// LibTorch measures again. It is only a cache: a file that cannot be read or written is measured around, never
/// an error, and concurrent writers (a sweep's children) each write the whole file atomically.
/// </summary>
public static class MachineCache
{
    public const string FileName = "machine.json";
    static readonly object Gate = new();

    static readonly AsyncLocal<string?> Override = new();

    /// <summary>Points the cache at another folder for the calling flow only (tests), until the returned scope is disposed.</summary>
    public static IDisposable UseDirectory(string dir)
    {
        var previous = Override.Value;
        Override.Value = dir;
        return new Restore(() => Override.Value = previous);
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    public static string DirectoryPath =>
        Override.Value is { } o ? o :
        Environment.GetEnvironmentVariable("CPTLAB_CACHE_DIR") is { Length: > 0 } d ? d :
        Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? Path.Combine(x, "cptlab") :
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "cptlab");

    public static string FilePath => Path.Combine(DirectoryPath, FileName);

    public static JsonObject? Get(string key)
    {
        lock (Gate) return Load()[key]?.DeepClone() as JsonObject;
    }

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>; false when the cache cannot be written.</summary>
    public static bool Set(string key, JsonObject value)
    {
        lock (Gate)
        {
            try
            {
                var all = Load();
                all[key] = value.DeepClone();
                AtomicFile.WriteAllText(FilePath, all.ToJsonString(Json.Indented) + "\n");
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }
    }

    static JsonObject Load()
    {
        try
        {
            return File.Exists(FilePath) && JsonNode.Parse(File.ReadAllText(FilePath)) is JsonObject o ? o : new JsonObject();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return new JsonObject(); // a damaged cache is measured again and rewritten
        }
    }
}
