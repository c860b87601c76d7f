using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>Run states as stored in <c>runs.state</c>.</summary>
public static class RunStates
{
    public const string Pending = "pending";
    public const string Planning = "planning";
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static bool IsFinal(string state) => state is Completed or Failed or Cancelled;
}

/// <summary>Shard states as stored in <c>run_shards.state</c>.</summary>
public static class ShardStates
{
    public const string Pending = "pending";
    public const string Leased = "leased";
    public const string Done = "done";
    public const string Failed = "failed";
}

/// <summary>Shard kinds: one container blob holding many records, or a group of single-record blobs.</summary>
public static class ShardKinds
{
    public const string Container = "container";
    public const string Records = "records";
}

/// <summary>A model as registered in <c>models</c>.</summary>
public sealed record ModelRecord(
    string ModelId,
    string Name,
    string SourceHash,
    string ArchitectureJson,
    int HiddenSize,
    IReadOnlyList<string> LabelCodes,
    bool Untrained,
    string PreprocessingProfile);

/// <summary>
/// What a new run is: input, model and options. The input is <see cref="InputContainer"/> with either
/// <see cref="InputPrefix"/> (every blob under it) or <see cref="InputManifest"/> (a blob of that container listing
/// record paths, one per line). An <see cref="Incremental"/> run scores only records without a current score for
/// the model (none yet, or one from a source blob whose ETag has changed since). A run a schedule started names
/// the schedule and, unless it was started by hand, the cron due time it was started for.
/// </summary>
public sealed record NewRun(
    Guid RunId,
    string Name,
    string InputContainer,
    string InputPrefix,
    string ModelId,
    string ModelPath,
    string PreprocessingProfile,
    string Aggregation,
    int MaxWindows,
    int BatchSize,
    int ShardSize,
    int MaxAttempts,
    int LeaseSeconds,
    string? InputManifest = null,
    bool Incremental = false,
    Guid? ScheduleId = null,
    DateTime? ScheduledFor = null);

/// <summary>A row of <c>runs</c>.</summary>
public sealed record RunRecord(
    Guid RunId,
    string Name,
    string InputContainer,
    string InputPrefix,
    string ModelId,
    string ModelPath,
    string PreprocessingProfile,
    string Aggregation,
    int MaxWindows,
    int BatchSize,
    int ShardSize,
    int MaxAttempts,
    int LeaseSeconds,
    string State,
    bool CancelRequested,
    bool PlanningComplete,
    string? PlanningToken,
    IReadOnlyList<string> PlanningCarry,
    int ShardsPlanned,
    long RecordsPlanned,
    long RecordsDone,
    long RecordsQuarantined,
    long RecordsFailed,
    int ShardsDone,
    int ShardsFailed,
    double RatePerSecond,
    double? EtaSeconds,
    string? Error,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    DateTime UpdatedAt,
    string? InputManifest = null,
    bool Incremental = false,
    long RecordsSkipped = 0,
    long PlanningSkipped = 0,
    IReadOnlyList<string>? PlanningCarryETags = null,
    Guid? ScheduleId = null,
    DateTime? ScheduledFor = null,
    long ManifestDuplicates = 0);

/// <summary>A row of <c>run_shards</c>.</summary>
public sealed record ShardRecord(
    Guid RunId,
    int ShardNo,
    string Kind,
    IReadOnlyList<string> Blobs,
    int RecordsPlanned,
    string State,
    int Attempts,
    string? LeaseOwner,
    DateTime? LeaseDeadline,
    int RecordsDone,
    int RecordsQuarantined,
    string? LastError,
    int RecordsSkipped = 0);

/// <summary>The progress columns of a run that its coordinator maintains.</summary>
public sealed record RunProgressUpdate(
    Guid RunId,
    string State,
    long RecordsPlanned,
    long RecordsDone,
    long RecordsQuarantined,
    long RecordsFailed,
    int ShardsDone,
    int ShardsFailed,
    double RatePerSecond,
    double? EtaSeconds,
    string? Error,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    long RecordsSkipped = 0);

