using System.CommandLine;
using System.Globalization;
using CptLab.Core;
using CptLab.Laws.Registry;
using CptLab.Sweep;

namespace CptLab.Cli;

/// <summary>`cptlab laws list|fit`: thin verbs over the law registry (CptLab.Laws.Registry) and the sweep table reader.</summary>
public static class LawsCommands
{
    public static Command Create()
    {
        var laws = new Command("laws", "The registered law families: list them, or fit one to a table of points (CSV, JSONL) or to a sweep folder's runs.");
        laws.Subcommands.Add(List());
        laws.Subcommands.Add(Fit());
        return laws;
    }

    static Command List()
    {
        var cmd = new Command("list", "Every registered law: name, formula, inputs, parameters with their bounds, and where it comes from.");
        cmd.SetAction(_ => CliAction.Run(() =>
        {
            Console.Write(LawCatalog.Format(LawRegistry.All));
            return 0;
        }));
        return cmd;
    }

    static Command Fit()
    {
        var data = new Option<string>("--data") { Description = "The points: a CSV (header row of column names), a JSONL file (one object per line), or a sweep folder (its finished runs).", Required = true };
        var law = new Option<string>("--law") { Description = "The law's name (`cptlab laws list`).", Required = true };
        var delta = new Option<string>("--huber-delta") { Description = "Huber δ: a positive number (Epoch AI used 1e-3 on log L) or 'mad' (1.345·MAD of the least-squares residuals).", DefaultValueFactory = _ => "mad" };
        var loss = new Option<string>("--loss") { Description = "Residuals on log L ('log', as Hoffmann et al. and Epoch AI) or on L ('linear').", DefaultValueFactory = _ => "log" };
        var target = new Option<string>("--target") { Description = "The column holding the loss the law predicts (a sweep folder's 'loss' is the target language's).", DefaultValueFactory = _ => "loss" };
        var input = new Option<string[]>("--input") { Description = "A law input read from a differently named column, NAME=COLUMN (repeatable), e.g. --input r=almr.", AllowMultipleArgumentsPerToken = false };
        var where = new Option<string[]>("--where") { Description = "Fit only the rows where COLUMN=VALUE (repeatable; numbers compared as numbers), e.g. --where lr=1e-4 for one LR of a sweep.", AllowMultipleArgumentsPerToken = false };
        var bootstrap = new Option<int>("--bootstrap") { Description = "Pairs-bootstrap replicates for the parameters' intervals (0: none).", DefaultValueFactory = _ => 0 };
        var confidence = new Option<double>("--confidence") { Description = "Coverage of the bootstrap intervals.", DefaultValueFactory = _ => 0.95 };
        var seed = new Option<int>("--seed") { Description = "Seed of the random starts and the bootstrap.", DefaultValueFactory = _ => 0 };
        var outFile = new Option<FileInfo?>("--out") { Description = "Write the fit as JSON here (atomically)." };
        var cmd = new Command("fit", "Fit a registered law to a table: robust (Huber) nonlinear least squares from a grid of starts, optional bootstrap intervals.")
            { data, law, delta, loss, target, input, where, bootstrap, confidence, seed, outFile };
        cmd.SetAction(r => CliAction.Run(() =>
        {
            var definition = LawRegistry.Get(r.GetValue(law)!);
            var options = new LawFitOptions
            {
                HuberDelta = ParseDelta(r.GetValue(delta)!),
                Loss = ParseLoss(r.GetValue(loss)!),
                LossColumn = r.GetValue(target)!,
                InputColumns = ParseInputs(r.GetValue(input) ?? []),
                Bootstrap = NonNegative(r.GetValue(bootstrap), "--bootstrap"),
                Confidence = ParseConfidence(r.GetValue(confidence)),
                Seed = r.GetValue(seed),
            };
            var (table, leftOut) = ReadTable(r.GetValue(data)!);
            foreach (var (column, value) in ParsePairs(r.GetValue(where) ?? [], "--where", "COLUMN=VALUE", "--where lr=1e-4"))
                table = table.Where(column, value);
            var fit = LawTableFitter.Fit(table, definition, options);
            Console.Write(fit.Format());
            foreach (var line in leftOut) Console.WriteLine($"left out: {line}");
            if (r.GetValue(outFile) is { } o)
            {
                LawFitJson.Write(o.FullName, fit);
                Console.WriteLine($"wrote {o.FullName}");
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>A folder is a sweep (its finished runs); anything else a CSV or JSONL file.</summary>
    static (LawTable Table, IReadOnlyList<string> LeftOut) ReadTable(string path)
    {
        if (!Directory.Exists(path)) return (LawTable.ReadFile(path), []);
        if (!File.Exists(Path.Combine(path, SweepStore.FileName)))
            throw new CptLabException($"--data {path}: a folder, but not a sweep folder (it has no {SweepStore.FileName}); give a CSV or JSONL file, or a folder written by `cptlab sweep run`");
        var sweep = SweepLawTable.Read(path);
        return (sweep.Table, sweep.LeftOut);
    }

    static double? ParseDelta(string s)
    {
        if (s.Equals("mad", StringComparison.OrdinalIgnoreCase)) return null;
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d > 0 && double.IsFinite(d)) return d;
        throw new CptLabException($"--huber-delta '{s}': give a positive number (e.g. 1e-3) or 'mad'");
    }

    static LossSpace ParseLoss(string s) => s.ToLowerInvariant() switch
    {
        "log" => LossSpace.Log,
        "linear" => LossSpace.Linear,
        _ => throw new CptLabException($"--loss '{s}': give 'log' (residuals on log L) or 'linear' (residuals on L)"),
    };

    static Dictionary<string, string> ParseInputs(string[] pairs)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, column) in ParsePairs(pairs, "--input", "NAME=COLUMN, the law's input name and the table's column", "--input r=almr"))
            if (!map.TryAdd(name, column))
                throw new CptLabException($"--input {name} is given twice");
        return map;
    }

    static IEnumerable<(string Key, string Value)> ParsePairs(string[] pairs, string option, string form, string example)
    {
        foreach (var p in pairs)
        {
            var eq = p.IndexOf('=');
            if (eq <= 0 || eq == p.Length - 1)
                throw new CptLabException($"{option} '{p}': write {form} (e.g. {example})");
            yield return (p[..eq].Trim(), p[(eq + 1)..].Trim());
        }
    }

    static int NonNegative(int v, string option) =>
        v >= 0 ? v : throw new CptLabException($"{option} {v}: must be ≥ 0");

    static double ParseConfidence(double v) =>
        v is > 0 and < 1 ? v : throw new CptLabException($"--confidence {v.ToString(CultureInfo.InvariantCulture)}: must lie strictly between 0 and 1 (e.g. 0.95)");
}
