using System.Globalization;
using HubertEcg.Grains;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// A row of <c>schedules</c>: a cohort input, a model and run options, fired by a cron expression read in an IANA
/// time zone. The last seven members are kept by the silos (ignored when a schedule is added).
/// </summary>
public sealed record ScheduleRecord(
    Guid ScheduleId,
    string Name,
    string InputContainer,
    string InputPrefix,
    string? InputManifest,
    string ModelId,
    string ModelPath,
    string PreprocessingProfile,
    Aggregation Aggregation,
    int MaxWindows,
    int BatchSize,
    int ShardSize,
    int MaxAttempts,
    int LeaseSeconds,
    string Cron,
    string TimeZone,
    bool Incremental,
    bool Enabled = true,
    DateTime CreatedAt = default,
    DateTime? LastDueAt = null,
    Guid? LastRunId = null,
    DateTime? LastCheckedAt = null,
    DateTime? NextDueAt = null)
{
    /// <summary>The input as the client shows it.</summary>
    public string Input => InputManifest is { } manifest
        ? $"manifest {Folders.FolderInput.Describe(InputContainer, manifest)}"
        : Folders.FolderInput.Describe(InputContainer, InputPrefix);

    /// <summary>The schedule's cron expression in its time zone; throws <see cref="ArgumentException"/> when either is invalid.</summary>
    public CronSchedule Calendar() => CronSchedule.Parse(Cron, TimeZone);

    /// <summary>Due times up to this one are handled: the last one a run was started for, else the schedule's creation.</summary>
    public DateTime FiredUpTo => LastDueAt ?? CreatedAt;
}

/// <summary>What an attempt to start a schedule's run found.</summary>
public enum FiringOutcome
{
    /// <summary>A run was started.</summary>
    Started = 0,

    /// <summary>No due time passed since the last run was started (or since the schedule was created).</summary>
    NotDue = 1,

    /// <summary>A due time passed, but the schedule's previous run is still active; the run starts once it has ended.</summary>
    Busy = 2,

    /// <summary>The schedule is disabled.</summary>
    Disabled = 3,

    /// <summary>There is no such schedule (it was removed).</summary>
    Missing = 4,
}

/// <summary>
/// The result of <see cref="ScheduleStore.StartRunAsync"/>: the run started and the due time it was started for,
/// or the active run that held it back; the next due time; how many earlier due times were passed over.
/// </summary>
public sealed record ScheduleFiring(
    FiringOutcome Outcome,
    Guid? RunId = null,
    DateTime? DueAt = null,
    Guid? ActiveRunId = null,
    DateTime? NextDueAt = null,
    int PassedOver = 0,
    DateTime CheckedAt = default);

