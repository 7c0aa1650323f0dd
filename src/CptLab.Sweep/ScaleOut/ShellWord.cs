namespace CptLab.Sweep.ScaleOut;

/// <summary>
/// One word of a generated command line: literal text, or text whose <c>$VAR</c> references the launcher expands on the
/// cluster (DATA_DIR, WORK_DIR, …), so no path of the planning machine is written into a script.
/// </summary>
public readonly record struct ShellWord(string Text, bool Expand = false)
{
    public static implicit operator ShellWord(string literal) => new(literal);

    /// <summary>A word with variable references, e.g. <c>$DATA_DIR/zh-web.train</c>.</summary>
    public static ShellWord Var(string text) => new(text, Expand: true);

    /// <summary>The word as bash reads it: bare when safe, double-quoted when it expands variables, single-quoted otherwise.</summary>
    public string Quoted
    {
        get
        {
            if (Expand) return "\"" + Text.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("`", "\\`") + "\"";
            if (Text.Length > 0 && Text.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:+,@%".Contains(c))) return Text;
            return "'" + Text.Replace("'", "'\\''") + "'";
        }
    }

    public override string ToString() => Text;
}

/// <summary>A Megatron-LM flag and its values (none for a switch such as <c>--bf16</c>).</summary>
public sealed record MegatronArg(string Flag, IReadOnlyList<ShellWord> Values)
{
    public MegatronArg(string flag, params ShellWord[] values) : this(flag, (IReadOnlyList<ShellWord>)values) { }

    /// <summary>The flag and its values as one line of a bash array, as the launcher writes it.</summary>
    public string Shell => Values.Count == 0 ? Flag : Flag + " " + string.Join(' ', Values.Select(v => v.Quoted));
}
