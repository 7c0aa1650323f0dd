using System.Globalization;
using CptLab.Core;
using Microsoft.Data.Sqlite;

namespace CptLab.Sweep;

public enum RunStatus { Pending, Running, Done, Failed }

/// <summary>One cell of the sweep (ALMR, LR, seed) as the store holds it.</summary>
public sealed record RunRecord(
    string Id, double Almr, double Lr, long Seed, RunStatus Status, string Config, string RunDir, int Attempts,
    double WallSeconds, long? Steps, long? Tokens, string? Error, string? ProposedBy, string CreatedUtc, string? FinishedUtc);

/// <summary>A validation measurement of one source: after <see cref="Step"/> steps / <see cref="Tokens"/> tokens.</summary>
public sealed record SourceLoss(long Step, long Tokens, string Source, double Loss, double BitsPerByte, long ValidationTokens);

/// <summary>What a finished child run left behind, recorded in one transaction.</summary>
public sealed record RunOutcome(
    IReadOnlyList<SourceLoss> Curve, IReadOnlyList<SourceLoss> Final, IReadOnlyDictionary<string, double> FinalByLanguage, long Steps, long Tokens);

public sealed record AttemptRecord(string RunId, int Attempt, string StartedUtc, double WallSeconds, int? ExitCode, long ResumedFromStep);

/// <summary>
/// The sweep's results database (SQLite, one file per sweep). Every change is one transaction: a run's curve,
/// final losses and status "done" appear together or not at all, so a runner killed at any instant (kill -9
/// included) leaves either the whole result or none of it, never a half. A run's identity is its cell
/// (ALMR, LR, seed), which is the primary key: a cell is stored once, however often the runner restarts.
/// WAL journal, so `cptlab sweep status` reads while the runner writes; synchronous=FULL, so a committed result
/// survives power loss too. Connections are not pooled (a pooled connection would keep the file open after
/// Dispose). Thread-safe: the runner's workers share one store.
/// Tables: meta (spec, fingerprint, adaptive state), base_loss (base model per source), runs, attempts (one row
/// per child process), curve (validation per step and source), final_loss (per source), final_language.
/// </summary>
public sealed class SweepStore : IDisposable
{
    public const string FileName = "sweep.db";
    const int SchemaVersion = 1;

    readonly SqliteConnection _db;
    readonly object _gate = new();

    public string Path { get; }

    SweepStore(string path, SqliteConnection db) => (Path, _db) = (path, db);

