using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// The result writer's part in each run's list of its highest rows per label (infra/sql/0030_run_label_top.sql), which
/// serves the dashboard's flagged-records pages without reading every row of the run. In a batch's transaction it reads
/// the cuts of the batch's runs (only runs whose list is complete) and says that it keeps the entries
/// (<c>hubert.top_entries</c>); on the direct COPY path it sends the batch's entries at or above the cuts as one row of
/// <c>run_label_top_batches</c> per run (the staging path adds its entries in SQL, <c>run_label_top_add_staged</c>);
/// after the commit it adds the batch's bucket counts to its own per-run counts and raises a run's cuts when the bucket
/// where its own top <see cref="Top"/> rows of a label end has risen. The writer's fold moves the batch rows into the
/// indexed list (<c>run_label_top_compact</c>), and makes a run's list once the run has <see cref="EstablishRows"/> rows
/// (<see cref="EstablishAsync"/>).
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

    /// <summary>Runs whose counts one writer keeps (the least recently written go first).</summary>
    private const int MaxRuns = 16;

    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, RunCounts> _runs = [];
    private long _clock;

    private sealed class RunCounts(int labels)
    {
        public readonly int Labels = labels;
        public readonly int[] Dense = new int[labels * LabelGrid.Buckets];
        public long LastUsed;
    }

    /// <summary>In the probe of a batch: the transaction keeps the entries, and the cuts of its runs whose list is complete.</summary>
    public static void AddProbe(NpgsqlBatch probe, Guid[] runIds)
    {
        probe.BatchCommands.Add(new NpgsqlBatchCommand("select set_config('hubert.top_entries', 'on', true)"));
        var cuts = new NpgsqlBatchCommand("select run_id, cuts from run_label_top_cuts where run_id = any (@runs) and state = 'complete'");
        cuts.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runIds });
        probe.BatchCommands.Add(cuts);
    }

    /// <summary>Reads what <see cref="AddProbe"/> asked, the reader positioned before the set_config result.</summary>
    public static async Task<Dictionary<Guid, float?[]?>> ReadProbeAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        await reader.NextResultAsync(cancellationToken);
        await reader.NextResultAsync(cancellationToken);
        var cuts = new Dictionary<Guid, float?[]?>();
        while (await reader.ReadAsync(cancellationToken))
        {
            cuts[reader.GetGuid(0)] = reader.IsDBNull(1) ? null : reader.GetFieldValue<float?[]>(1);
        }

        return cuts;
    }

    /// <summary>
    /// The direct path's entries: per run with a complete list, the rows' probabilities at or above the run's cut of
    /// their label (NaN included: Postgres orders it above every number), as one <c>run_label_top_batches</c> row.
    /// </summary>
    public static void AddEntries(NpgsqlBatch batch, IReadOnlyList<ScoreRow> rows, IReadOnlyDictionary<Guid, float?[]?> cutsByRun)
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
            var indexes = new List<int>();
            var probabilities = new List<float>();
            foreach (var row in run)
            {
                var entered = false;
                var values = row.Probabilities;
                for (var i = 0; i < values.Length; i++)
                {
                    var p = values[i];
                    var cut = cuts is not null && i < cuts.Length ? cuts[i] : null;
                    if (cut is { } c && !float.IsNaN(p) && !(p >= c))
                    {
                        continue;
                    }

                    if (!entered)
                    {
                        records.Add(row.RecordId);
                        entered = true;
                    }

                    positions.Add((short)i);
                    indexes.Add(records.Count - 1);
                    probabilities.Add(p);
                }
            }

            if (positions.Count == 0)
            {
                continue;
            }

            var insert = new NpgsqlBatchCommand(
                "insert into run_label_top_batches (run_id, record_ids, positions, rows, probabilities) values (@run, @records, @positions, @rows, @probabilities)");
            insert.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = run.Key });
            insert.Parameters.Add(new NpgsqlParameter("records", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = records.ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("positions", NpgsqlDbType.Array | NpgsqlDbType.Smallint) { Value = positions.ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("rows", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = indexes.ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("probabilities", NpgsqlDbType.Array | NpgsqlDbType.Real) { Value = probabilities.ToArray() });
            batch.BatchCommands.Add(insert);
        }
    }

    /// <summary>
    /// After a direct batch committed: adds its bucket counts to this writer's counts of each run, and raises the runs'
    /// cuts where the bucket in which this writer's own top <see cref="Top"/> rows of a label end lies above the cut read
    /// in the batch (those rows are the run's, so at least <see cref="Top"/> of the run's rows stay above the cut).
    /// A failure is not the batch's: its rows are committed, and a cut left low only keeps more entries.
    /// </summary>
    public async Task CommittedAsync(
        NpgsqlConnection connection, IReadOnlyList<LabelBucketClaim> claims, IReadOnlyDictionary<Guid, float?[]?> cutsByRun,
        CancellationToken cancellationToken)
    {
        List<(Guid Run, float?[] Cuts)>? raises = null;
        lock (_gate)
        {
            foreach (var claim in claims)
            {
                if (!cutsByRun.TryGetValue(claim.RunId, out var known))
                {
                    continue;
                }

                var counts = CountsOf(claim);
                if (counts is null)
                {
                    continue;
                }

                for (var j = 0; j < claim.Cells.Length; j++)
                {
                    counts.Dense[claim.Cells[j]] += (int)claim.Counts[j];
                }

                var cuts = Cuts(counts);
                var raised = false;
                for (var i = 0; i < cuts.Length; i++)
                {
                    var old = known is not null && i < known.Length ? known[i] : null;
                    raised |= cuts[i] is { } c && (old is not { } o || c > o);
                }

                if (raised)
                {
                    (raises ??= []).Add((claim.RunId, cuts));
                }
            }
        }

        if (raises is null)
        {
            return;
        }

        try
        {
            await using var batch = new NpgsqlBatch(connection);
            foreach (var (run, cuts) in raises)
            {
                var raise = new NpgsqlBatchCommand("select run_label_top_raise(@run, @cuts)");
                raise.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = run });
                raise.Parameters.Add(new NpgsqlParameter("cuts", NpgsqlDbType.Array | NpgsqlDbType.Real) { Value = cuts });
                batch.BatchCommands.Add(raise);
            }

            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (NpgsqlException) when (!cancellationToken.IsCancellationRequested)
        {
            // The cuts stay where they were: correct, with more entries than needed until a later batch raises them.
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
    /// After a fold: a run of <paramref name="runIds"/> still without its list that has at least <paramref name="rows"/>
    /// rows gets it (<c>run_label_top_establish</c>: one pass over its rows, its writers held back meanwhile). A failure
    /// leaves the run pending, for the next fold.
    /// </summary>
    public static async Task EstablishAsync(NpgsqlConnection connection, IReadOnlyList<Guid> runIds, long rows, CancellationToken cancellationToken)
    {
        try
        {
            await using var establish = new NpgsqlCommand("select run_label_top_establish(@runs, @rows)", connection);
            establish.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runIds.ToArray() });
            establish.Parameters.Add(new NpgsqlParameter("rows", NpgsqlDbType.Bigint) { Value = rows });
            await establish.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (NpgsqlException) when (!cancellationToken.IsCancellationRequested)
        {
            // Still pending: the next fold tries again.
        }
    }

    /// <summary>
    /// Per label, the grid threshold g_k of the bucket where the top <see cref="Top"/> counted rows end (bucket 2k + 1
    /// or 2k + 2; the bucket above 1 gives g_1000), or null (no cut) while fewer rows are counted or they end below 0.
    /// </summary>
    internal static float?[] Cuts(int[] dense, int labels)
    {
        var cuts = new float?[labels];
        for (var i = 0; i < labels; i++)
        {
            var sum = 0L;
            for (var b = LabelGrid.Buckets - 1; b >= 0; b--)
            {
                sum += dense[i * LabelGrid.Buckets + b];
                if (sum >= Top)
                {
                    cuts[i] = b == 0 ? null : LabelGrid.Threshold(Math.Min((b - 1) / 2, LabelGrid.Steps));
                    break;
                }
            }
        }

        return cuts;
    }

    private static float?[] Cuts(RunCounts counts) => Cuts(counts.Dense, counts.Labels);

    // This writer's counts of a run, made (the least recently used dropped beyond MaxRuns) or grown to the claim's labels.
    private RunCounts? CountsOf(LabelBucketClaim claim)
    {
        var labels = claim.Cells.Length == 0 ? 0 : claim.Cells.Max() / LabelGrid.Buckets + 1;
        if (!_runs.TryGetValue(claim.RunId, out var counts) || counts.Labels < labels)
        {
            if (labels == 0)
            {
                return counts;
            }

            var grown = new RunCounts(labels);
            if (counts is not null)
            {
                Array.Copy(counts.Dense, grown.Dense, counts.Dense.Length);
            }
            else if (_runs.Count >= MaxRuns)
            {
                _runs.Remove(_runs.MinBy(r => r.Value.LastUsed).Key);
            }

            _runs[claim.RunId] = counts = grown;
        }

        counts.LastUsed = ++_clock;
        return counts;
    }
}
