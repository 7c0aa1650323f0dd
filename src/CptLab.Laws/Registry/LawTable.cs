using System.Globalization;
using System.Text.Json;
using CptLab.Core;

namespace CptLab.Laws.Registry;

/// <summary>
/// A table of observations for the table fitter: named columns of cells, each row with the place it came from
/// (file and line, or a run id) so that a bad cell is reported where it is. Cells stay text until a fit binds a
/// column, so columns the law does not use may hold anything (names, notes).
/// Readers: CSV (a header row of names; commas; fields may be double-quoted; blank lines and lines starting
/// with '#' skipped) and JSONL (one JSON object per line, numbers or numeric strings). A sweep folder is read
/// by CptLab.Sweep's SweepLawTable.
/// </summary>
public sealed class LawTable
{
    readonly Dictionary<string, int> _index;

    public LawTable(string source, IReadOnlyList<string> columns, IReadOnlyList<LawTableRow> rows)
    {
        Source = source;
        Columns = columns;
        Rows = rows;
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < columns.Count; i++)
            if (!_index.TryAdd(columns[i], i))
                throw new CptLabException($"{source}: column '{columns[i]}' appears twice in the header");
        foreach (var row in rows)
            if (row.Cells.Count != columns.Count)
                throw new CptLabException($"{source}: {row.Where} has {row.Cells.Count} fields, the header has {columns.Count}");
    }

    /// <summary>Where the table came from (a path), for messages.</summary>
    public string Source { get; }
    public IReadOnlyList<string> Columns { get; }
    public IReadOnlyList<LawTableRow> Rows { get; }

    public bool Has(string column) => _index.ContainsKey(column);

    /// <summary>A table of numbers built in code (tests, generated fixtures); rows are named "row N".</summary>
    public static LawTable FromColumns(string source, IReadOnlyDictionary<string, double[]> columns)
    {
        var names = columns.Keys.ToArray();
        var n = columns.Values.Select(v => v.Length).Distinct().ToArray();
        if (n.Length > 1) throw new ArgumentException("columns of different lengths", nameof(columns));
        var rows = Enumerable.Range(0, n.Length == 0 ? 0 : n[0])
            .Select(i => new LawTableRow($"row {i + 1}", names.Select(c => columns[c][i].ToString("R", CultureInfo.InvariantCulture)).ToArray()))
            .ToArray();
        return new LawTable(source, names, rows);
    }

    /// <summary>The column as numbers; a missing column or a cell that is not a finite number is a user error naming the file, line and column.</summary>
    public double[] Numbers(string column, string role)
    {
        if (!_index.TryGetValue(column, out var c))
            throw new CptLabException($"{Source}: no column '{column}' ({role}); the table's columns are: {string.Join(", ", Columns)}");
        var v = new double[Rows.Count];
        for (var i = 0; i < Rows.Count; i++)
        {
            var cell = Rows[i].Cells[c].Trim();
            if (cell.Length == 0)
                throw new CptLabException($"{Source}: {Rows[i].Where}, column '{column}': the value is missing");
            if (!double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]) || !double.IsFinite(v[i]))
                throw new CptLabException($"{Source}: {Rows[i].Where}, column '{column}': '{cell}' is not a finite number");
        }
        return v;
    }

    /// <summary>
    /// The rows whose cell in <paramref name="column"/> equals <paramref name="value"/> (`--where lr=1e-4`): as numbers
    /// when both parse (to 1e-9 relative, so 1e-4 matches 0.0001), else as text. The result's source names the selection.
    /// </summary>
    public LawTable Where(string column, string value)
    {
        if (!_index.TryGetValue(column, out var c))
            throw new CptLabException($"{Source}: --where {column}=…: no column '{column}'; the table's columns are: {string.Join(", ", Columns)}");
        var wanted = ParseNumber(value);
        bool Match(string cell) => wanted is { } w && ParseNumber(cell) is { } v
            ? Math.Abs(v - w) <= 1e-9 * Math.Max(Math.Abs(v), Math.Abs(w))
            : string.Equals(cell.Trim(), value.Trim(), StringComparison.Ordinal);
        var rows = Rows.Where(r => Match(r.Cells[c])).ToArray();
        if (rows.Length == 0)
        {
            var values = Rows.Select(r => r.Cells[c].Trim()).Distinct().ToArray();
            throw new CptLabException($"{Source}: no row has {column} = {value}; the column's values are: {string.Join(", ", values.Take(20))}{(values.Length > 20 ? $", … ({values.Length} in all)" : "")}");
        }
        return new LawTable($"{Source} (rows with {column} = {value})", Columns, rows);
    }

    static double? ParseNumber(string s) =>
        double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : null;

    /// <summary>Reads a CSV or JSONL file (by extension: .jsonl/.ndjson are JSONL, anything else CSV).</summary>
    public static LawTable ReadFile(string path)
    {
        if (Directory.Exists(path))
            throw new CptLabException($"{path} is a folder; the law table reader takes a CSV or JSONL file (a sweep folder is read by `cptlab laws fit --data SWEEP_DIR`)");
        if (!File.Exists(path)) throw new CptLabException($"{path}: file not found");
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext is ".jsonl" or ".ndjson" ? ReadJsonl(path) : ReadCsv(path);
    }

    public static LawTable ReadCsv(string path)
    {
        string[]? header = null;
        var rows = new List<LawTableRow>();
        var lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#')) continue;
            var fields = SplitCsv(line, path, lineNo);
            if (header is null)
            {
                header = fields.Select(f => f.Trim()).ToArray();
                if (header.Any(h => h.Length == 0)) throw new CptLabException($"{path}: line {lineNo}: the header has an empty column name");
                continue;
            }
            if (fields.Length != header.Length)
                throw new CptLabException($"{path}: line {lineNo} has {fields.Length} fields, the header (line 1) has {header.Length}");
            rows.Add(new LawTableRow($"line {lineNo}", fields));
        }
        if (header is null) throw new CptLabException($"{path}: empty file; a CSV table needs a header row naming its columns (e.g. n,d,loss)");
        return new LawTable(path, header, rows);
    }

    static string[] SplitCsv(string line, string path, int lineNo)
    {
        var fields = new List<string>();
        var sb = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else sb.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(sb.ToString()); sb.Clear(); }
            else sb.Append(ch);
        }
        if (quoted) throw new CptLabException($"{path}: line {lineNo}: unterminated double quote");
        fields.Add(sb.ToString());
        return fields.ToArray();
    }

    public static LawTable ReadJsonl(string path)
    {
        var columns = new List<string>();
        var records = new List<(string Where, Dictionary<string, string> Values)>();
        var lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            if (raw.Trim().Length == 0) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(raw); }
            catch (JsonException e) { throw new CptLabException($"{path}: line {lineNo}: not a JSON object ({e.Message.Split(" LineNumber")[0]})"); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new CptLabException($"{path}: line {lineNo}: expected a JSON object, found {doc.RootElement.ValueKind}");
                var values = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (!columns.Contains(p.Name)) columns.Add(p.Name);
                    values[p.Name] = p.Value.ValueKind switch
                    {
                        JsonValueKind.Number => p.Value.GetRawText(),
                        JsonValueKind.String => p.Value.GetString()!,
                        _ => p.Value.GetRawText(),
                    };
                }
                records.Add(($"line {lineNo}", values));
            }
        }
        if (records.Count == 0) throw new CptLabException($"{path}: no JSON objects; a JSONL table has one object per line (e.g. {{\"n\": 7e7, \"d\": 1.4e9, \"loss\": 3.1}})");
        // A key missing from a record becomes an empty cell: reported as "'' is not a finite number" only if a fit uses that column.
        var rows = records.Select(r => new LawTableRow(r.Where, columns.Select(c => r.Values.GetValueOrDefault(c, "")).ToArray())).ToArray();
        return new LawTable(path, columns, rows);
    }
}

/// <summary>One row: where it came from ("line 12", "run a0.3-lr1e-4-s0") and its cells in column order.</summary>
public sealed record LawTableRow(string Where, IReadOnlyList<string> Cells);