    /// <summary>Opens (creating when asked) the database of the sweep folder <paramref name="sweepDir"/>.</summary>
    public static SweepStore Open(string sweepDir, bool create = true)
    {
        var path = System.IO.Path.Combine(sweepDir, FileName);
        if (!create && !File.Exists(path))
            throw new CptLabException($"{sweepDir} is not a sweep folder: it has no {FileName}; start the sweep with `cptlab sweep run --spec FILE --dir {sweepDir}`");
        if (create) Directory.CreateDirectory(sweepDir);
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = 60,
        }.ToString();
        var db = new SqliteConnection(cs);
        try
        {
            db.Open();
            var store = new SweepStore(path, db);
            store.Execute("PRAGMA journal_mode=WAL;");
            store.Execute("PRAGMA synchronous=FULL;");
            store.Execute("PRAGMA foreign_keys=ON;");
            store.CreateSchema();
            return store;
        }
        catch (SqliteException e)
        {
            db.Dispose();
            throw new CorruptFileException(path, $"cannot open the sweep database: {e.Message}");
        }
    }

    void CreateSchema()
    {
        lock (_gate)
        {
            using var tx = _db.BeginTransaction();
            Execute("""
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS base_loss(
                    source TEXT PRIMARY KEY, loss REAL NOT NULL, bpb REAL, tokens INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS runs(
                    id TEXT PRIMARY KEY,
                    almr REAL NOT NULL, lr REAL NOT NULL, seed INTEGER NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
                    config TEXT NOT NULL, run_dir TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0, wall_seconds REAL NOT NULL DEFAULT 0,
                    steps INTEGER, tokens INTEGER, error TEXT, proposed_by TEXT,
                    created_utc TEXT NOT NULL, finished_utc TEXT,
                    UNIQUE (almr, lr, seed));
                CREATE TABLE IF NOT EXISTS attempts(
                    run_id TEXT NOT NULL REFERENCES runs(id), attempt INTEGER NOT NULL,
                    started_utc TEXT NOT NULL, wall_seconds REAL NOT NULL, exit_code INTEGER, resumed_from_step INTEGER NOT NULL,
                    PRIMARY KEY (run_id, attempt));
                CREATE TABLE IF NOT EXISTS curve(
                    run_id TEXT NOT NULL REFERENCES runs(id), step INTEGER NOT NULL, tokens INTEGER NOT NULL, source TEXT NOT NULL,
                    loss REAL, bpb REAL, val_tokens INTEGER NOT NULL,
                    PRIMARY KEY (run_id, step, source));
                CREATE TABLE IF NOT EXISTS final_loss(
                    run_id TEXT NOT NULL REFERENCES runs(id), source TEXT NOT NULL, loss REAL, bpb REAL, val_tokens INTEGER NOT NULL,
                    PRIMARY KEY (run_id, source));
                CREATE TABLE IF NOT EXISTS final_language(
                    run_id TEXT NOT NULL REFERENCES runs(id), language TEXT NOT NULL, loss REAL,
                    PRIMARY KEY (run_id, language));
                """, tx);
            var version = Scalar("SELECT value FROM meta WHERE key = 'schema_version'", tx) as string;
            if (version is null) Execute($"INSERT INTO meta(key, value) VALUES ('schema_version', '{SchemaVersion}')", tx);
            else if (version != SchemaVersion.ToString(CultureInfo.InvariantCulture))
                throw new CorruptFileException(Path, $"schema version {version}, this CptLab reads version {SchemaVersion}");
            tx.Commit();
        }
    }

    // ---- meta ----

    public string? GetMeta(string key)
    {
        lock (_gate) return Scalar("SELECT value FROM meta WHERE key = $k", null, ("$k", key)) as string;
    }

    public void SetMeta(string key, string value)
    {
        lock (_gate)
            Execute("INSERT INTO meta(key, value) VALUES ($k, $v) ON CONFLICT(key) DO UPDATE SET value = excluded.value", null, ("$k", key), ("$v", value));
    }

    // ---- base model ----

    public void SetBaseLosses(IReadOnlyList<SourceLoss> losses)
    {
        lock (_gate)
        {
            using var tx = _db.BeginTransaction();
            Execute("DELETE FROM base_loss", tx);
            foreach (var l in losses)
                Execute("INSERT INTO base_loss(source, loss, bpb, tokens) VALUES ($s, $l, $b, $t)", tx,
                    ("$s", l.Source), ("$l", l.Loss), ("$b", Nullable(l.BitsPerByte)), ("$t", l.ValidationTokens));
            tx.Commit();
        }
    }

    public IReadOnlyList<SourceLoss> BaseLosses()
    {
        lock (_gate)
            return Query("SELECT source, loss, bpb, tokens FROM base_loss ORDER BY source", null,
                r => new SourceLoss(0, 0, r.GetString(0), r.GetDouble(1), r.IsDBNull(2) ? double.NaN : r.GetDouble(2), r.GetInt64(3)));
    }

    // ---- runs ----

    /// <summary>Adds the cell as a pending run unless it is already stored (in any status). Returns whether it was added.</summary>
    public bool AddRun(string id, double almr, double lr, long seed, string config, string runDir, string proposedBy)
    {
        lock (_gate)
            return Execute("""
                INSERT INTO runs(id, almr, lr, seed, status, config, run_dir, proposed_by, created_utc)
                VALUES ($id, $a, $lr, $s, 'pending', $c, $d, $p, $t) ON CONFLICT DO NOTHING
                """, null, ("$id", id), ("$a", almr), ("$lr", lr), ("$s", seed), ("$c", config), ("$d", runDir), ("$p", proposedBy), ("$t", Now())) == 1;
    }

    public IReadOnlyList<RunRecord> Runs(RunStatus? status = null)
    {
        lock (_gate)
            return Query($"""
                SELECT id, almr, lr, seed, status, config, run_dir, attempts, wall_seconds, steps, tokens, error, proposed_by, created_utc, finished_utc
                FROM runs {(status is null ? "" : "WHERE status = $st")} ORDER BY almr, lr, seed
                """, null, ReadRun, status is { } s ? [("$st", Name(s))] : []);
    }

    public RunRecord? Run(string id)
    {
        lock (_gate)
            return Query("""
                SELECT id, almr, lr, seed, status, config, run_dir, attempts, wall_seconds, steps, tokens, error, proposed_by, created_utc, finished_utc
                FROM runs WHERE id = $id
                """, null, ReadRun, [("$id", id)]).SingleOrDefault();
    }

    /// <summary>Marks a run as started by a new child process (with the config it runs) and returns the attempt number.</summary>
    public int StartAttempt(string id, long resumedFromStep, string config)
    {
        lock (_gate)
        {
            using var tx = _db.BeginTransaction();
            Execute("UPDATE runs SET status = 'running', attempts = attempts + 1, config = $c WHERE id = $id", tx, ("$id", id), ("$c", config));
            var attempt = Convert.ToInt32(Scalar("SELECT attempts FROM runs WHERE id = $id", tx, ("$id", id)), CultureInfo.InvariantCulture);
            Execute("INSERT INTO attempts(run_id, attempt, started_utc, wall_seconds, exit_code, resumed_from_step) VALUES ($id, $n, $t, 0, NULL, $r)", tx,
                ("$id", id), ("$n", attempt), ("$t", Now()), ("$r", resumedFromStep));
            tx.Commit();
            return attempt;
        }
    }

    /// <summary>
    /// Closes an attempt. With an outcome the run becomes done (curve, final losses and status in the same
    /// transaction); with an error it becomes failed; with neither it goes back to pending (interrupted).
    /// </summary>
    public void FinishAttempt(string id, int attempt, double wallSeconds, int? exitCode, RunOutcome? outcome, string? error)
    {
        lock (_gate)
        {
            using var tx = _db.BeginTransaction();
            Execute("UPDATE attempts SET wall_seconds = $w, exit_code = $e WHERE run_id = $id AND attempt = $n", tx,
                ("$w", wallSeconds), ("$e", exitCode), ("$id", id), ("$n", attempt));
            Execute("UPDATE runs SET wall_seconds = wall_seconds + $w WHERE id = $id", tx, ("$w", wallSeconds), ("$id", id));
            if (outcome is not null)
            {
                // A run is recorded once: clear anything of an earlier recording (there is none unless a result was
                // deliberately requeued), then write the whole result.
                foreach (var table in new[] { "curve", "final_loss", "final_language" })
                    Execute($"DELETE FROM {table} WHERE run_id = $id", tx, ("$id", id));
                foreach (var c in outcome.Curve)
                    Execute("INSERT INTO curve(run_id, step, tokens, source, loss, bpb, val_tokens) VALUES ($id, $s, $t, $src, $l, $b, $v)", tx,
                        ("$id", id), ("$s", c.Step), ("$t", c.Tokens), ("$src", c.Source), ("$l", Nullable(c.Loss)), ("$b", Nullable(c.BitsPerByte)), ("$v", c.ValidationTokens));
                foreach (var f in outcome.Final)
                    Execute("INSERT INTO final_loss(run_id, source, loss, bpb, val_tokens) VALUES ($id, $src, $l, $b, $v)", tx,
                        ("$id", id), ("$src", f.Source), ("$l", Nullable(f.Loss)), ("$b", Nullable(f.BitsPerByte)), ("$v", f.ValidationTokens));
                foreach (var (lang, loss) in outcome.FinalByLanguage)
                    Execute("INSERT INTO final_language(run_id, language, loss) VALUES ($id, $lang, $l)", tx, ("$id", id), ("$lang", lang), ("$l", Nullable(loss)));
                Execute("UPDATE runs SET status = $st, steps = $s, tokens = $t, error = $err, finished_utc = $f WHERE id = $id", tx,
                    ("$st", error is null ? "done" : "failed"), ("$s", outcome.Steps), ("$t", outcome.Tokens), ("$err", error), ("$f", Now()), ("$id", id));
            }
            else if (error is not null)
                Execute("UPDATE runs SET status = 'failed', error = $err, finished_utc = $f WHERE id = $id", tx, ("$err", error), ("$f", Now()), ("$id", id));
            else
                Execute("UPDATE runs SET status = 'pending' WHERE id = $id", tx, ("$id", id));
            tx.Commit();
        }
    }

    /// <summary>Runs left "running" by a runner that died are pending again (they resume from their checkpoints).</summary>
    public int RequeueInterrupted()
    {
        lock (_gate) return Execute("UPDATE runs SET status = 'pending' WHERE status = 'running'");
    }

    public int RequeueFailed()
    {
        lock (_gate) return Execute("UPDATE runs SET status = 'pending', error = NULL, finished_utc = NULL WHERE status = 'failed'");
    }

    public IReadOnlyList<AttemptRecord> Attempts(string? runId = null)
    {
        lock (_gate)
            return Query($"SELECT run_id, attempt, started_utc, wall_seconds, exit_code, resumed_from_step FROM attempts {(runId is null ? "" : "WHERE run_id = $id")} ORDER BY run_id, attempt",
                null, r => new AttemptRecord(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetDouble(3), r.IsDBNull(4) ? null : r.GetInt32(4), r.GetInt64(5)),
                runId is null ? [] : [("$id", runId)]);
    }

    public IReadOnlyList<SourceLoss> Curve(string runId)
    {
        lock (_gate)
            return Query("SELECT step, tokens, source, loss, bpb, val_tokens FROM curve WHERE run_id = $id ORDER BY step, source", null, ReadLoss, [("$id", runId)]);
    }

    public IReadOnlyList<SourceLoss> FinalLosses(string runId)
    {
        lock (_gate)
            return Query("SELECT runs.steps, runs.tokens, source, loss, bpb, val_tokens FROM final_loss JOIN runs ON runs.id = run_id WHERE run_id = $id ORDER BY source",
                null, ReadLoss, [("$id", runId)]);
    }

    public IReadOnlyDictionary<string, double> FinalByLanguage(string runId)
    {
        lock (_gate)
            return Query("SELECT language, loss FROM final_language WHERE run_id = $id", null, r => (r.GetString(0), r.IsDBNull(1) ? double.NaN : r.GetDouble(1)), [("$id", runId)])
                .ToDictionary(p => p.Item1, p => p.Item2);
    }

    public void Dispose()
    {
        lock (_gate) _db.Dispose();
    }

    // ---- plumbing ----

    static RunRecord ReadRun(SqliteDataReader r) => new(
        r.GetString(0), r.GetDouble(1), r.GetDouble(2), r.GetInt64(3), Enum.Parse<RunStatus>(r.GetString(4), ignoreCase: true),
        r.GetString(5), r.GetString(6), r.GetInt32(7), r.GetDouble(8), r.IsDBNull(9) ? null : r.GetInt64(9), r.IsDBNull(10) ? null : r.GetInt64(10),
        r.IsDBNull(11) ? null : r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12), r.GetString(13), r.IsDBNull(14) ? null : r.GetString(14));

    static SourceLoss ReadLoss(SqliteDataReader r) => new(
        r.IsDBNull(0) ? 0 : r.GetInt64(0), r.IsDBNull(1) ? 0 : r.GetInt64(1), r.GetString(2),
        r.IsDBNull(3) ? double.NaN : r.GetDouble(3), r.IsDBNull(4) ? double.NaN : r.GetDouble(4), r.GetInt64(5));

    static string Name(RunStatus s) => s.ToString().ToLowerInvariant();

    /// <summary>SQLite has no NaN (it stores NULL); non-finite values are stored as NULL and read back as NaN.</summary>
    static object? Nullable(double v) => double.IsFinite(v) ? v : null;

    static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    int Execute(string sql, SqliteTransaction? tx = null, params (string Name, object? Value)[] args)
    {
        using var cmd = Command(sql, tx, args);
        return cmd.ExecuteNonQuery();
    }

    object? Scalar(string sql, SqliteTransaction? tx, params (string Name, object? Value)[] args)
    {
        using var cmd = Command(sql, tx, args);
        return cmd.ExecuteScalar();
    }

    List<T> Query<T>(string sql, SqliteTransaction? tx, Func<SqliteDataReader, T> read, (string Name, object? Value)[]? args = null)
    {
        using var cmd = Command(sql, tx, args ?? []);
        using var reader = cmd.ExecuteReader();
        var list = new List<T>();
        while (reader.Read()) list.Add(read(reader));
        return list;
    }

    SqliteCommand Command(string sql, SqliteTransaction? tx, (string Name, object? Value)[] args)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in args) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }
}
