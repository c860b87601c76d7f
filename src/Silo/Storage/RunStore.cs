using HubertEcg.Grains;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// Postgres adapter for models and runs (<see cref="Shards"/> for their shards). The client creates runs and requests
/// cancellation here; a run's coordinator grain is the only writer of its progress. Rows are read by column name
/// (<see cref="RunRecord.Read"/>). Every call is retried on transient connection failures; every statement is
/// idempotent or runs in one transaction.
/// </summary>
public sealed class RunStore(NpgsqlDataSource dataSource, TransientRetry? retry = null)
{
    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>The runs' shard rows, with the same data source and retry policy.</summary>
    public ShardStore Shards { get; } = new(dataSource, retry);

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
    /// Creates a run in state <c>pending</c>; the run directory (told by the client, or on its next look at Postgres) wakes its coordinator. Throws
    /// <see cref="ArgumentException"/> naming the field when a text value cannot be stored (see <see cref="PostgresText"/>), or naming
    /// each option outside <see cref="RunSettingsRules"/>, before anything is stored.
    /// </summary>
    public Task CreateRunAsync(NewRun run, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        var problems = RunSettingsRules.CheckOptions(run.BatchSize, run.MaxWindows, run.ShardSize, run.LeaseSeconds, run.MaxAttempts);
        if (problems.Count > 0)
        {
            throw new ArgumentException(RunSettingsRules.Describe("run options", problems));
        }

        PostgresText.Require(run.Name, "run name");
        PostgresText.Require(run.InputContainer, "input container");
        PostgresText.Require(run.InputPrefix, "input prefix");
        PostgresText.Require(run.ModelPath, "model path");
        if (ModelLocation.Problem(run.ModelPath, run.ModelId) is { } modelProblem)
        {
            throw new ArgumentException(modelProblem);
        }

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

        if (run.OutageBudgetSeconds != NewRun.DefaultOutageBudgetSeconds)
        {
            columns += ", outage_budget_seconds";
            values += ", @budget";
        }

        var cmd = new NpgsqlCommand($"insert into runs ({columns}) values ({values}) on conflict (run_id) do nothing", connection, transaction);
        cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = run.RunId });
        cmd.Parameters.Add(new NpgsqlParameter("name", NpgsqlDbType.Text) { Value = run.Name });
        cmd.Parameters.Add(new NpgsqlParameter("container", NpgsqlDbType.Text) { Value = run.InputContainer });
        cmd.Parameters.Add(new NpgsqlParameter("prefix", NpgsqlDbType.Text) { Value = run.InputPrefix });
        cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = run.ModelId });
        cmd.Parameters.Add(new NpgsqlParameter("path", NpgsqlDbType.Text) { Value = run.ModelPath });
        cmd.Parameters.Add(new NpgsqlParameter("profile", NpgsqlDbType.Text) { Value = run.PreprocessingProfile });
        cmd.Parameters.Add(new NpgsqlParameter("agg", NpgsqlDbType.Text) { Value = run.Aggregation.ToText() });
        cmd.Parameters.Add(new NpgsqlParameter("maxw", NpgsqlDbType.Integer) { Value = run.MaxWindows });
        cmd.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Integer) { Value = run.BatchSize });
        cmd.Parameters.Add(new NpgsqlParameter("shard", NpgsqlDbType.Integer) { Value = run.ShardSize });
        cmd.Parameters.Add(new NpgsqlParameter("attempts", NpgsqlDbType.Integer) { Value = run.MaxAttempts });
        cmd.Parameters.Add(new NpgsqlParameter("lease", NpgsqlDbType.Integer) { Value = run.LeaseSeconds });
        cmd.Parameters.Add(new NpgsqlParameter("manifest", NpgsqlDbType.Text) { Value = (object?)run.InputManifest ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("incremental", NpgsqlDbType.Boolean) { Value = run.Incremental });
        cmd.Parameters.Add(new NpgsqlParameter("schedule", NpgsqlDbType.Uuid) { Value = run.ScheduleId is { } schedule ? schedule : DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("due", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(run.ScheduledFor) });
        cmd.Parameters.Add(new NpgsqlParameter("budget", NpgsqlDbType.Integer) { Value = run.OutageBudgetSeconds });
        return cmd;
    }

    public Task<RunRecord?> GetRunAsync(Guid runId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select * from runs where run_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                return await cmd.ReadFirstAsync(RunRecord.Read, ct);
            },
            cancellationToken);

    /// <summary>The most recent runs, newest first.</summary>
    public Task<IReadOnlyList<RunRecord>> ListRunsAsync(int limit = 100, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<RunRecord>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select * from runs order by created_at desc, run_id limit @limit");
                cmd.Parameters.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = limit });
                return await cmd.ReadAllAsync(RunRecord.Read, ct);
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

    /// <summary>Stores the progress columns the coordinator maintains.</summary>
    public Task SaveProgressAsync(RunProgressUpdate progress, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "update runs set state = @state, records_planned = @planned, records_done = @done, records_quarantined = @quarantined, " +
                    "records_failed = @failed, records_skipped = @skipped, shards_done = @sdone, shards_failed = @sfailed, rate_per_second = @rate, eta_seconds = @eta, " +
                    "error = @error, started_at = coalesce(started_at, @started), finished_at = @finished, waiting_for = @waiting, waiting_since = @since, " +
                    "updated_at = now() where run_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = progress.RunId });
                cmd.Parameters.Add(new NpgsqlParameter("state", NpgsqlDbType.Text) { Value = progress.State.ToText() });
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
                cmd.Parameters.Add(new NpgsqlParameter("started", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(progress.StartedAt) });
                cmd.Parameters.Add(new NpgsqlParameter("finished", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(progress.FinishedAt) });
                cmd.Parameters.Add(new NpgsqlParameter("waiting", NpgsqlDbType.Text) { Value = (object?)progress.WaitingFor ?? DBNull.Value });
                cmd.Parameters.Add(new NpgsqlParameter("since", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(progress.WaitingSince) });
                await cmd.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);

    /// <summary>
    /// Ends a cancelled run in one transaction: locks its row (waiting for result writes in flight, which share-lock it,
    /// see <see cref="ResultWriter"/>), ends its pending and leased shards as cancelled, and stores the cancelled state
    /// with counts taken from its score and quarantine rows, so that they equal the rows (no row of a cancelled run
    /// is written afterwards). Returns the records scored and quarantined.
    /// </summary>
    public Task<(long Done, long Quarantined)> FinishCancelledAsync(
        Guid runId, string? error, DateTime? startedAt, DateTime finishedAt, long recordsPlanned, long recordsSkipped, CancellationToken cancellationToken = default) =>
        FinishEndedAsync(runId, RunState.Cancelled, error, startedAt, finishedAt, recordsPlanned, recordsSkipped, cancellationToken);

    /// <summary>
    /// As <see cref="FinishCancelledAsync"/>, for a run ended before its shards were (cancelled, or failed as a whole):
    /// its open shards end as cancelled, and its counts are taken from its rows under <paramref name="state"/>.
    /// </summary>
    public Task<(long Done, long Quarantined)> FinishEndedAsync(
        Guid runId, RunState state, string? error, DateTime? startedAt, DateTime finishedAt, long recordsPlanned, long recordsSkipped,
        CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                await using var tx = await connection.BeginTransactionAsync(ct);
                var id = new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId };
                await using (var lockRun = new NpgsqlCommand("select 1 from runs where run_id = @id for update", connection, tx))
                {
                    lockRun.Parameters.Add(id.Clone());
                    await lockRun.ExecuteNonQueryAsync(ct);
                }

                await using (var shards = new NpgsqlCommand(
                    "update run_shards set state = 'cancelled', lease_owner = null, lease_deadline = null, updated_at = now() " +
                    "where run_id = @id and state in ('pending', 'leased')",
                    connection,
                    tx))
                {
                    shards.Parameters.Add(id.Clone());
                    await shards.ExecuteNonQueryAsync(ct);
                }

                // A statement of its own after the lock, so that its snapshot sees every write that held the lock before.
                await using var cmd = new NpgsqlCommand(
                    "update runs set state = @state, error = @error, started_at = coalesce(started_at, @started), finished_at = @finished, " +
                    "records_planned = @planned, records_skipped = @skipped, " +
                    "records_done = (select count(*) from scores where run_id = @id) + " +
                    "(select count(*) from run_reused_scores u join scores s on s.model_id = u.model_id and s.record_id = u.record_id " +
                    "where u.run_id = @id and s.run_id <> @id), " +
                    "records_quarantined = (select count(*) from quarantine where run_id = @id), " +
                    "records_failed = (select coalesce(sum(records_planned), 0) from run_shards where run_id = @id and state = 'failed'), " +
                    "shards_done = (select count(*) from run_shards where run_id = @id and state = 'done'), " +
                    "shards_failed = (select count(*) from run_shards where run_id = @id and state = 'failed'), " +
                    "rate_per_second = 0, eta_seconds = null, waiting_for = null, waiting_since = null, updated_at = now() " +
                    "where run_id = @id returning records_done, records_quarantined",
                    connection,
                    tx);
                cmd.Parameters.Add(id.Clone());
                cmd.Parameters.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = (object?)error ?? DBNull.Value });
                cmd.Parameters.Add(new NpgsqlParameter("started", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(startedAt) });
                cmd.Parameters.Add(new NpgsqlParameter("finished", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(finishedAt) });
                cmd.Parameters.Add(new NpgsqlParameter("state", NpgsqlDbType.Text) { Value = state.ToText() });
                cmd.Parameters.Add(new NpgsqlParameter("planned", NpgsqlDbType.Bigint) { Value = recordsPlanned });
                cmd.Parameters.Add(new NpgsqlParameter("skipped", NpgsqlDbType.Bigint) { Value = recordsSkipped });
                (long, long) counts = (0, 0);
                await using (var reader = await cmd.ExecuteReaderAsync(ct))
                {
                    if (await reader.ReadAsync(ct))
                    {
                        counts = (reader.GetInt64(0), reader.GetInt64(1));
                    }
                }

                await tx.CommitAsync(ct);
                return counts;
            },
            cancellationToken);
}
