using CptLab.Core;

namespace CptLab.Eval.Tasks;

/// <summary>
/// The task files of a folder (the built-in ones are copied beside the assembly, in <c>tasks/</c>). A name selects a
/// task (<c>cmmlu</c>), one subject of a grouped task (<c>cmmlu_agronomy</c>, as lm-eval names subtasks), or every task
/// whose name starts with it and an underscore (<c>emobench</c> → the six EmoBench tasks).
/// </summary>
public sealed class TaskRegistry
{
    readonly Dictionary<string, string> _files;

    public TaskRegistry(string folder)
    {
        if (!Directory.Exists(folder)) throw new CptLabException($"{folder}: task folder not found");
        Folder = folder;
        _files = new(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(folder, "*.yaml").Order(StringComparer.Ordinal))
            _files[Path.GetFileNameWithoutExtension(f)] = f;
    }

    public static string DefaultFolder => Path.Combine(AppContext.BaseDirectory, "tasks");

    public string Folder { get; }

    /// <summary>Every task, loaded (and so checked) from its file.</summary>
    public IReadOnlyList<TaskSpec> All() => _files.Values.Select(TaskSpec.Load).ToArray();

    /// <summary>The tasks for a comma-separated selection, with the subjects chosen per task (absent = all).</summary>
    public (IReadOnlyList<TaskSpec> Tasks, Dictionary<string, IReadOnlyCollection<string>> Subjects) Select(string selection)
    {
        var tasks = new List<TaskSpec>();
        var subjects = new Dictionary<string, HashSet<string>>();
        var all = new Lazy<IReadOnlyList<TaskSpec>>(All);
        foreach (var name in selection.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (_files.TryGetValue(name, out var file)) { Add(TaskSpec.Load(file), null); continue; }
            var bySubject = all.Value.Where(t => name.StartsWith(t.Task + "_", StringComparison.Ordinal) && t.Subjects.Any(s => s.Name == name[(t.Task.Length + 1)..])).ToArray();
            if (bySubject.Length == 1) { Add(bySubject[0], name[(bySubject[0].Task.Length + 1)..]); continue; }
            var byPrefix = all.Value.Where(t => t.Task.StartsWith(name + "_", StringComparison.Ordinal)).ToArray();
            if (byPrefix.Length > 0) { foreach (var t in byPrefix) Add(t, null); continue; }
            throw new CptLabException($"unknown task '{name}' (tasks in {Folder}: {string.Join(", ", _files.Keys)}; a grouped task's subject is task_subject)");
        }
        return (tasks, subjects.ToDictionary(kv => kv.Key, kv => (IReadOnlyCollection<string>)kv.Value));

        void Add(TaskSpec t, string? subject)
        {
            if (!tasks.Any(x => x.Task == t.Task)) tasks.Add(t);
            else if (subject is null) subjects.Remove(t.Task);
            if (subject is not null && (subjects.ContainsKey(t.Task) || tasks.Count(x => x.Task == t.Task) == 1 && !WholeTaskSelected(t.Task)))
                (subjects.TryGetValue(t.Task, out var s) ? s : subjects[t.Task] = []).Add(subject);
        }

        bool WholeTaskSelected(string task) => selection.Split(',', StringSplitOptions.TrimEntries).Contains(task);
    }
}
