using HubertEcg.Grains;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// Postgres adapter for run shards (<c>run_shards</c>) and the planning steps that create them. A run's coordinator
/// grain is their only writer. Rows are read by column name (<see cref="ShardRecord.Read"/>); every call is retried
/// on transient connection failures, and every statement is idempotent or runs in one transaction.
/// </summary>
public sealed class ShardStore(NpgsqlDataSource dataSource, TransientRetry? retry = null)
{
    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    /// <summary>A run's shards in order; without <paramref name="includeBlobs"/> their blob lists are left empty (less memory).</summary>
    public Task<IReadOnlyList<ShardRecord>> LoadAsync(Guid runId, bool includeBlobs = true, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<ShardRecord>>(
            async ct =>
            {
                var columns = includeBlobs ? "*" : "run_id, shard_no, kind, records_planned, state, attempts, lease_owner, lease_deadline, " +
                    "records_done, records_quarantined, last_error, records_skipped";
                await using var cmd = dataSource.CreateCommand($"select {columns} from run_shards where run_id = @id order by shard_no");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                var shards = await cmd.ReadAllAsync(ShardRecord.Read, ct);
                return shards;
            },
            cancellationToken);

    /// <summary>How many of a run's shards are in each state (states without shards are absent).</summary>
    public Task<IReadOnlyDictionary<ShardState, int>> StateCountsAsync(Guid runId, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyDictionary<ShardState, int>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand("select state, count(*)::integer as shards from run_shards where run_id = @id group by state");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                var rows = await cmd.ReadAllAsync(r => (State: ContractText.ParseShardState(r.Field<string>("state")), Shards: r.Field<int>("shards")), ct);
                return rows.ToDictionary(r => r.State, r => r.Shards);
            },
            cancellationToken);

