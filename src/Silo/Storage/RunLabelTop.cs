using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// The result writer's part in each run's list of its highest rows per label (infra/sql/0033_run_label_top.sql), which
/// serves the dashboard's flagged-records pages without reading every row of the run. In a batch's transaction it reads
/// the cuts of the batch's runs (runs whose list is being made or complete) and says that it keeps the entries
/// (<c>hubert.top_entries</c>); on the direct COPY path it sends the batch's entries at or above the cuts in page order
/// (<see cref="Cuts.AtOrAbove"/>) as one row of <c>run_label_top_batches</c> per run (the staging path adds its entries
/// in SQL, <c>run_label_top_add_staged</c>). The writer's fold moves the batch rows of complete runs into the indexed
/// list and raises the cuts from it (<c>run_label_top_compact</c>), and starts a run's list once the run has
/// <see cref="EstablishRows"/> rows:
/// <c>run_label_top_begin</c> in the fold, then the pass over the run's rows in a background task of this writer
/// (<see cref="StartPasses"/>), which holds no writer back.
/// </summary>
internal sealed class RunLabelTop
{
    /// <summary>Rows per label kept above the cut (20 pages of 50).</summary>
    public const int Top = 1000;

    /// <summary>
    /// Rows of a run (written or reused) from which its list is kept: below, its pages read its rows (about 2 us a
    /// row), and keeping entries from a run's first rows would cost more than the rows (docs/benchmarks.md).
    /// </summary>
    public const long EstablishRows = 200_000;

    // The passes this writer runs (step 2 and 3 of the header of 0033), by run.
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, Task> _passes = [];