/// <summary>
/// Postgres adapter for models, runs and run shards. The client creates runs and requests cancellation here;
/// a run's coordinator grain is the only writer of its progress and shard rows. Every call is retried on
/// transient connection failures; every statement is idempotent or runs in one transaction.
/// </summary>
public sealed class RunStore(NpgsqlDataSource dataSource, TransientRetry? retry = null)
{
    private const string RunColumns =
        "run_id, name, input_container, input_prefix, model_id, model_path, preprocessing_profile, aggregation, max_windows, " +
        "batch_size, shard_size, max_attempts, lease_seconds, state, cancel_requested, planning_complete, planning_token, planning_carry, " +
        "shards_planned, records_planned, records_done, records_quarantined, records_failed, shards_done, shards_failed, rate_per_second, " +
        "eta_seconds, error, created_at, started_at, finished_at, updated_at, input_manifest, incremental, records_skipped, planning_skipped, " +
        "planning_carry_etags, schedule_id, scheduled_for, manifest_duplicates";

    private const string ShardColumns =
        "run_id, shard_no, kind, blobs, records_planned, state, attempts, lease_owner, lease_deadline, records_done, records_quarantined, last_error, " +
        "records_skipped";

    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>Registers a model; a model id already present is left as it is (the id names the content).</summary>
    public Task RegisterModelAsync(ModelRecord model, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "insert into models (model_id, name, source_hash, architecture, hidden_size, label_codes, untrained, preprocessing_profile) " +
                    "values (@id, @name, @hash, @arch, @hidden, @labels, @untrained, @profile) on conflict (model_id) do nothing");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Text) { Value = model.ModelId });
                cmd.Parameters.Add(new NpgsqlParameter("name", NpgsqlDbType.Text) { Value = model.Name });
                cmd.Parameters.Add(new NpgsqlParameter("hash", NpgsqlDbType.Text) { Value = model.SourceHash });
                cmd.Parameters.Add(new NpgsqlParameter("arch", NpgsqlDbType.Jsonb) { Value = model.ArchitectureJson });
                cmd.Parameters.Add(new NpgsqlParameter("hidden", NpgsqlDbType.Integer) { Value = model.HiddenSize });
                cmd.Parameters.Add(new NpgsqlParameter("labels", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = model.LabelCodes.ToArray() });
                cmd.Parameters.Add(new NpgsqlParameter("untrained", NpgsqlDbType.Boolean) { Value = model.Untrained });
                cmd.Parameters.Add(new NpgsqlParameter("profile", NpgsqlDbType.Text) { Value = model.PreprocessingProfile });
                await cmd.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);

    /// <summary>The label codes of a registered model, in output order; null when the model is unknown.</summary>
    public Task<IReadOnlyList<string>?> GetModelLabelsAsync(string modelId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<string>?>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select label_codes from models where model_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Text) { Value = modelId });
                var value = await cmd.ExecuteScalarAsync(ct);
                return value is string[] codes ? codes : null;
            },
            cancellationToken);

    /// <summary>
    /// Creates a run in state <c>pending</c>; a silo's worker wakes its coordinator. Throws
    /// <see cref="ArgumentException"/> naming the field when a text value cannot be stored (see <see cref="PostgresText"/>).
    /// </summary>
    public Task CreateRunAsync(NewRun run, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        PostgresText.Require(run.Name, "run name");
        PostgresText.Require(run.InputContainer, "input container");
        PostgresText.Require(run.InputPrefix, "input prefix");
        PostgresText.Require(run.ModelPath, "model path");
        PostgresText.Require(run.PreprocessingProfile, "preprocessing profile");
        if (run.InputManifest is not null)
        {
            PostgresText.Require(run.InputManifest, "manifest blob name");
        }

        return _retry.RunAsync(
            async ct =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                await using var cmd = InsertRunCommand(connection, null, run);
                await cmd.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);
    }

    /// <summary>
    /// The insert of a new run (nothing when its id exists), on <paramref name="connection"/> and in
    /// <paramref name="transaction"/>. The columns of later migrations (0011: incremental, schedule) are named only
    /// when set, so a plain run can still be created in a database migrated before them.
    /// </summary>
    internal static NpgsqlCommand InsertRunCommand(NpgsqlConnection connection, NpgsqlTransaction? transaction, NewRun run)
    {
        var columns = "run_id, name, input_container, input_prefix, model_id, model_path, preprocessing_profile, aggregation, " +
            "max_windows, batch_size, shard_size, max_attempts, lease_seconds, state, input_manifest";
        var values = "@id, @name, @container, @prefix, @model, @path, @profile, @agg, @maxw, @batch, @shard, @attempts, @lease, 'pending', @manifest";
        if (run.Incremental || run.ScheduleId is not null)
        {
            columns += ", incremental, schedule_id, scheduled_for";
            values += ", @incremental, @schedule, @due";
        }

        var cmd = new NpgsqlCommand($"insert into runs ({columns}) values ({values}) on conflict (run_id) do nothing", connection, transaction);
        cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = run.RunId });
        cmd.Parameters.Add(new NpgsqlParameter("name", NpgsqlDbType.Text) { Value = run.Name });
        cmd.Parameters.Add(new NpgsqlParameter("container", NpgsqlDbType.Text) { Value = run.InputContainer });
        cmd.Parameters.Add(new NpgsqlParameter("prefix", NpgsqlDbType.Text) { Value = run.InputPrefix });
        cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = run.ModelId });
        cmd.Parameters.Add(new NpgsqlParameter("path", NpgsqlDbType.Text) { Value = run.ModelPath });
        cmd.Parameters.Add(new NpgsqlParameter("profile", NpgsqlDbType.Text) { Value = run.PreprocessingProfile });
        cmd.Parameters.Add(new NpgsqlParameter("agg", NpgsqlDbType.Text) { Value = run.Aggregation });
        cmd.Parameters.Add(new NpgsqlParameter("maxw", NpgsqlDbType.Integer) { Value = run.MaxWindows });
        cmd.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Integer) { Value = run.BatchSize });
        cmd.Parameters.Add(new NpgsqlParameter("shard", NpgsqlDbType.Integer) { Value = run.ShardSize });
        cmd.Parameters.Add(new NpgsqlParameter("attempts", NpgsqlDbType.Integer) { Value = run.MaxAttempts });
        cmd.Parameters.Add(new NpgsqlParameter("lease", NpgsqlDbType.Integer) { Value = run.LeaseSeconds });
        cmd.Parameters.Add(new NpgsqlParameter("manifest", NpgsqlDbType.Text) { Value = (object?)run.InputManifest ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("incremental", NpgsqlDbType.Boolean) { Value = run.Incremental });
        cmd.Parameters.Add(new NpgsqlParameter("schedule", NpgsqlDbType.Uuid) { Value = run.ScheduleId is { } schedule ? schedule : DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("due", NpgsqlDbType.TimestampTz) { Value = Utc(run.ScheduledFor) });
        return cmd;
    }

    /// <summary>A timestamp parameter value: UTC, or null.</summary>
    internal static object Utc(DateTime? value) => value is { } v ? DateTime.SpecifyKind(v, DateTimeKind.Utc) : DBNull.Value;

    public Task<RunRecord?> GetRunAsync(Guid runId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand($"select {RunColumns} from runs where run_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? ReadRun(reader) : null;
            },
            cancellationToken);

    /// <summary>The most recent runs, newest first.</summary>
    public Task<IReadOnlyList<RunRecord>> ListRunsAsync(int limit = 100, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<RunRecord>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand($"select {RunColumns} from runs order by created_at desc, run_id limit @limit");
                cmd.Parameters.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = limit });
                return await cmd.ReadAllAsync(ReadRun, ct);
            },
            cancellationToken);

    /// <summary>Runs not yet finished, oldest first: the runs workers ask for leases.</summary>
    public Task<IReadOnlyList<Guid>> ListActiveRunIdsAsync(CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<Guid>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "select run_id from runs where state in ('pending', 'planning', 'running') order by created_at, run_id");
                return await cmd.ReadAllAsync(r => r.GetGuid(0), ct);
            },
            cancellationToken);

    /// <summary>Asks the run's coordinator to cancel it; false when the run is unknown or already finished.</summary>
    public Task<bool> RequestCancelAsync(Guid runId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "update runs set cancel_requested = true, updated_at = now() where run_id = @id and state in ('pending', 'planning', 'running')");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                return await cmd.ExecuteNonQueryAsync(ct) > 0;
            },
            cancellationToken);

    public Task<bool> IsCancelRequestedAsync(Guid runId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select cancel_requested from runs where run_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                return await cmd.ExecuteScalarAsync(ct) is true;
            },
            cancellationToken);

    /// <summary>A run's shards in order; without <paramref name="includeBlobs"/> their blob lists are left empty (less memory).</summary>
    public Task<IReadOnlyList<ShardRecord>> LoadShardsAsync(Guid runId, bool includeBlobs = true, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<ShardRecord>>(
            async ct =>
            {
                var columns = includeBlobs ? ShardColumns : ShardColumns.Replace("blobs,", "'{}'::text[],", StringComparison.Ordinal);
                await using var cmd = dataSource.CreateCommand($"select {columns} from run_shards where run_id = @id order by shard_no");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                var shards = new List<ShardRecord>();
                while (await reader.ReadAsync(ct))
                {
                    shards.Add(new ShardRecord(
                        reader.GetGuid(0),
                        reader.GetInt32(1),
                        reader.GetString(2),
                        reader.GetFieldValue<string[]>(3),
                        reader.GetInt32(4),
                        reader.GetString(5),
                        reader.GetInt32(6),
                        reader.IsDBNull(7) ? null : reader.GetString(7),
                        reader.IsDBNull(8) ? null : reader.GetFieldValue<DateTime>(8),
                        reader.GetInt32(9),
                        reader.GetInt32(10),
                        reader.IsDBNull(11) ? null : reader.GetString(11),
                        reader.GetInt32(12)));
                }

                return shards;
            },
            cancellationToken);

    /// <summary>How many of a run's shards are in each state.</summary>
    public Task<IReadOnlyDictionary<string, int>> ShardStateCountsAsync(Guid runId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyDictionary<string, int>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select state, count(*)::integer from run_shards where run_id = @id group by state");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                var counts = new Dictionary<string, int>(StringComparer.Ordinal);
                while (await reader.ReadAsync(ct))
                {
                    counts[reader.GetString(0)] = reader.GetInt32(1);
                }

                return counts;
            },
            cancellationToken);

    /// <summary>Which of <paramref name="keys"/> a manifest run has read in an earlier planning step (see <see cref="AppendPlanAsync"/>).</summary>
    public Task<IReadOnlySet<string>> ManifestKeysSeenAsync(Guid runId, IReadOnlyCollection<string> keys, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlySet<string>>(
            async ct =>
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                if (keys.Count == 0)
                {
                    return seen;
                }

                await using var cmd = dataSource.CreateCommand("select record_key from run_manifest_keys where run_id = @id and record_key = any(@keys)");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                cmd.Parameters.Add(new NpgsqlParameter("keys", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = keys.ToArray() });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    seen.Add(reader.GetString(0));
                }

                return seen;
            },
            cancellationToken);

    /// <summary>
    /// Records one planning step in one transaction: the new shards, the listing's continuation token, the blobs
    /// carried to the next step, and whether listing finished. Shards already stored (a step repeated after a crash
    /// that happened after its commit cannot happen; one repeated before it is simply redone) are skipped.
    /// For incremental runs, <paramref name="carryETags"/> are the carried blobs' ETags (in order) and
    /// <paramref name="planningSkipped"/> the run's total of records planning left out so far (an absolute value,
    /// so that a retried step does not count twice); null leaves the stored values as they are. For a manifest run,
    /// <paramref name="manifestKeys"/> are the records the step read (remembered until planning is complete, so that
    /// a later entry naming one of them is known as a duplicate) and <paramref name="manifestDuplicates"/> the run's
    /// total of duplicate entries so far.
    /// </summary>
    public Task AppendPlanAsync(
        Guid runId, IReadOnlyList<ShardRecord> shards, string? continuationToken, IReadOnlyList<string> carry, bool planningComplete,
        CancellationToken cancellationToken = default) =>
        AppendPlanAsync(runId, shards, continuationToken, carry, planningComplete, null, null, null, 0, cancellationToken);

    /// <inheritdoc cref="AppendPlanAsync(Guid, IReadOnlyList{ShardRecord}, string?, IReadOnlyList{string}, bool, CancellationToken)"/>
    public Task AppendPlanAsync(
        Guid runId, IReadOnlyList<ShardRecord> shards, string? continuationToken, IReadOnlyList<string> carry, bool planningComplete,
        IReadOnlyList<string>? carryETags, long? planningSkipped, IReadOnlyList<string>? manifestKeys, long manifestDuplicates,
        CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                await using var tx = await connection.BeginTransactionAsync(ct);
                if (manifestKeys is not null)
                {
                    await using var keys = new NpgsqlCommand(
                        planningComplete
                            ? "delete from run_manifest_keys where run_id = @id; update runs set manifest_duplicates = @dups where run_id = @id"
                            : "insert into run_manifest_keys (run_id, record_key) select @id, unnest(@keys) on conflict do nothing; " +
                              "update runs set manifest_duplicates = @dups where run_id = @id",
                        connection,
                        tx);
                    keys.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                    keys.Parameters.Add(new NpgsqlParameter("keys", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = manifestKeys.ToArray() });
                    keys.Parameters.Add(new NpgsqlParameter("dups", NpgsqlDbType.Bigint) { Value = manifestDuplicates });
                    await keys.ExecuteNonQueryAsync(ct);
                }

                if (shards.Count > 0)
                {
                    await using (var create = new NpgsqlCommand(
                        "create temp table shard_staging (like run_shards including defaults) on commit drop", connection, tx))
                    {
                        await create.ExecuteNonQueryAsync(ct);
                    }

                    await using (var import = await connection.BeginBinaryImportAsync(
                        "copy shard_staging (run_id, shard_no, kind, blobs, records_planned, state) from stdin (format binary)", ct))
                    {
                        foreach (var shard in shards)
                        {
                            await import.StartRowAsync(ct);
                            await import.WriteAsync(runId, NpgsqlDbType.Uuid, ct);
                            await import.WriteAsync(shard.ShardNo, NpgsqlDbType.Integer, ct);
                            await import.WriteAsync(shard.Kind, NpgsqlDbType.Text, ct);
                            await import.WriteAsync(shard.Blobs.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text, ct);
                            await import.WriteAsync(shard.RecordsPlanned, NpgsqlDbType.Integer, ct);
                            await import.WriteAsync(shard.State, NpgsqlDbType.Text, ct);
                        }

                        await import.CompleteAsync(ct);
                    }

                    await using var insert = new NpgsqlCommand(
                        "insert into run_shards select * from shard_staging on conflict (run_id, shard_no) do nothing", connection, tx);
                    await insert.ExecuteNonQueryAsync(ct);
                }

                var incremental = carryETags is not null || planningSkipped is not null
                    ? "planning_carry_etags = coalesce(@etags, planning_carry_etags), planning_skipped = coalesce(@skipped, planning_skipped), "
                    : "";
                await using (var update = new NpgsqlCommand(
                    "update runs set planning_token = @token, planning_carry = @carry, planning_complete = @complete, " + incremental +
                    "shards_planned = (select count(*) from run_shards where run_id = @id), " +
                    "state = case when state = 'pending' then 'planning' else state end, " +
                    "started_at = coalesce(started_at, now()), updated_at = now() where run_id = @id",
                    connection,
                    tx))
                {
                    update.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                    update.Parameters.Add(new NpgsqlParameter("token", NpgsqlDbType.Text) { Value = (object?)continuationToken ?? DBNull.Value });
                    update.Parameters.Add(new NpgsqlParameter("carry", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = carry.ToArray() });
                    update.Parameters.Add(new NpgsqlParameter("complete", NpgsqlDbType.Boolean) { Value = planningComplete });
                    update.Parameters.Add(new NpgsqlParameter("etags", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = (object?)carryETags?.ToArray() ?? DBNull.Value });
                    update.Parameters.Add(new NpgsqlParameter("skipped", NpgsqlDbType.Bigint) { Value = planningSkipped is { } p ? p : DBNull.Value });
                    await update.ExecuteNonQueryAsync(ct);
                }

                await tx.CommitAsync(ct);
            },
            cancellationToken);

    /// <summary>Stores a shard's lease and outcome columns.</summary>
    public Task SaveShardAsync(ShardRecord shard, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = ShardUpdate(shard, returnBlobs: false);
                await cmd.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);

    /// <summary>Stores a shard's new lease and returns the shard's blob names.</summary>
    public Task<IReadOnlyList<string>> LeaseShardAsync(ShardRecord shard, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<string>>(
            async ct =>
            {
                await using var cmd = ShardUpdate(shard, returnBlobs: true);
                return await cmd.ExecuteScalarAsync(ct) as string[]
                    ?? throw new InvalidOperationException($"run {shard.RunId} has no shard {shard.ShardNo}");
            },
            cancellationToken);

    private NpgsqlCommand ShardUpdate(ShardRecord shard, bool returnBlobs)
    {
        var cmd = dataSource.CreateCommand(
            "update run_shards set state = @state, attempts = @attempts, lease_owner = @owner, lease_deadline = @deadline, " +
            "records_done = @done, records_quarantined = @quarantined, records_skipped = @skipped, last_error = @error, updated_at = now() " +
            "where run_id = @run and shard_no = @no" + (returnBlobs ? " returning blobs" : ""));
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = shard.RunId });
        cmd.Parameters.Add(new NpgsqlParameter("no", NpgsqlDbType.Integer) { Value = shard.ShardNo });
        cmd.Parameters.Add(new NpgsqlParameter("state", NpgsqlDbType.Text) { Value = shard.State });
        cmd.Parameters.Add(new NpgsqlParameter("attempts", NpgsqlDbType.Integer) { Value = shard.Attempts });
        cmd.Parameters.Add(new NpgsqlParameter("owner", NpgsqlDbType.Text) { Value = (object?)shard.LeaseOwner ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("deadline", NpgsqlDbType.TimestampTz) { Value = Utc(shard.LeaseDeadline) });
        cmd.Parameters.Add(new NpgsqlParameter("done", NpgsqlDbType.Integer) { Value = shard.RecordsDone });
        cmd.Parameters.Add(new NpgsqlParameter("quarantined", NpgsqlDbType.Integer) { Value = shard.RecordsQuarantined });
        cmd.Parameters.Add(new NpgsqlParameter("skipped", NpgsqlDbType.Integer) { Value = shard.RecordsSkipped });
        cmd.Parameters.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = (object?)shard.LastError ?? DBNull.Value });
        return cmd;
    }

    /// <summary>Stores the progress columns the coordinator maintains.</summary>
    public Task SaveProgressAsync(RunProgressUpdate progress, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "update runs set state = @state, records_planned = @planned, records_done = @done, records_quarantined = @quarantined, " +
                    "records_failed = @failed, records_skipped = @skipped, shards_done = @sdone, shards_failed = @sfailed, rate_per_second = @rate, eta_seconds = @eta, " +
                    "error = @error, started_at = coalesce(started_at, @started), finished_at = @finished, updated_at = now() where run_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = progress.RunId });
                cmd.Parameters.Add(new NpgsqlParameter("state", NpgsqlDbType.Text) { Value = progress.State });
                cmd.Parameters.Add(new NpgsqlParameter("planned", NpgsqlDbType.Bigint) { Value = progress.RecordsPlanned });
                cmd.Parameters.Add(new NpgsqlParameter("done", NpgsqlDbType.Bigint) { Value = progress.RecordsDone });
                cmd.Parameters.Add(new NpgsqlParameter("quarantined", NpgsqlDbType.Bigint) { Value = progress.RecordsQuarantined });
                cmd.Parameters.Add(new NpgsqlParameter("failed", NpgsqlDbType.Bigint) { Value = progress.RecordsFailed });
                cmd.Parameters.Add(new NpgsqlParameter("skipped", NpgsqlDbType.Bigint) { Value = progress.RecordsSkipped });
                cmd.Parameters.Add(new NpgsqlParameter("sdone", NpgsqlDbType.Integer) { Value = progress.ShardsDone });
                cmd.Parameters.Add(new NpgsqlParameter("sfailed", NpgsqlDbType.Integer) { Value = progress.ShardsFailed });
                cmd.Parameters.Add(new NpgsqlParameter("rate", NpgsqlDbType.Real) { Value = (float)progress.RatePerSecond });
                cmd.Parameters.Add(new NpgsqlParameter("eta", NpgsqlDbType.Real) { Value = progress.EtaSeconds is { } eta ? (float)eta : DBNull.Value });
                cmd.Parameters.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = (object?)progress.Error ?? DBNull.Value });
                cmd.Parameters.Add(new NpgsqlParameter("started", NpgsqlDbType.TimestampTz) { Value = Utc(progress.StartedAt) });
                cmd.Parameters.Add(new NpgsqlParameter("finished", NpgsqlDbType.TimestampTz) { Value = Utc(progress.FinishedAt) });
                await cmd.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);

    private static RunRecord ReadRun(NpgsqlDataReader r) => new(
        r.GetGuid(0),
        r.GetString(1),
        r.GetString(2),
        r.GetString(3),
        r.GetString(4),
        r.GetString(5),
        r.GetString(6),
        r.GetString(7),
        r.GetInt32(8),
        r.GetInt32(9),
        r.GetInt32(10),
        r.GetInt32(11),
        r.GetInt32(12),
        r.GetString(13),
        r.GetBoolean(14),
        r.GetBoolean(15),
        r.IsDBNull(16) ? null : r.GetString(16),
        r.GetFieldValue<string[]>(17),
        r.GetInt32(18),
        r.GetInt64(19),
        r.GetInt64(20),
        r.GetInt64(21),
        r.GetInt64(22),
        r.GetInt32(23),
        r.GetInt32(24),
        r.GetFloat(25),
        r.IsDBNull(26) ? null : r.GetFloat(26),
        r.IsDBNull(27) ? null : r.GetString(27),
        r.GetFieldValue<DateTime>(28),
        r.IsDBNull(29) ? null : r.GetFieldValue<DateTime>(29),
        r.IsDBNull(30) ? null : r.GetFieldValue<DateTime>(30),
        r.GetFieldValue<DateTime>(31),
        r.IsDBNull(32) ? null : r.GetString(32),
        r.GetBoolean(33),
        r.GetInt64(34),
        r.GetInt64(35),
        r.GetFieldValue<string[]>(36),
        r.IsDBNull(37) ? null : r.GetGuid(37),
        r.IsDBNull(38) ? null : r.GetFieldValue<DateTime>(38),
        r.GetInt64(39));
}
