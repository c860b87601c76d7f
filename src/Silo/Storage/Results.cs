using System.Buffers;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// Writes scores and quarantine rows idempotently, one transaction per batch, so a write that failed part-way left
/// nothing behind and retrying never loses a row. A score batch whose (model, record) keys are all new is copied
/// (binary COPY) straight into <c>scores</c>, where the primary key rejects a key another writer stored meanwhile (the
/// batch is then written again the other way); a batch with stored keys goes through a transaction-scoped staging
/// table and an insert that skips rows already present. Re-writing a shard after a crash therefore never duplicates a row.
/// A score row replaces the stored one of its (model, record) only when it comes from another source blob or
/// another version of it (ETag): a record re-scored because its blob changed gets the new scores, while the same
/// row written again is a no-op. A row left as it was because another run wrote it from the same source version is
/// listed for the writing run in <c>run_reused_scores</c>, so every run's rows cover the records it scored.
/// Transient connection failures are retried on a fresh connection. A quarantine reason is free text: a character Postgres cannot store in it is written in a printable form
/// (<see cref="PostgresText.Printable"/>). The embedding is stored packed (<see cref="PackedEmbeddings"/>, migration 0027) at
/// <c>embeddingPrecision</c>.
/// </summary>
public sealed class ResultWriter(NpgsqlDataSource dataSource, TransientRetry? retry = null, EmbeddingPrecision embeddingPrecision = EmbeddingPrecision.Fp32) : IResultSink
{
    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    // This writer's part in the runs' lists of their highest rows per label (0033_run_label_top.sql).
    private readonly RunLabelTop _top = new();

    /// <summary>How this writer stores embeddings.</summary>
    public EmbeddingPrecision EmbeddingPrecision => embeddingPrecision;

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
    /// leaves out rows of cancelled and failed runs (quarantine rows; a score batch locks its runs and leaves out their
    /// rows the same way before its copy): ending a run early (which locks its run's row for update, then
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

    /// <summary>
    /// Test hook: runs after a batch's rows are in the database and before its transaction commits, with the writing
    /// connection (crash tests terminate its backend there).
    /// </summary>
    internal Func<NpgsqlConnection, CancellationToken, Task>? BeforeCommit { get; init; }

    private const string ScoreColumns =
        "model_id, record_id, run_id, probabilities, embedding_packed, windows_used, source_blob, source_etag, scored_at";

    // The write of one batch in one transaction. The runs of the batch are share-locked first (see LockRunsAsync) and
    // rows of cancelled or failed runs dropped. When none of the batch's (model, record) keys is stored yet, the rows
    // are copied straight into scores and the writer counts their label positives for the dashboard trigger
    // (0018_fast_score_writes.sql); a key another writer stores meanwhile fails the copy with a unique violation, and
    // the batch is written again through the staging table, which handles stored keys. Otherwise the staging path
    // runs at once.
    private async Task<int> WriteScoresOnceAsync(IReadOnlyList<ScoreRow> batch, string? writerId, CancellationToken cancellationToken)
    {
        // In key order, so that concurrent writers of overlapping keys wait on each other rather than deadlock.
        var rows = LastPerKey(batch)
            .OrderBy(r => r.ModelId, StringComparer.Ordinal).ThenBy(r => r.RecordId, StringComparer.Ordinal).ToList();
        try
        {
            return await WriteScoresInTransactionAsync(rows, writerId, allowDirect: true, cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.TableName == "scores")
        {
            return await WriteScoresInTransactionAsync(rows, writerId, allowDirect: false, cancellationToken);
        }
    }

    private async Task<int> WriteScoresInTransactionAsync(
        IReadOnlyList<ScoreRow> batch, string? writerId, bool allowDirect, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await NameWriterAsync(connection, tx, writerId, cancellationToken);

        // One round trip: share-lock the batch's runs in id order and read their states, and ask whether any key is
        // stored already. For a direct copy also: hold the models' threshold locks shared (as the insert trigger does,
        // 0020_evaluations.sql: a threshold change waits for this transaction and then recounts with its rows) and
        // read the thresholds in force after taking them, for the label positives the writer counts itself.
        var runIds = batch.Select(r => r.RunId).Distinct().Order().ToArray();
        var ended = new HashSet<Guid>();
        var anyStored = true;
        var thresholds = new Dictionary<string, ModelThresholds>(StringComparer.Ordinal);
        Dictionary<Guid, RunLabelTop.Cuts> topCuts;
        await using (var probe = new NpgsqlBatch(connection, tx))
        {
            var lockRuns = new NpgsqlBatchCommand("select run_id, state from runs where run_id = any (@runs) order by run_id for share");
            lockRuns.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runIds });
            probe.BatchCommands.Add(lockRuns);
            // A sample of the keys decides the path: a batch of a shard written before (a retry, a rerun) has its first
            // keys stored. A stored key the sample misses fails the direct copy on the primary key, and the batch is
            // written again through staging (WriteScoresOnceAsync): the sample only saves a look-up per row.
            var sample = ProbeSample(batch);
            var stored = new NpgsqlBatchCommand(
                "select exists (select 1 from unnest(@models, @records) k (model_id, record_id) " +
                "join scores s on s.model_id = k.model_id and s.record_id = k.record_id)");
            stored.Parameters.Add(new NpgsqlParameter("models", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = sample.Select(r => r.ModelId).ToArray() });
            stored.Parameters.Add(new NpgsqlParameter("records", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = sample.Select(r => r.RecordId).ToArray() });
            probe.BatchCommands.Add(stored);
            if (allowDirect)
            {
                var modelIds = batch.Select(r => r.ModelId).Distinct().ToArray();
                // In the order the trigger takes them (model id order in SQL), so that the two never wait on each other in a cycle.
                var lockModels = new NpgsqlBatchCommand(
                    "select count(pg_advisory_xact_lock_shared(17017, dashboard_model_lock_key(m))) from (select m from unnest(@models) m order by 1) x");
                lockModels.Parameters.Add(new NpgsqlParameter("models", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = modelIds });
                probe.BatchCommands.Add(lockModels);
                var read = new NpgsqlBatchCommand(
                    "select model_id, position, threshold, inclusive from dashboard_model_label_thresholds where model_id = any (@models) order by model_id, position");
                read.Parameters.Add(new NpgsqlParameter("models", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = modelIds });
                probe.BatchCommands.Add(read);
            }

            RunLabelTop.AddProbe(probe, runIds);
            await using var reader = await probe.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                if (reader.GetString(1) is "cancelled" or "failed")
                {
                    ended.Add(reader.GetGuid(0));
                }
            }

