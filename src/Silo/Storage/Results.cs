using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// Writes scores and quarantine rows idempotently: binary COPY into a transaction-scoped staging table, then an
/// insert that skips rows already present. Re-writing a shard after a crash therefore never duplicates a row,
/// and a write that failed part-way left nothing behind (one transaction), so retrying never loses one.
/// A score row replaces the stored one of its (model, record) only when it comes from another source blob or
/// another version of it (ETag): a record re-scored because its blob changed gets the new scores, while the same
/// row written again is a no-op. A row left as it was because another run wrote it from the same source version is
/// listed for the writing run in <c>run_reused_scores</c>, so every run's rows cover the records it scored.
/// Transient connection failures are retried on a fresh connection. A quarantine reason is free text: a character Postgres cannot store in it is written in a printable form
/// (<see cref="PostgresText.Printable"/>).
/// </summary>
public sealed class ResultWriter(NpgsqlDataSource dataSource, TransientRetry? retry = null) : IResultSink
{
    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    /// <summary>Writes <paramref name="rows"/> without naming the writer; returns how many were new or replaced a changed record's row.</summary>
    public Task<int> WriteScoresAsync(IReadOnlyList<ScoreRow> rows, CancellationToken cancellationToken = default) =>
        WriteScoresAsync(rows, null, cancellationToken);

    /// <summary>Writes <paramref name="rows"/> without naming the writer; returns how many were new.</summary>
    public Task<int> WriteQuarantineAsync(IReadOnlyList<QuarantineRow> rows, CancellationToken cancellationToken = default) =>
        WriteQuarantineAsync(rows, null, cancellationToken);

    /// <summary>
    /// Writes <paramref name="rows"/>; returns how many were new or replaced the row of a record whose source changed.
    /// <paramref name="writerId"/> (a worker id) is recorded for the per-worker dashboard views through the transaction
    /// setting <c>hubert.worker_id</c>.
    /// </summary>
    public Task<int> WriteScoresAsync(IReadOnlyList<ScoreRow> rows, string? writerId, CancellationToken cancellationToken = default)
    {
        if (rows.Count == 0)
        {
            return Task.FromResult(0);
        }

        return _retry.RunOrUnavailableAsync(ct => WriteScoresOnceAsync(rows, writerId, ct), "writing scores", cancellationToken);
    }

    /// <summary>Writes <paramref name="rows"/>; returns how many were new. <paramref name="writerId"/> as for scores.</summary>
    public Task<int> WriteQuarantineAsync(IReadOnlyList<QuarantineRow> rows, string? writerId, CancellationToken cancellationToken = default)
    {
        if (rows.Count == 0)
        {
            return Task.FromResult(0);
        }

        return _retry.RunOrUnavailableAsync(ct => WriteQuarantineOnceAsync(rows, writerId, ct), "writing quarantine rows", cancellationToken);
    }