    /// <summary>
    /// In the probe of a batch, after the statement that share-locks the batch's runs' rows (a statement of its own, so
    /// that the cuts are read after the lock: the visibility rule of 0033's header): the transaction keeps the entries,
    /// and the cuts of its runs whose list is being made or complete.
    /// </summary>
    public static void AddProbe(NpgsqlBatch probe, Guid[] runIds)
    {
        probe.BatchCommands.Add(new NpgsqlBatchCommand("select set_config('hubert.top_entries', 'on', true)"));
        var cuts = new NpgsqlBatchCommand("select run_id, cuts, cut_records from run_label_top_cuts where run_id = any (@runs) and state in ('establishing', 'complete')");
        cuts.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runIds });
        probe.BatchCommands.Add(cuts);
    }

    /// <summary>Reads what <see cref="AddProbe"/> asked, the reader positioned before the set_config result.</summary>
    public static async Task<Dictionary<Guid, Cuts>> ReadProbeAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        await reader.NextResultAsync(cancellationToken);
        await reader.NextResultAsync(cancellationToken);
        var cuts = new Dictionary<Guid, Cuts>();
        while (await reader.ReadAsync(cancellationToken))
        {
            cuts[reader.GetGuid(0)] = new Cuts(
                reader.IsDBNull(1) ? [] : reader.GetFieldValue<float?[]>(1),
                reader.IsDBNull(2) ? [] : reader.GetFieldValue<string?[]>(2));
        }

        return cuts;
    }

    /// <summary>
    /// A run's cuts: per label position the cut's probability (null, or past the end: below every row) and record
    /// (null, or past the end: every row at the cut's probability is above the cut).
    /// </summary>
    public sealed record Cuts(float?[] Probabilities, string?[] Records)
    {
        /// <summary>
        /// Whether (p, record) of label <paramref name="position"/> is at or above the cut in page order, as
        /// <c>run_label_top_at_or_above</c> decides it: probability descending (NaN above every number, as Postgres
        /// orders it), then record id ascending in the "C" collation (UTF-8 byte order).
        /// </summary>
        public bool AtOrAbove(int position, float p, string record)
        {
            if (position >= Probabilities.Length || Probabilities[position] is not { } cut)
            {
                return true;
            }

            if (float.IsNaN(cut))
            {
                return float.IsNaN(p) && AtOrAboveRecord(position, record);
            }

            if (float.IsNaN(p) || p > cut)
            {
                return true;
            }

            return p == cut && AtOrAboveRecord(position, record);
        }

        private bool AtOrAboveRecord(int position, string record) =>
            position >= Records.Length || Records[position] is not { } cutRecord || CompareUtf8(record, cutRecord) <= 0;
    }

    /// <summary>
    /// Compares two strings in the order of their UTF-8 bytes (Postgres' "C" collation): UTF-16 code unit order except
    /// that a surrogate pair (a code point above U+FFFF) comes after every other code unit.
    /// </summary>
    public static int CompareUtf8(string a, string b)
    {
        var n = Math.Min(a.Length, b.Length);
        for (var i = 0; i < n; i++)
        {
            var x = a[i];
            var y = b[i];
            if (x == y)
            {
                continue;
            }

            if (char.IsSurrogate(x) != char.IsSurrogate(y))
            {
                return char.IsSurrogate(x) ? 1 : -1;
            }

            return x < y ? -1 : 1;
        }

        return a.Length.CompareTo(b.Length);
    }

    /// <summary>
    /// The direct path's entries: per run with a list, the rows' probabilities at or above the run's cut of their label
    /// in page order (<see cref="Cuts.AtOrAbove"/>), as one <c>run_label_top_batches</c> row.
    /// </summary>
    public static void AddEntries(NpgsqlBatch batch, IReadOnlyList<ScoreRow> rows, IReadOnlyDictionary<Guid, Cuts> cutsByRun)
    {
        if (cutsByRun.Count == 0)
        {
            return;
        }

        foreach (var run in rows.GroupBy(r => r.RunId))
        {
            if (!cutsByRun.TryGetValue(run.Key, out var cuts))
            {
                continue;
            }

            var records = new List<string>();
            var positions = new List<short>();
            var probabilities = new List<float>();
            foreach (var row in run)
            {
                var values = row.Probabilities;
                for (var i = 0; i < values.Length; i++)
                {
                    var p = values[i];
                    if (!cuts.AtOrAbove(i, p, row.RecordId))
                    {
                        continue;
                    }

                    records.Add(row.RecordId);
                    positions.Add((short)i);
                    probabilities.Add(p);
                }
            }

            if (positions.Count == 0)
            {
                continue;
            }

            var insert = new NpgsqlBatchCommand(
                "insert into run_label_top_batches (run_id, record_ids, positions, probabilities) values (@run, @records, @positions, @probabilities)");
            insert.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = run.Key });
            insert.Parameters.Add(new NpgsqlParameter("records", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = records.ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("positions", NpgsqlDbType.Array | NpgsqlDbType.Smallint) { Value = positions.ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("probabilities", NpgsqlDbType.Array | NpgsqlDbType.Real) { Value = probabilities.ToArray() });
            batch.BatchCommands.Add(insert);
        }
    }

    /// <summary>The fold's part: the runs' batch rows into the indexed list, entries below the cuts dropped.</summary>
    public static async Task CompactAsync(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyList<Guid> runIds, CancellationToken cancellationToken)
    {
        await using var compact = new NpgsqlCommand("select run_label_top_compact(@runs)", connection, tx);
        compact.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runIds.ToArray() });
        await compact.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// After a fold: step 1 of making a run's list (<c>run_label_top_begin</c>: a run of <paramref name="runIds"/> still
    /// pending with at least <paramref name="rows"/> rows moves to 'establishing'); returns the runs of
    /// <paramref name="runIds"/> that are establishing. A failure leaves the run as it was, for the next fold.
    /// </summary>
    public static async Task<List<Guid>> BeginAsync(NpgsqlConnection connection, IReadOnlyList<Guid> runIds, long rows, CancellationToken cancellationToken)
    {
        var establishing = new List<Guid>();
        try
        {
            await using var begin = new NpgsqlCommand("select run_label_top_begin(@runs, @rows, @top)", connection);
            begin.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runIds.ToArray() });
            begin.Parameters.Add(new NpgsqlParameter("rows", NpgsqlDbType.Bigint) { Value = rows });
            begin.Parameters.Add(new NpgsqlParameter("top", NpgsqlDbType.Integer) { Value = Top });
            await using var reader = await begin.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                establishing.Add(reader.GetGuid(0));
            }
        }
        catch (NpgsqlException) when (!cancellationToken.IsCancellationRequested)
        {
            // Still pending: the next fold tries again.
        }

        return establishing;
    }

    /// <summary>
    /// Starts the pass (steps 2 and 3) of each run of <paramref name="runIds"/> that this writer is not passing already,
    /// in the background: the batch that called the fold does not wait for it.
    /// </summary>
    public void StartPasses(NpgsqlDataSource dataSource, IReadOnlyList<Guid> runIds)
    {
        lock (_gate)
        {
            foreach (var run in runIds)
            {
                if (_passes.TryGetValue(run, out var running) && !running.IsCompleted)
                {
                    continue;
                }

                _passes[run] = Task.Run(() => PassAsync(dataSource, run));
            }
        }
    }

    /// <summary>The passes this writer started, finished (tests wait on them).</summary>
    public Task PassesDoneAsync()
    {
        lock (_gate)
        {
            return Task.WhenAll(_passes.Values);
        }
    }

    // Steps 2 and 3 of 0033's header for one run, under a session advisory lock of the run (another writer passing it
    // already: nothing to do). A failure leaves the run establishing: the next fold that finds it so starts the pass again.
    private static async Task PassAsync(NpgsqlDataSource dataSource, Guid run)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            await using (var locking = new NpgsqlCommand("select pg_try_advisory_lock(hashtext('run_label_top'), hashtext(@run::text))", connection))
            {
                locking.Parameters.AddWithValue("run", run);
                if (!(bool)(await locking.ExecuteScalarAsync())!)
                {
                    return;
                }
            }

            try
            {
                await using (var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead))
                {
                    // The snapshot is taken by this first statement, after run_label_top_begin committed.
                    await using (var state = new NpgsqlCommand("select state from run_label_top_cuts where run_id = @run", connection, tx))
                    {
                        state.Parameters.AddWithValue("run", run);
                        if (await state.ExecuteScalarAsync() is not "establishing")
                        {
                            return;
                        }
                    }

                    var (positions, records, probabilities) = await CandidatesAsync(connection, tx, run);
                    await using (var fill = new NpgsqlCommand("select run_label_top_fill(@run, @positions, @records, @probabilities, @top)", connection, tx))
                    {
                        fill.CommandTimeout = 0;
                        fill.Parameters.AddWithValue("run", run);
                        fill.Parameters.Add(new NpgsqlParameter("positions", NpgsqlDbType.Array | NpgsqlDbType.Smallint) { Value = positions });
                        fill.Parameters.Add(new NpgsqlParameter("records", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = records });
                        fill.Parameters.Add(new NpgsqlParameter("probabilities", NpgsqlDbType.Array | NpgsqlDbType.Real) { Value = probabilities });
                        fill.Parameters.Add(new NpgsqlParameter("top", NpgsqlDbType.Integer) { Value = Top });
                        await fill.ExecuteNonQueryAsync();
                    }

                    await tx.CommitAsync();
                }

                await using var finish = new NpgsqlCommand("select run_label_top_finish(@run, @top)", connection);
                finish.CommandTimeout = 0;
                finish.Parameters.AddWithValue("run", run);
                finish.Parameters.Add(new NpgsqlParameter("top", NpgsqlDbType.Integer) { Value = Top });
                await finish.ExecuteNonQueryAsync();
            }
            finally
            {
                await using var unlock = new NpgsqlCommand("select pg_advisory_unlock(hashtext('run_label_top'), hashtext(@run::text))", connection);
                unlock.Parameters.AddWithValue("run", run);
                await unlock.ExecuteNonQueryAsync();
            }
        }
        catch (NpgsqlException)
        {
            // The run stays establishing, its pages read its rows; the next fold of the run starts the pass again.
        }
    }

    // The run's rows (written and reused) in the transaction's snapshot; per label the Top first in page order
    // (probability descending, NaN the highest as in Postgres, then record id ascending in UTF-8 byte order), kept in a
    // heap whose root is the last of them: ties at the cut are broken here, so what run_label_top_fill receives is the
    // list itself (164 x Top entries at most), whatever the ties.
    private static async Task<(short[] Positions, string[] Records, float[] Probabilities)> CandidatesAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, Guid run)
    {
        // The element is the stored probability; the priority holds the record.
        var heaps = new List<PriorityQueue<float, (float Key, string Record)>>();
        // Per label the key of the heap's root once the heap is full (a row below it cannot enter): most values stop here.
        var floors = new List<float>();
        await using (var read = new NpgsqlCommand(
            "select s.record_id, s.probabilities from scores s where s.run_id = @run " +
            "union all select s.record_id, s.probabilities from run_reused_scores r " +
            "join scores s on s.model_id = r.model_id and s.record_id = r.record_id where r.run_id = @run",
            connection,
            tx))
        {
            read.CommandTimeout = 0;
            read.Parameters.AddWithValue("run", run);
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var record = reader.GetString(0);
                var values = reader.GetFieldValue<float[]>(1);
                for (var i = 0; i < values.Length; i++)
                {
                    if (i == heaps.Count)
                    {
                        heaps.Add(new PriorityQueue<float, (float, string)>(Top + 1, LastInPageOrderFirst.Instance));
                        floors.Add(float.NegativeInfinity);
                    }

                    var p = values[i];
                    var value = float.IsNaN(p) ? float.PositiveInfinity : p;
                    if (value < floors[i])
                    {
                        continue;
                    }

                    var key = (value, record);
                    var heap = heaps[i];
                    if (heap.Count < Top)
                    {
                        heap.Enqueue(p, key);
                    }
                    else if (heap.TryPeek(out _, out var last) && LastInPageOrderFirst.Instance.Compare(key, last) > 0)
                    {
                        heap.DequeueEnqueue(p, key);
                    }
                    else
                    {
                        continue;
                    }

                    if (heap.Count == Top && heap.TryPeek(out _, out var root))
                    {
                        floors[i] = root.Key;
                    }
                }
            }
        }

        var positions = new List<short>();
        var names = new List<string>();
        var probabilities = new List<float>();
        for (var i = 0; i < heaps.Count; i++)
        {
            foreach (var (p, (_, record)) in heaps[i].UnorderedItems)
            {
                positions.Add((short)i);
                names.Add(record);
                probabilities.Add(p);
            }
        }

        return ([.. positions], [.. names], [.. probabilities]);
    }

    // Orders (probability key, record) from the last in page order to the first: a lower key first, then on a tie the
    // higher record (UTF-8 byte order). NaN keys come as +infinity (the highest, as Postgres orders NaN).
    private sealed class LastInPageOrderFirst : IComparer<(float Key, string Record)>
    {
        public static readonly LastInPageOrderFirst Instance = new();

        public int Compare((float Key, string Record) x, (float Key, string Record) y)
        {
            var byKey = x.Key.CompareTo(y.Key);
            return byKey != 0 ? byKey : CompareUtf8(y.Record, x.Record);
        }
    }
}