/// <summary>
/// Postgres adapter for schedules. Starting a schedule's run is one transaction that locks the schedule row, so that
/// however many silos (or clients) try at once, and whatever they remember, exactly one run starts per due time:
/// the due time must be later than <c>last_due_at</c>, the run row is unique per (schedule, due time), and
/// <c>last_due_at</c> moves to the due time in the same commit. A schedule never has two active runs: a due time
/// that passes while its previous run is active is started when that run has ended. Catch-up after downtime: of the
/// due times that passed, only the latest is run.
/// </summary>
public sealed class ScheduleStore(NpgsqlDataSource dataSource, TransientRetry? retry = null)
{
    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    /// <summary>
    /// Stores a new schedule (its cron expression and time zone must parse, its run options meet
    /// <see cref="RunSettingsRules"/>); throws <see cref="ArgumentException"/> naming what is wrong, or when a schedule
    /// of that name exists. Its first due time is the first occurrence after now.
    /// </summary>
    public Task<ScheduleRecord> AddAsync(ScheduleRecord schedule, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var problems = RunSettingsRules.CheckOptions(schedule.BatchSize, schedule.MaxWindows, schedule.ShardSize, schedule.LeaseSeconds, schedule.MaxAttempts);
        if (problems.Count > 0)
        {
            throw new ArgumentException(RunSettingsRules.Describe($"schedule '{PostgresText.Printable(schedule.Name)}' run options", problems));
        }

        PostgresText.Require(schedule.Name, "schedule name");
        PostgresText.Require(schedule.InputContainer, "input container");
        PostgresText.Require(schedule.InputPrefix, "input prefix");
        PostgresText.Require(schedule.ModelPath, "model path");
        if (ModelLocation.Problem(schedule.ModelPath, schedule.ModelId) is { } modelProblem)
        {
            throw new ArgumentException(modelProblem);
        }

        if (schedule.InputManifest is not null)
        {
            PostgresText.Require(schedule.InputManifest, "manifest blob name");
        }

        var calendar = schedule.Calendar();
        return _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "insert into schedules (schedule_id, name, input_container, input_prefix, input_manifest, model_id, model_path, preprocessing_profile, " +
                    "aggregation, max_windows, batch_size, shard_size, max_attempts, lease_seconds, cron, time_zone, incremental, enabled) values " +
                    "(@id, @name, @container, @prefix, @manifest, @model, @path, @profile, @agg, @maxw, @batch, @shard, @attempts, @lease, @cron, @zone, " +
                    "@incremental, @enabled) on conflict do nothing returning created_at");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = schedule.ScheduleId });
                cmd.Parameters.Add(new NpgsqlParameter("name", NpgsqlDbType.Text) { Value = schedule.Name });
                cmd.Parameters.Add(new NpgsqlParameter("container", NpgsqlDbType.Text) { Value = schedule.InputContainer });
                cmd.Parameters.Add(new NpgsqlParameter("prefix", NpgsqlDbType.Text) { Value = schedule.InputPrefix });
                cmd.Parameters.Add(new NpgsqlParameter("manifest", NpgsqlDbType.Text) { Value = (object?)schedule.InputManifest ?? DBNull.Value });
                cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = schedule.ModelId });
                cmd.Parameters.Add(new NpgsqlParameter("path", NpgsqlDbType.Text) { Value = schedule.ModelPath });
                cmd.Parameters.Add(new NpgsqlParameter("profile", NpgsqlDbType.Text) { Value = schedule.PreprocessingProfile });
                cmd.Parameters.Add(new NpgsqlParameter("agg", NpgsqlDbType.Text) { Value = schedule.Aggregation.ToText() });
                cmd.Parameters.Add(new NpgsqlParameter("maxw", NpgsqlDbType.Integer) { Value = schedule.MaxWindows });
                cmd.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Integer) { Value = schedule.BatchSize });
                cmd.Parameters.Add(new NpgsqlParameter("shard", NpgsqlDbType.Integer) { Value = schedule.ShardSize });
                cmd.Parameters.Add(new NpgsqlParameter("attempts", NpgsqlDbType.Integer) { Value = schedule.MaxAttempts });
                cmd.Parameters.Add(new NpgsqlParameter("lease", NpgsqlDbType.Integer) { Value = schedule.LeaseSeconds });
                cmd.Parameters.Add(new NpgsqlParameter("cron", NpgsqlDbType.Text) { Value = calendar.Expression });
                cmd.Parameters.Add(new NpgsqlParameter("zone", NpgsqlDbType.Text) { Value = schedule.TimeZone.Trim() });
                cmd.Parameters.Add(new NpgsqlParameter("incremental", NpgsqlDbType.Boolean) { Value = schedule.Incremental });
                cmd.Parameters.Add(new NpgsqlParameter("enabled", NpgsqlDbType.Boolean) { Value = schedule.Enabled });
                if (await cmd.ExecuteScalarAsync(ct) is not DateTime created)
                {
                    var existing = await FindAsync(schedule.Name, ct);
                    throw new ArgumentException(existing is null
                        ? $"schedule {schedule.ScheduleId} already exists"
                        : $"a schedule named '{schedule.Name}' already exists ({existing.ScheduleId}); remove it first or choose another name");
                }

                return schedule with { Cron = calendar.Expression, TimeZone = schedule.TimeZone.Trim(), CreatedAt = created };
            },
            cancellationToken);
    }

    public Task<ScheduleRecord?> GetAsync(Guid scheduleId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select * from schedules where schedule_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = scheduleId });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? Read(reader) : null;
            },
            cancellationToken);

    /// <summary>The schedule named <paramref name="nameOrId"/>, or whose id it is; null when none is.</summary>
    public Task<ScheduleRecord?> FindAsync(string nameOrId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "select * from schedules where name = @name or schedule_id = @id order by name = @name desc limit 1");
                cmd.Parameters.Add(new NpgsqlParameter("name", NpgsqlDbType.Text) { Value = nameOrId });
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = Guid.TryParse(nameOrId, out var id) ? id : DBNull.Value });
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) ? Read(reader) : null;
            },
            cancellationToken);

    /// <summary>Every schedule, by name.</summary>
    public Task<IReadOnlyList<ScheduleRecord>> ListAsync(CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<ScheduleRecord>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select * from schedules order by name");
                return await cmd.ReadAllAsync(Read, ct);
            },
            cancellationToken);

    /// <summary>The ids of the enabled schedules: the ones whose grains keep a reminder.</summary>
    public Task<IReadOnlyList<Guid>> ListEnabledIdsAsync(CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<Guid>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select schedule_id from schedules where enabled order by schedule_id");
                return await cmd.ReadAllAsync(r => r.GetGuid(0), ct);
            },
            cancellationToken);

    /// <summary>Removes a schedule; its runs stay (no longer linked to it). False when there was none.</summary>
    public Task<bool> RemoveAsync(Guid scheduleId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("delete from schedules where schedule_id = @id");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = scheduleId });
                return await cmd.ExecuteNonQueryAsync(ct) > 0;
            },
            cancellationToken);

    /// <summary>
    /// Starts the schedule's run for its latest due time if one passed (or, <paramref name="byHand"/>, a run now,
    /// with no due time), in one transaction; see the class summary for the rules. <paramref name="nowUtc"/> is the
    /// database's clock when null, so that every silo reads due times against the same clock.
    /// </summary>
    public Task<ScheduleFiring> StartRunAsync(Guid scheduleId, bool byHand = false, DateTime? nowUtc = null, CancellationToken cancellationToken = default)
    {
        var runId = Guid.NewGuid();
        return _retry.RunAsync(ct => StartRunOnceAsync(scheduleId, runId, byHand, nowUtc, ct), cancellationToken);
    }

    private async Task<ScheduleFiring> StartRunOnceAsync(Guid scheduleId, Guid runId, bool byHand, DateTime? nowUtc, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        ScheduleRecord? schedule;
        DateTime now;
        await using (var select = new NpgsqlCommand("select *, now() as checked_at from schedules where schedule_id = @id for update", connection, tx))
        {
            select.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = scheduleId });
            await using var reader = await select.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return new ScheduleFiring(FiringOutcome.Missing);
            }

            schedule = Read(reader);
            now = nowUtc ?? reader.Field<DateTime>("checked_at");
        }

        // A retry after a commit whose answer was lost: the run of this attempt exists already.
        if (schedule.LastRunId == runId)
        {
            return new ScheduleFiring(FiringOutcome.Started, runId, schedule.LastDueAt, NextDueAt: schedule.NextDueAt, CheckedAt: now);
        }

        if (!schedule.Enabled && !byHand)
        {
            return new ScheduleFiring(FiringOutcome.Disabled, CheckedAt: now);
        }

        var calendar = schedule.Calendar();
        var due = byHand ? null : calendar.DueAt(schedule.FiredUpTo, now);
        var next = calendar.NextAfter(due is { } d && d > now ? d : now);
        if (!byHand && due is null)
        {
            await SaveCheckAsync(connection, tx, scheduleId, now, next, cancellationToken);
            await tx.CommitAsync(cancellationToken);
            return new ScheduleFiring(FiringOutcome.NotDue, NextDueAt: next, CheckedAt: now);
        }

        await using (var active = new NpgsqlCommand(
            "select run_id from runs where schedule_id = @id and state in ('pending', 'planning', 'running') order by created_at limit 1", connection, tx))
        {
            active.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = scheduleId });
            if (await active.ExecuteScalarAsync(cancellationToken) is Guid activeRun)
            {
                if (!byHand)
                {
                    await SaveCheckAsync(connection, tx, scheduleId, now, next, cancellationToken);
                    await tx.CommitAsync(cancellationToken);
                }

                return new ScheduleFiring(FiringOutcome.Busy, ActiveRunId: activeRun, DueAt: due, NextDueAt: next, CheckedAt: now);
            }
        }

        var runName = due is { } dueAt
            ? $"{schedule.Name} {calendar.ToZone(dueAt).ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture)}"
            : $"{schedule.Name} run-now {now.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z";
        // A schedule stored before its options were checked (or by another tool) still starts its run: the run's
        // coordinator then fails it at once with the reason (RunSettingsRules), which the operator sees in the run list.
        var run = new NewRun(
            runId, runName, schedule.InputContainer, schedule.InputPrefix, schedule.ModelId, schedule.ModelPath, schedule.PreprocessingProfile,
            schedule.Aggregation, schedule.MaxWindows, schedule.BatchSize, schedule.ShardSize, schedule.MaxAttempts, schedule.LeaseSeconds,
            schedule.InputManifest, schedule.Incremental, scheduleId, due);
        await using (var insert = RunStore.InsertRunCommand(connection, tx, run))
        {
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var update = new NpgsqlCommand(
            "update schedules set last_due_at = coalesce(@due, last_due_at), last_run_id = @run, last_checked_at = @now, next_due_at = @next " +
            "where schedule_id = @id",
            connection,
            tx))
        {
            update.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = scheduleId });
            update.Parameters.Add(new NpgsqlParameter("due", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(due) });
            update.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
            update.Parameters.Add(new NpgsqlParameter("now", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(now) });
            update.Parameters.Add(new NpgsqlParameter("next", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(next) });
            await update.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        var passedOver = due is null ? 0 : Math.Max(0, calendar.CountDue(schedule.FiredUpTo, due.Value) - 1);
        return new ScheduleFiring(FiringOutcome.Started, runId, due, NextDueAt: next, PassedOver: passedOver, CheckedAt: now);
    }

    private static async Task SaveCheckAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, Guid scheduleId, DateTime now, DateTime? next, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(
            "update schedules set last_checked_at = @now, next_due_at = @next where schedule_id = @id", connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = scheduleId });
        cmd.Parameters.Add(new NpgsqlParameter("now", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(now) });
        cmd.Parameters.Add(new NpgsqlParameter("next", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(next) });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static ScheduleRecord Read(NpgsqlDataReader r) => new(
        r.Field<Guid>("schedule_id"),
        r.Field<string>("name"),
        r.Field<string>("input_container"),
        r.Field<string>("input_prefix"),
        r.Field<string?>("input_manifest"),
        r.Field<string>("model_id"),
        r.Field<string>("model_path"),
        r.Field<string>("preprocessing_profile"),
        ContractText.ParseAggregation(r.Field<string>("aggregation")),
        r.Field<int>("max_windows"),
        r.Field<int>("batch_size"),
        r.Field<int>("shard_size"),
        r.Field<int>("max_attempts"),
        r.Field<int>("lease_seconds"),
        r.Field<string>("cron"),
        r.Field<string>("time_zone"),
        r.Field<bool>("incremental"),
        r.Field<bool>("enabled"),
        r.Field<DateTime>("created_at"),
        r.Field<DateTime?>("last_due_at"),
        r.Field<Guid?>("last_run_id"),
        r.Field<DateTime?>("last_checked_at"),
        r.Field<DateTime?>("next_due_at"));
}