    /// <summary>
    /// Share-locks the runs whose rows are staged, in id order, until the transaction ends, and the insert that follows
    /// leaves out rows of cancelled and failed runs: ending a run early (which locks its run's row for update, then
    /// counts its rows, see <see cref="RunStore.FinishEndedAsync"/>) waits for writes in flight and then sees them all,
    /// and no row of the run is written after it, so the run's counts equal its rows.
    /// </summary>
    private static async Task LockRunsAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string staging, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(
            $"select 1 from runs where run_id in (select distinct run_id from {staging}) order by run_id for share", connection, tx);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    // Names the writing worker for the dashboard summary triggers (0010_dashboard.sql); local to the transaction.
    private static async Task NameWriterAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string? writerId, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(writerId))
        {
            return;
        }

        await using var name = new NpgsqlCommand("select set_config('hubert.worker_id', @w, true)", connection, tx);
        name.Parameters.Add(new NpgsqlParameter("w", NpgsqlDbType.Text) { Value = writerId });
        await name.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<int> WriteScoresOnceAsync(IReadOnlyList<ScoreRow> rows, string? writerId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await NameWriterAsync(connection, tx, writerId, cancellationToken);
        await using (var create = new NpgsqlCommand(
            "create temp table score_staging (like scores including defaults) on commit drop", connection, tx))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var import = await connection.BeginBinaryImportAsync(
            "copy score_staging (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at) from stdin (format binary)",
            cancellationToken))
        {
            foreach (var row in rows)
            {
                await import.StartRowAsync(cancellationToken);
                await import.WriteAsync(row.ModelId, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(row.RecordId, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(row.RunId, NpgsqlDbType.Uuid, cancellationToken);
                await import.WriteAsync(row.Probabilities, NpgsqlDbType.Array | NpgsqlDbType.Real, cancellationToken);
                await import.WriteAsync(row.Embedding, NpgsqlDbType.Array | NpgsqlDbType.Real, cancellationToken);
                await import.WriteAsync(row.WindowsUsed, NpgsqlDbType.Integer, cancellationToken);
                await import.WriteAsync(row.SourceBlob, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(row.SourceETag, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(DateTime.SpecifyKind(row.ScoredAt, DateTimeKind.Utc), NpgsqlDbType.TimestampTz, cancellationToken);
            }

            await import.CompleteAsync(cancellationToken);
        }

        // One row per key (an upsert may not touch a row twice; a batch holding a record twice keeps one of them), in
        // key order, so that concurrent writers lock rows in the same order. A replaced row moves to the new run; the
        // dashboard triggers (0010) take it out of the old run's summaries and add it to the new run's.
        await LockRunsAsync(connection, tx, "score_staging", cancellationToken);
        int inserted;
        await using (var insert = new NpgsqlCommand(
            "insert into scores select distinct on (model_id, record_id) s.* from score_staging s " +
            "where not exists (select 1 from runs r where r.run_id = s.run_id and r.state in ('cancelled', 'failed')) order by model_id, record_id " +
            "on conflict (model_id, record_id) do update set run_id = excluded.run_id, probabilities = excluded.probabilities, " +
            "embedding = excluded.embedding, windows_used = excluded.windows_used, source_blob = excluded.source_blob, " +
            "source_etag = excluded.source_etag, scored_at = excluded.scored_at " +
            "where (scores.source_blob, scores.source_etag) is distinct from (excluded.source_blob, excluded.source_etag)",
            connection,
            tx))
        {
            inserted = await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        // A row another run wrote from the same source version was left as it was: this run lists the record as one
        // it covered, so its counters, export and summaries include it (0016_run_reused_scores.sql).
        await using (var reuse = new NpgsqlCommand(
            "insert into run_reused_scores (run_id, model_id, record_id) " +
            "select distinct s.run_id, s.model_id, s.record_id from score_staging s " +
            "join scores c on c.model_id = s.model_id and c.record_id = s.record_id and c.run_id <> s.run_id " +
            "where not exists (select 1 from runs r where r.run_id = s.run_id and r.state in ('cancelled', 'failed')) " +
            "order by 1, 2, 3 on conflict do nothing",
            connection,
            tx))
        {
            await reuse.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return inserted;
    }

    private async Task<int> WriteQuarantineOnceAsync(IReadOnlyList<QuarantineRow> rows, string? writerId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await NameWriterAsync(connection, tx, writerId, cancellationToken);
        await using (var create = new NpgsqlCommand(
            "create temp table quarantine_staging (like quarantine including defaults) on commit drop", connection, tx))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var import = await connection.BeginBinaryImportAsync(
            "copy quarantine_staging (run_id, record_id, shard_no, source_blob, reason, quarantined_at) from stdin (format binary)",
            cancellationToken))
        {
            foreach (var row in rows)
            {
                await import.StartRowAsync(cancellationToken);
                await import.WriteAsync(row.RunId, NpgsqlDbType.Uuid, cancellationToken);
                await import.WriteAsync(row.RecordId, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(row.ShardNo, NpgsqlDbType.Integer, cancellationToken);
                await import.WriteAsync(row.SourceBlob, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(PostgresText.Printable(row.Reason), NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(DateTime.SpecifyKind(row.QuarantinedAt, DateTimeKind.Utc), NpgsqlDbType.TimestampTz, cancellationToken);
            }

            await import.CompleteAsync(cancellationToken);
        }

        await LockRunsAsync(connection, tx, "quarantine_staging", cancellationToken);
        int inserted;
        await using (var insert = new NpgsqlCommand(
            "insert into quarantine select q.* from quarantine_staging q " +
            "where not exists (select 1 from runs r where r.run_id = q.run_id and r.state in ('cancelled', 'failed')) on conflict (run_id, record_id) do nothing",
            connection,
            tx))
        {
            inserted = await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return inserted;
    }
}