    /// <summary>
    /// The run's failed shards in shard order, at most <paramref name="limit"/>: number, attempts, records planned, the
    /// first of its blobs and the reason it failed.
    /// </summary>
    public Task<IReadOnlyList<FailedShard>> FailedAsync(Guid runId, int limit, CancellationToken cancellationToken = default) =>
        _retry.RunAsync<IReadOnlyList<FailedShard>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "select shard_no, attempts, records_planned, blobs[1] as first_blob, coalesce(array_length(blobs, 1), 0) as blob_count, last_error " +
                    "from run_shards where run_id = @id and state = 'failed' order by shard_no limit @limit");
                cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                cmd.Parameters.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = Math.Max(0, limit) });
                return await cmd.ReadAllAsync(
                    r => new FailedShard(
                        r.Field<int>("shard_no"), r.Field<int>("attempts"), r.Field<int>("records_planned"), r.Field<string?>("first_blob") ?? "",
                        r.Field<int>("blob_count"), r.Field<string?>("last_error") ?? ""),
                    ct);
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
    /// total of duplicate entries so far; <paramref name="quarantine"/> are manifest entries that name no blob of the
    /// run's container, written to <c>quarantine</c> in the same transaction (their shard is among
    /// <paramref name="shards"/>, stored done).
    /// </summary>
    public Task AppendPlanAsync(
        Guid runId, IReadOnlyList<ShardRecord> shards, string? continuationToken, IReadOnlyList<string> carry, bool planningComplete,
        CancellationToken cancellationToken = default) =>
        AppendPlanAsync(runId, shards, continuationToken, carry, planningComplete, null, null, null, 0, null, cancellationToken);

    /// <inheritdoc cref="AppendPlanAsync(Guid, IReadOnlyList{ShardRecord}, string?, IReadOnlyList{string}, bool, CancellationToken)"/>
    public Task AppendPlanAsync(
        Guid runId, IReadOnlyList<ShardRecord> shards, string? continuationToken, IReadOnlyList<string> carry, bool planningComplete,
        IReadOnlyList<string>? carryETags, long? planningSkipped, IReadOnlyList<string>? manifestKeys, long manifestDuplicates,
        IReadOnlyList<QuarantinedEntry>? quarantine, CancellationToken cancellationToken = default) =>
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
                        "copy shard_staging (run_id, shard_no, kind, blobs, records_planned, state, records_quarantined) from stdin (format binary)", ct))
                    {
                        foreach (var shard in shards)
                        {
                            await import.StartRowAsync(ct);
                            await import.WriteAsync(runId, NpgsqlDbType.Uuid, ct);
                            await import.WriteAsync(shard.ShardNo, NpgsqlDbType.Integer, ct);
                            await import.WriteAsync(shard.Kind.ToText(), NpgsqlDbType.Text, ct);
                            await import.WriteAsync(shard.Blobs.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text, ct);
                            await import.WriteAsync(shard.RecordsPlanned, NpgsqlDbType.Integer, ct);
                            await import.WriteAsync(shard.State.ToText(), NpgsqlDbType.Text, ct);
                            await import.WriteAsync(shard.RecordsQuarantined, NpgsqlDbType.Integer, ct);
                        }

                        await import.CompleteAsync(ct);
                    }

                    await using var insert = new NpgsqlCommand(
                        "insert into run_shards select * from shard_staging on conflict (run_id, shard_no) do nothing", connection, tx);
                    await insert.ExecuteNonQueryAsync(ct);
                }

                if (quarantine is { Count: > 0 })
                {
                    await using var rows = new NpgsqlCommand(
                        "insert into quarantine (run_id, record_id, shard_no, source_blob, reason, quarantined_at) " +
                        "select @id, q.record_id, q.shard_no, q.source_blob, q.reason, now() " +
                        "from unnest(@records, @shards, @sources, @reasons) as q (record_id, shard_no, source_blob, reason) " +
                        "on conflict (run_id, record_id) do nothing",
                        connection,
                        tx);
                    rows.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = runId });
                    rows.Parameters.Add(new NpgsqlParameter("records", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = quarantine.Select(q => q.RecordId).ToArray() });
                    rows.Parameters.Add(new NpgsqlParameter("shards", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = quarantine.Select(q => q.ShardNo).ToArray() });
                    rows.Parameters.Add(new NpgsqlParameter("sources", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = quarantine.Select(q => q.SourceBlob).ToArray() });
                    rows.Parameters.Add(new NpgsqlParameter("reasons", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = quarantine.Select(q => q.Reason).ToArray() });
                    await rows.ExecuteNonQueryAsync(ct);
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
    public Task SaveAsync(ShardRecord shard, CancellationToken cancellationToken = default) =>
        _retry.RunAsync(
            async ct =>
            {
                await using var cmd = ShardUpdate(shard, returnBlobs: false);
                await cmd.ExecuteNonQueryAsync(ct);
            },
            cancellationToken);

    /// <summary>Stores a shard's new lease and returns the shard's blob names.</summary>
    public Task<IReadOnlyList<string>> LeaseAsync(ShardRecord shard, CancellationToken cancellationToken = default) =>
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
        cmd.Parameters.Add(new NpgsqlParameter("state", NpgsqlDbType.Text) { Value = shard.State.ToText() });
        cmd.Parameters.Add(new NpgsqlParameter("attempts", NpgsqlDbType.Integer) { Value = shard.Attempts });
        cmd.Parameters.Add(new NpgsqlParameter("owner", NpgsqlDbType.Text) { Value = (object?)shard.LeaseOwner ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter("deadline", NpgsqlDbType.TimestampTz) { Value = Rows.Utc(shard.LeaseDeadline) });
        cmd.Parameters.Add(new NpgsqlParameter("done", NpgsqlDbType.Integer) { Value = shard.RecordsDone });
        cmd.Parameters.Add(new NpgsqlParameter("quarantined", NpgsqlDbType.Integer) { Value = shard.RecordsQuarantined });
        cmd.Parameters.Add(new NpgsqlParameter("skipped", NpgsqlDbType.Integer) { Value = shard.RecordsSkipped });
        cmd.Parameters.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = (object?)shard.LastError ?? DBNull.Value });
        return cmd;
    }
}

/// <summary>A failed shard as <c>run status</c> lists it: its blobs (the first and how many) and the reason it failed.</summary>
public sealed record FailedShard(int ShardNo, int Attempts, int RecordsPlanned, string FirstBlob, int BlobCount, string Reason);
