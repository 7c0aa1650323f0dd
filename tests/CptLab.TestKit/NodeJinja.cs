using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CptLab.TestKit;

/// <summary>
/// The reference: @huggingface/jinja 0.5.11 in one node process per test class (an xUnit class fixture). Requests are
/// one JSON line each ({template, vars}); the driver answers one line ({ok, out} or {ok: false, error}).
/// </summary>
public sealed class NodeJinja : IDisposable
{
    const string Driver = """
        const { Template } = require("@huggingface/jinja");
        const rl = require("readline").createInterface({ input: process.stdin, crlfDelay: Infinity });
        rl.on("line", (line) => {
          const req = JSON.parse(line);
          let res;
          try { res = { ok: true, out: new Template(req.template).render(req.vars) }; }
          catch (e) { res = { ok: false, error: String(e && e.message !== undefined ? e.message : e) }; }
          process.stdout.write(JSON.stringify(res) + "\n");
        });
        """;

    readonly Process _node;
    readonly string _dir;
    readonly Lock _lock = new();

    public NodeJinja()
    {
        _dir = Directory.CreateTempSubdirectory("cptlab-jinja-node-").FullName;
        var script = Path.Combine(_dir, "driver.cjs");
        File.WriteAllText(script, Driver);
        var psi = new ProcessStartInfo("node", [script])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false), StandardOutputEncoding = Encoding.UTF8,
        };
        psi.Environment["NODE_PATH"] = RepoPaths.NodeModules;
        _node = Process.Start(psi) ?? throw new InvalidOperationException("node did not start");
    }

    /// <summary>The reference's output, or its error message (Ok false).</summary>
    public (bool Ok, string Text) Render(string template, JsonObject vars)
    {
        var request = new JsonObject { ["template"] = template, ["vars"] = vars.DeepClone() }.ToJsonString();
        lock (_lock)
        {
            _node.StandardInput.WriteLine(request);
            _node.StandardInput.Flush();
            var line = _node.StandardOutput.ReadLine()
                ?? throw new InvalidOperationException($"node exited: {_node.StandardError.ReadToEnd()}");
            using var doc = JsonDocument.Parse(line);
            var ok = doc.RootElement.GetProperty("ok").GetBoolean();
            return (ok, doc.RootElement.GetProperty(ok ? "out" : "error").GetString()!);
        }
    }

    public void Dispose()
    {
        try
        {
            _node.StandardInput.Close();
            if (!_node.WaitForExit(5000)) _node.Kill();
        }
        finally
        {
            _node.Dispose();
            Directory.Delete(_dir, recursive: true);
        }
    }
}
