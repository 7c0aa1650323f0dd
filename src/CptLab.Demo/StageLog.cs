using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CptLab.Core;

namespace CptLab.Demo;

/// <summary>
/// stages.json: each stage's wall time and whether it finished, so a re-run skips finished stages (and says
/// so) and the report states the time each stage took. Written atomically after every stage.
/// </summary>
public sealed class StageLog
{
    readonly string _path;
    readonly string _mode;
    readonly JsonObject _stages;

    StageLog(string path, string mode, JsonObject stages) => (_path, _mode, _stages) = (path, mode, stages);

    public static StageLog Open(string path, string mode)
    {
        if (File.Exists(path))
        {
            var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new CorruptFileException(path, "not a JSON object");
            var was = root["mode"]?.GetValue<string>();
            if (was != mode) throw new CptLabException($"{Path.GetDirectoryName(path)} holds a {was} demo; use another --out for the {mode} mode");
            return new StageLog(path, mode, root["stages"] as JsonObject ?? new JsonObject());
        }
        return new StageLog(path, mode, new JsonObject());
    }

    public IEnumerable<(string Name, string Description, double Seconds, bool Done)> Entries =>
        _stages.Select(kv => (kv.Key, kv.Value!["description"]!.GetValue<string>(), kv.Value!["seconds"]!.GetValue<double>(), kv.Value!["done"]!.GetValue<bool>()));

    public bool IsDone(string name) => _stages[name]?["done"]?.GetValue<bool>() == true;

    /// <summary>Runs a stage unless it finished before (or <paramref name="alwaysRun"/>); records its time. Time spent by interrupted attempts adds up.</summary>
    public void Run(string name, string description, IDemoUi ui, Action work, bool alwaysRun = false)
    {
        if (IsDone(name) && !alwaysRun)
        {
            ui.StageDone(name, _stages[name]!["seconds"]!.GetValue<double>(), reused: true);
            return;
        }
        ui.Stage(name, description);
        double before = _stages[name]?["seconds"]?.GetValue<double>() ?? 0;
        var sw = Stopwatch.StartNew();
        try
        {
            work();
        }
        finally
        {
            _stages[name] = new JsonObject { ["description"] = description, ["seconds"] = Math.Round(before + sw.Elapsed.TotalSeconds, 1), ["done"] = false };
            Save();
        }
        _stages[name]!["done"] = true;
        Save();
        ui.StageDone(name, _stages[name]!["seconds"]!.GetValue<double>(), reused: false);
    }

    void Save() =>
        AtomicFile.WriteAllText(_path, new JsonObject { ["mode"] = _mode, ["stages"] = _stages.DeepClone() }.ToJsonString(Json.Indented) + "\n");
}
