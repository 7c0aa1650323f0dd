namespace CptLab.Core;

/// <summary>
/// An error the user can fix: bad input, a missing file, a corrupt checkpoint. The message says what was
/// wrong, where (file, line, key, tensor) and, where it helps, what to do. The CLI prints it as one line
/// and exits non-zero; anything else that escapes is a bug in CptLab.
/// </summary>
public class CptLabException : Exception
{
    public CptLabException(string message) : base(message) { }
    public CptLabException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A configuration value is missing or invalid; <see cref="Key"/> names it.</summary>
public sealed class ConfigException : CptLabException
{
    public string File { get; }
    public string Key { get; }

    public ConfigException(string source, string key, string problem)
        : base($"{source}: key '{key}': {problem}")
    {
        File = source;
        Key = key;
    }
}

/// <summary>A file is damaged or not of the expected format; <see cref="Path"/> names it.</summary>
public sealed class CorruptFileException : CptLabException
{
    public string Path { get; }

    public CorruptFileException(string path, string problem) : base($"{path}: {problem}") => Path = path;
}