            await reader.NextResultAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            anyStored = reader.GetBoolean(0);
            if (allowDirect)
            {
                await reader.NextResultAsync(cancellationToken);
                await reader.NextResultAsync(cancellationToken);
                var byModel = new Dictionary<string, (List<int> Positions, List<float> Thresholds, List<bool> Inclusive)>(StringComparer.Ordinal);
                while (await reader.ReadAsync(cancellationToken))
                {
                    var model = reader.GetString(0);
                    if (!byModel.TryGetValue(model, out var lists))
                    {
                        byModel[model] = lists = ([], [], []);
                    }

                    lists.Positions.Add(reader.GetInt32(1));
                    lists.Thresholds.Add(reader.GetFloat(2));
                    lists.Inclusive.Add(reader.GetBoolean(3));
                }

                foreach (var (model, lists) in byModel)
                {
                    thresholds[model] = new ModelThresholds([.. lists.Positions], [.. lists.Thresholds], [.. lists.Inclusive]);
                }
            }

            topCuts = await RunLabelTop.ReadProbeAsync(reader, cancellationToken);
        }

        // Rows of runs that ended early are not written (their counts are final).
        var rows = ended.Count == 0 ? batch : batch.Where(r => !ended.Contains(r.RunId)).ToList();
        int written;
        if (rows.Count == 0)
        {
            written = 0;
        }
        else if (allowDirect && !anyStored)
        {
            written = await CopyIntoScoresAsync(connection, tx, rows, thresholds, topCuts, cancellationToken);
        }
        else
        {
            written = await WriteThroughStagingAsync(connection, tx, rows, cancellationToken);
        }

        if (BeforeCommit is { } hook)
        {
            await hook(connection, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        if (allowDirect && !anyStored && rows.Count > 0 && Interlocked.Increment(ref _claimedBatches) % FoldEvery == 0)
        {
            await FoldBucketsAsync(runIds, cancellationToken);
        }

        return written;
    }

    /// <summary>Batches written with bucket claims between two folds of their runs' bucket rows.</summary>
    internal int FoldEvery { get; init; } = 16;

    /// <summary>Rows a run has when a fold makes its list of top rows per label (<see cref="RunLabelTop"/>).</summary>
    internal long TopListFrom { get; init; } = RunLabelTop.EstablishRows;

    private int _claimedBatches;

    /// <summary>The passes over runs' rows this writer started to make their top lists, finished (for tests).</summary>
    internal Task TopListPassesDoneAsync() => _top.PassesDoneAsync();

    /// <summary>
    /// Folds the label bucket delta rows of <paramref name="runIds"/> into one row per run, as
    /// <c>run_label_buckets_fold</c> does (0025_threshold_buckets.sql) but with the sums done here: the rows are taken
    /// (deleted, skipping rows another transaction holds), the cells of the checked ones summed (a claim never checked
    /// counts for nothing), and one row of the nonzero sums inserted, in one transaction of its own after the batch's.
    /// Summing in SQL (unnest and a hash aggregate) cost the insert trigger about a fifth of the server's time per row;
    /// here it is a pass over an array. The insert trigger, which folds one statement in 16, is skipped for the batches
    /// this writer copies (0032_writer_bookkeeping.sql). The batch is committed before: a fold that
    /// fails leaves the delta rows for the next one, and is not the batch's error (except a cancellation).
    /// </summary>
    internal async Task FoldBucketsAsync(IReadOnlyList<Guid> runIds, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            foreach (var runId in runIds)
            {
                await FoldRunAsync(connection, tx, runId, cancellationToken);
            }

            await RunLabelTop.CompactAsync(connection, tx, runIds, cancellationToken);
            await tx.CommitAsync(cancellationToken);
            // A run's list once it has TopListFrom rows: step 1 here, the pass in the background (0033's header).
            _top.StartPasses(dataSource, await RunLabelTop.BeginAsync(connection, runIds, TopListFrom, cancellationToken));
        }
        catch (NpgsqlException) when (!cancellationToken.IsCancellationRequested)
        {
            // The delta rows stay as they were (the transaction rolled back); the next fold takes them.
        }
    }

    private static async Task FoldRunAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Guid runId, CancellationToken cancellationToken)
    {
        var rows = new List<(int[] Cells, long[] Counts)>();
        await using (var take = new NpgsqlCommand(
            "with picked as (select ctid from run_label_buckets where run_id = @run for update skip locked) " +
            "delete from run_label_buckets b using picked p where b.ctid = p.ctid returning b.claim_xid is null, array_send(b.cells), array_send(b.counts)",
            connection,
            tx))
        {
            take.Parameters.AddWithValue("run", runId);
            await using var reader = await take.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                if (reader.GetBoolean(0))
                {
                    // In Postgres' binary array format (array_send), decoded here: Npgsql's generic array reader cost
                    // more than the fold itself.
                    var cells = BinaryArrays.Int32s(reader.GetFieldValue<byte[]>(1), runId);
                    var counts = BinaryArrays.Int64s(reader.GetFieldValue<byte[]>(2), runId);
                    if (cells.Length != counts.Length)
                    {
                        throw new InvalidDataException($"a label bucket row of run {runId} has {cells.Length} cells and {counts.Length} counts");
                    }

                    rows.Add((cells, counts));
                }
            }
        }

        // Cells are position * 2003 + bucket: below 164 labels x 2003 for the models here, so the sums go in a dense
        // array; a cell outside [0, 2^24) (a model of thousands of labels, or a row written by hand) sends all of them
        // through a dictionary instead.
        var max = -1;
        var dense = true;
        foreach (var (cells, _) in rows)
        {
            foreach (var cell in cells)
            {
                dense &= cell >= 0 && cell < 1 << 24;
                max = Math.Max(max, cell);
            }
        }

        List<int> foldedCells = [];
        List<long> foldedCounts = [];
        if (dense)
        {
            var sums = new long[max + 1];
            foreach (var (cells, counts) in rows)
            {
                for (var i = 0; i < cells.Length; i++)
                {
                    sums[cells[i]] += counts[i];
                }
            }

            for (var cell = 0; cell <= max; cell++)
            {
                if (sums[cell] != 0)
                {
                    foldedCells.Add(cell);
                    foldedCounts.Add(sums[cell]);
                }
            }
        }
        else
        {
            var sums = new Dictionary<int, long>();
            foreach (var (cells, counts) in rows)
            {
                for (var i = 0; i < cells.Length; i++)
                {
                    ref var sum = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(sums, cells[i], out _);
                    sum += counts[i];
                }
            }

            foreach (var (cell, sum) in sums)
            {
                if (sum != 0)
                {
                    foldedCells.Add(cell);
                    foldedCounts.Add(sum);
                }
            }
        }

        if (foldedCells.Count == 0)
        {
            return;
        }

        await using var insert = new NpgsqlCommand("insert into run_label_buckets (run_id, cells, counts) values (@run, @cells, @counts)", connection, tx);
        insert.Parameters.AddWithValue("run", runId);
        insert.Parameters.Add(new NpgsqlParameter("cells", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = foldedCells.ToArray() });
        insert.Parameters.Add(new NpgsqlParameter("counts", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = foldedCounts.ToArray() });
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Keys probed before a direct copy: the first, the last and evenly spaced ones between, at most this many.</summary>
    internal const int ProbeKeys = 16;

    internal static IReadOnlyList<ScoreRow> ProbeSample(IReadOnlyList<ScoreRow> batch)
    {
        if (batch.Count <= ProbeKeys)
        {
            return batch;
        }

        var sample = new ScoreRow[ProbeKeys];
        for (var i = 0; i < ProbeKeys; i++)
        {
            sample[i] = batch[(int)((long)i * (batch.Count - 1) / (ProbeKeys - 1))];
        }

        return sample;
    }

    // One row per (model, record): the last of a batch that holds a record twice.
    private static IReadOnlyList<ScoreRow> LastPerKey(IReadOnlyList<ScoreRow> rows)
    {
        var seen = new HashSet<(string, string)>();
        var duplicates = false;
        foreach (var row in rows)
        {
            duplicates |= !seen.Add((row.ModelId, row.RecordId));
        }

        if (!duplicates)
        {
            return rows;
        }

        seen.Clear();
        var kept = new List<ScoreRow>(rows.Count);
        for (var i = rows.Count - 1; i >= 0; i--)
        {
            if (seen.Add((rows[i].ModelId, rows[i].RecordId)))
            {
                kept.Add(rows[i]);
            }
        }

        kept.Reverse();
        return kept;
    }

    // Bytes of encoded rows sent to the server at a time: the server starts on the first rows while the rest are encoded.
    private const int CopyChunkBytes = 128 * 1024;

    private async Task CopyRowsAsync(NpgsqlConnection connection, string table, IReadOnlyList<ScoreRow> rows, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyChunkBytes);
        var copy = await connection.BeginRawBinaryCopyAsync($"copy {table} ({ScoreColumns}) from stdin (format binary)", cancellationToken);
        try
        {
            var used = ScoreCopyRows.WriteHeader(buffer);
            foreach (var row in rows)
            {
                var most = ScoreCopyRows.MaxLength(row) + ScoreCopyRows.TrailerLength;
                if (used + most > buffer.Length)
                {
                    await copy.WriteAsync(buffer.AsMemory(0, used), cancellationToken);
                    used = 0;
                    if (most > buffer.Length)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = ArrayPool<byte>.Shared.Rent(most);
                    }
                }

                used += ScoreCopyRows.WriteRow(row, embeddingPrecision, buffer.AsSpan(used));
            }

            used += ScoreCopyRows.WriteTrailer(buffer.AsSpan(used));
            await copy.WriteAsync(buffer.AsMemory(0, used), cancellationToken);
        }
        catch
        {
            // Rows not all encoded or sent: the copy is abandoned (the server discards what it received), and the
            // transaction, which the caller does not commit, is rolled back.
            try
            {
                await copy.CancelAsync();
                await copy.DisposeAsync();
            }
            catch (Exception) when (connection.FullState is System.Data.ConnectionState.Broken or System.Data.ConnectionState.Closed)
            {
                // The connection is gone (the reason is the exception rethrown below); the server dropped the copy with it.
            }

            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        // Ends the copy: the server's error for the rows (a key stored meanwhile, a missing run) is raised here.
        await copy.DisposeAsync();
    }

    // No key of the batch is stored: a binary COPY straight into scores, with the insert trigger's bookkeeping done
    // here (0032_writer_bookkeeping.sql): the trigger is skipped for this transaction (hubert.writer_bookkeeping), and
    // after the copy one round trip adds the rows per run and minute (overall and for this writer), the label
    // positives counted against the thresholds read under their locks, and per run a row of the label bucket counts
    // (0025_threshold_buckets.sql), which this writer folds itself (FoldBucketsAsync). The copy adds exactly the rows
    // sent or fails whole (scores has no trigger that skips a row), so the counts are those of the rows added; they
    // are written after the copy, so that the counter rows writers of one run share are locked only until the commit.
    private async Task<int> CopyIntoScoresAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<ScoreRow> rows, IReadOnlyDictionary<string, ModelThresholds> thresholds,
        IReadOnlyDictionary<Guid, RunLabelTop.Cuts> topCuts, CancellationToken cancellationToken)
    {
        await using (var flags = new NpgsqlCommand(
            "select set_config('hubert.writer_bookkeeping', 'on', true)", connection, tx))
        {
            await flags.ExecuteNonQueryAsync(cancellationToken);
        }

        await CopyRowsAsync(connection, "scores", rows, cancellationToken);

        await using var bookkeeping = new NpgsqlBatch(connection, tx);
        var (minuteRuns, minutes, minuteCounts) = LabelPositives.Minutes(rows);
        var progress = new NpgsqlBatchCommand(
            "insert into run_progress_minutes as m (run_id, minute, records_scored) " +
            "select * from unnest(@runs, @minutes, @counts) order by 1, 2 " +
            "on conflict (run_id, minute) do update set records_scored = m.records_scored + excluded.records_scored");
        AddMinutes(progress, minuteRuns, minutes, minuteCounts);
        bookkeeping.BatchCommands.Add(progress);
        var worker = new NpgsqlBatchCommand(
            "insert into worker_progress_minutes as w (run_id, minute, worker, records_scored) " +
            "select u.run_id, u.minute, dashboard_writer_name(), u.n from unnest(@runs, @minutes, @counts) u (run_id, minute, n) order by 1, 2 " +
            "on conflict (run_id, minute, worker) do update set records_scored = w.records_scored + excluded.records_scored");
        AddMinutes(worker, minuteRuns, minutes, minuteCounts);
        bookkeeping.BatchCommands.Add(worker);

        var (positiveRuns, positions, positives) = LabelPositives.Count(rows, thresholds);
        if (positiveRuns.Length > 0)
        {
            var command = new NpgsqlBatchCommand(
                "insert into run_label_positives as p (run_id, position, positives) " +
                "select * from unnest(@runs, @positions, @counts) order by 1, 2 " +
                "on conflict (run_id, position) do update set positives = p.positives + excluded.positives");
            command.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = positiveRuns });
            command.Parameters.Add(new NpgsqlParameter("positions", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = positions });
            command.Parameters.Add(new NpgsqlParameter("counts", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = positives });
            bookkeeping.BatchCommands.Add(command);
        }

        foreach (var buckets in LabelBuckets.Claims(rows))
        {
            if (buckets.Cells.Length == 0)
            {
                continue;
            }

            var command = new NpgsqlBatchCommand("insert into run_label_buckets (run_id, cells, counts) values (@run, @cells, @counts)");
            command.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = buckets.RunId });
            command.Parameters.Add(new NpgsqlParameter("cells", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = buckets.Cells });
            command.Parameters.Add(new NpgsqlParameter("counts", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = buckets.Counts });
            bookkeeping.BatchCommands.Add(command);
        }

        // The runs' top-list entries of these rows (0033_run_label_top.sql).
        RunLabelTop.AddEntries(bookkeeping, rows, topCuts);
        await bookkeeping.ExecuteNonQueryAsync(cancellationToken);
        return rows.Count;
    }

    private static void AddMinutes(NpgsqlBatchCommand command, Guid[] runs, DateTime[] minutes, long[] counts)
    {
        command.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runs });
        command.Parameters.Add(new NpgsqlParameter("minutes", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = minutes });
        command.Parameters.Add(new NpgsqlParameter("counts", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = counts });
    }

    // Some keys are stored: COPY into a transaction-scoped staging table, then an insert that leaves stored rows alone
    // unless their source changed, and lists the rows another run wrote from the same source as reused.
    private async Task<int> WriteThroughStagingAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<ScoreRow> rows, CancellationToken cancellationToken)
    {
        await using (var create = new NpgsqlCommand(
            "create temp table score_staging (like scores including defaults) on commit drop", connection, tx))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        await CopyRowsAsync(connection, "score_staging", rows, cancellationToken);

        // One row per key (the batch holds each key once), in key order, so that concurrent writers lock rows in the
        // same order. A replaced row moves to the new run; the dashboard triggers (0010) take it out of the old run's
        // summaries and add it to the new run's. The batch's rows of ended runs were left out before the copy.
        int inserted;
        await using (var insert = new NpgsqlCommand(
            "insert into scores select s.* from score_staging s order by model_id, record_id " +
            "on conflict (model_id, record_id) do update set run_id = excluded.run_id, probabilities = excluded.probabilities, " +
            "embedding = excluded.embedding, embedding_packed = excluded.embedding_packed, windows_used = excluded.windows_used, source_blob = excluded.source_blob, " +
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
            "select s.run_id, s.model_id, s.record_id from score_staging s " +
            "join scores c on c.model_id = s.model_id and c.record_id = s.record_id and c.run_id <> s.run_id " +
            "order by 1, 2, 3 on conflict do nothing; " +
            // Then the entries of the runs that count the stored rows of these keys (0033_run_label_top.sql).
            "select run_label_top_add_staged()",
            connection,
            tx))
        {
            await reuse.ExecuteNonQueryAsync(cancellationToken);
        }

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
