using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The per-run label bucket counts (0025_threshold_buckets.sql) stay equal to a count over the rows through direct
/// writes, staging writes, replaced rows, reused rows, deletes and folds; and a threshold change, global or a set's, on
/// the grid or off it, leaves run_label_positives equal to a recount over the rows, taking the share lock on scores only
/// off the grid.
/// </summary>
public sealed class ThresholdBucketsTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task CountsStayExactThroughWritesReplacementsReusesDeletesAndThresholdChanges()
    {
        const string model = "bucket-model";
        var store = new RunStore(database.DataSource);
        var first = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "b/", shardSize: 10);
        var second = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "b/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource);
        var at = DateTime.UtcNow;
        ScoreRow Row(Guid run, int i, string etag) => new(model, $"rec-{i}", run, Probabilities(i, etag), new float[16], 1, $"b/rec-{i}.npy", etag, at);

        for (var start = 0; start < 300; start += 100)
        {
            Assert.Equal(100, await writer.WriteScoresAsync([.. Enumerable.Range(start, 100).Select(i => Row(first, i, "\"v1\""))]));
        }

        // The second run: 50 records unchanged (reused), 20 changed (replaced, moving to it), 30 new.
        List<ScoreRow> mixed =
        [
            .. Enumerable.Range(0, 50).Select(i => Row(second, i, "\"v1\"")),
            .. Enumerable.Range(50, 20).Select(i => Row(second, i, "\"v2\"")),
            .. Enumerable.Range(300, 30).Select(i => Row(second, i, "\"v1\"")),
        ];
        Assert.Equal(50, await writer.WriteScoresAsync(mixed));
        await ExecuteAsync($"delete from scores where model_id = '{model}' and record_id in ('rec-100', 'rec-101', 'rec-102', 'rec-310')");
        await AssertExactAsync(first, second);

        // Global thresholds on the grid: recounted from the buckets, without the share lock on scores.
        Assert.False(await ChangeHoldsShareLockOnScoresAsync(
            "insert into label_thresholds (position, threshold) values (0, 0.3), (1, 0.001), (2, 1), (3, 0), (4, 0.125)"));
        await AssertExactAsync(first, second);
        Assert.False(await ChangeHoldsShareLockOnScoresAsync("update label_thresholds set threshold = 0.999 where position = 1"));
        await AssertExactAsync(first, second);

        // Off the grid: the recount over the rows, as before.
        Assert.True(await ChangeHoldsShareLockOnScoresAsync("update label_thresholds set threshold = 0.12345 where position = 0"));
        await AssertExactAsync(first, second);
        Assert.False(await ChangeHoldsShareLockOnScoresAsync("delete from label_thresholds"));
        await AssertExactAsync(first, second);

        // A threshold set (inclusive) on the grid, then one with thresholds off the grid.
        var onGrid = await CreateSetAsync(model, "grid", 1, p => p % 7 == 0 ? null : (p % 11) / 10f);
        await ActivateAsync(onGrid);
        await AssertExactAsync(first, second);
        var offGrid = await CreateSetAsync(model, "grid", 2, p => p % 5 == 0 ? 0.33333f : LabelGrid.Threshold(p * 6));
        await ActivateAsync(offGrid);
        await AssertExactAsync(first, second);

        // Rows written while a set is active (the positives claim does not hold; the bucket claim does), then a fold.
        Assert.Equal(40, await writer.WriteScoresAsync([.. Enumerable.Range(400, 40).Select(i => Row(second, i, "\"v1\""))]));
        await AssertExactAsync(first, second);
        await ExecuteAsync($"select run_label_buckets_fold(array['{first}', '{second}']::uuid[])");
        Assert.Equal(1, await Runs.CountAsync(database.DataSource, "select count(*) from run_label_buckets where run_id = @run", second));
        await AssertExactAsync(first, second);
        await ActivateAsync(onGrid);
        await AssertExactAsync(first, second);
    }

    [Fact]
    public async Task TheResultWriterFoldsTheBucketRowsOfItsRunsItselfAndTheCountsStayExact()
    {
        const string model = "bucket-writer-fold";
        var store = new RunStore(database.DataSource);
        var run = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "f/", shardSize: 10);
        var other = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "f/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource) { FoldEvery = 4 };
        var at = DateTime.UtcNow;
        ScoreRow Row(Guid r, int i) => new(model, $"f-{i:D5}", r, Probabilities(i, "\"f\""), new float[16], 1, $"f/f-{i:D5}.npy", "\"f\"", at);

        // A delta row that a claim left unchecked (its transaction committed without the insert that checks it) counts
        // for nothing: the fold drops it, as run_label_buckets_fold does.
        await ExecuteAsync($"insert into run_label_buckets (run_id, cells, counts, claim_xid, claim_rows) values ('{run}', '{{5}}', '{{1000}}', '1'::xid8, 1)");

        // 11 batches of new keys: the writer folds after its 4th and 8th (the run's rows before each fold become one row).
        for (var batch = 0; batch < 11; batch++)
        {
            Assert.Equal(60, await writer.WriteScoresAsync([.. Enumerable.Range(batch * 60, 60).Select(i => Row(run, i))]));
            if (batch == 3 || batch == 7)
            {
                Assert.Equal(1, await Runs.CountAsync(database.DataSource, "select count(*) from run_label_buckets where run_id = @run", run));
            }

            await AssertExactAsync(run);
        }

        Assert.Equal(4, await Runs.CountAsync(database.DataSource, "select count(*) from run_label_buckets where run_id = @run", run));

        // A batch of two runs folds both; rows written by SQL (counted in the trigger) fold there as before.
        await writer.FoldBucketsAsync([run, other], CancellationToken.None);
        Assert.Equal(1, await Runs.CountAsync(database.DataSource, "select count(*) from run_label_buckets where run_id = @run", run));
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_label_buckets where run_id = @run", other));
        await AssertExactAsync(run, other);

        // A run whose rows cancel out entirely has no bucket row left after a fold.
        Assert.Equal(30, await writer.WriteScoresAsync([.. Enumerable.Range(5000, 30).Select(i => Row(other, i))]));
        await ExecuteAsync($"delete from scores where run_id = '{other}'");
        await writer.FoldBucketsAsync([other], CancellationToken.None);
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_label_buckets where run_id = @run", other));
        await AssertExactAsync(run, other);
    }

    [Fact]
    public async Task TheWritersOwnCountsOfABatchOfTwoModelsAndTwoMinutesEqualCountsOverTheRows()
    {
        // Model a at the global thresholds; model b with an active set of inclusive thresholds, some labels left to the
        // global ones. One batch holds rows of both, scored in two different minutes, some with fewer probabilities.
        var store = new RunStore(database.DataSource);
        var runA = await Runs.SubmitAsync(store, TestModels.Descriptor("bookkeeping-a"), "c", "ka/", shardSize: 10);
        var runB = await Runs.SubmitAsync(store, TestModels.Descriptor("bookkeeping-b"), "c", "kb/", shardSize: 10);
        await ActivateAsync(await CreateSetAsync("bookkeeping-b", "inclusive", 1, p => p % 3 == 0 ? null : LabelGrid.Threshold((p * 37) % 1001)));
        var writer = new ResultWriter(database.DataSource);
        var minute = new DateTime(2026, 12, 6, 9, 0, 0, DateTimeKind.Utc);
        ScoreRow Row(string model, Guid run, int i) => new(
            model, $"k-{i}", run, i % 10 == 9 ? Probabilities(i, "\"k\"")[..100] : Probabilities(i, "\"k\""), new float[16], 1, $"k/{i}.npy", "\"k\"",
            minute.AddSeconds(i % 2 == 0 ? 59.999 : 60.001));

        List<ScoreRow> batch = [.. Enumerable.Range(0, 120).Select(i => i % 3 == 0 ? Row("bookkeeping-b", runB, i) : Row("bookkeeping-a", runA, i))];
        Assert.Equal(120, await writer.WriteScoresAsync(batch, "worker-k", CancellationToken.None));
        await AssertExactAsync(runA, runB);

        // Rows per run and minute, overall and for the writer, equal a count over the rows (and were not also counted
        // by the trigger).
        foreach (var run in new[] { runA, runB })
        {
            Assert.Equal(0, await Runs.CountAsync(
                database.DataSource,
                "select count(*) from (select date_trunc('minute', scored_at) as minute, count(*) as n from scores where run_id = @run group by 1) c " +
                "full join (select minute, records_scored as n from run_progress_minutes where run_id = @run and records_scored <> 0) m using (minute) " +
                "full join (select minute, records_scored as n from worker_progress_minutes where run_id = @run and worker = 'worker-k') w using (minute) " +
                "where c.n is distinct from m.n or c.n is distinct from w.n",
                run));
            Assert.Equal(2, await Runs.CountAsync(database.DataSource, "select count(*) from run_progress_minutes where run_id = @run", run));
        }
    }

    [Fact]
    public async Task AThresholdChangeWaitsForAWriterInItsTransactionAndThenCountsItsRows()
    {
        const string model = "bookkeeping-race";
        var store = new RunStore(database.DataSource);
        var run = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "kr/", shardSize: 10);
        var patience = TimeSpan.FromSeconds(60);
        var atCommit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writer = new ResultWriter(database.DataSource)
        {
            BeforeCommit = async (_, ct) =>
            {
                atCommit.TrySetResult();
                await release.Task.WaitAsync(patience, ct);
            },
        };
        var at = DateTime.UtcNow;
        var write = writer.WriteScoresAsync([.. Enumerable.Range(0, 80).Select(i => new ScoreRow(model, $"kr-{i}", run, Probabilities(i, "\"r\""), new float[16], 1, $"kr/{i}.npy", "\"r\"", at))]);
        await atCommit.Task.WaitAsync(patience);

        // The writer holds the model's threshold lock shared, its rows and counts uncommitted: activating a set waits...
        var set = await CreateSetAsync(model, "race", 1, p => LabelGrid.Threshold((p * 13) % 1001));
        await using var changer = await database.DataSource.OpenConnectionAsync();
        await using var activate = new NpgsqlCommand("select threshold_set_activate(@id)", changer);
        activate.Parameters.AddWithValue("id", set);
        var activating = activate.ExecuteNonQueryAsync();
        var deadline = DateTime.UtcNow + patience;
        while (!await WaitsOnALockAsync(changer.ProcessID))
        {
            Assert.True(DateTime.UtcNow < deadline, "the threshold change did not wait for the writer within " + patience);
            await Task.Delay(20);
        }

        Assert.False(activating.IsCompleted);

        // ...and, once the writer commits, recounts with its rows.
        release.SetResult();
        Assert.Equal(80, await write.WaitAsync(patience));
        await activating.WaitAsync(patience);
        await AssertExactAsync(run);
        Assert.True(await Runs.CountAsync(database.DataSource, "select coalesce(sum(positives), 0)::bigint from run_label_positives where run_id = @run", run) > 0);
    }

    [Theory]
    [InlineData("bucket-claim-taken", 1, true)] // the claimed rows match the statement's: the (deliberately wrong) cells are taken
    [InlineData("bucket-claim-wrong-rows", 2, false)] // two rows claimed for one added: counted from the row
    public async Task TheTriggerTakesAWritersBucketCountsOnlyForExactlyTheRowsAdded(string model, int claimedRows, bool taken)
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await using (var claim = new NpgsqlCommand("select label_buckets_claim(@run, @rows, @cells, @counts)", connection, tx))
            {
                claim.Parameters.AddWithValue("run", runId);
                claim.Parameters.AddWithValue("rows", (long)claimedRows);
                claim.Parameters.Add(new NpgsqlParameter("cells", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = new[] { 7 } });
                claim.Parameters.Add(new NpgsqlParameter("counts", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = new[] { 1000L } });
                await claim.ExecuteNonQueryAsync();
            }

            await using (var insert = new NpgsqlCommand(
                "insert into scores values (@model, 'r1', @run, array_fill(0.75::real, array[164]), array_fill(0::real, array[16]), 1, 'p/r1.npy', 'e', now())",
                connection,
                tx))
            {
                insert.Parameters.AddWithValue("model", model);
                insert.Parameters.AddWithValue("run", runId);
                await insert.ExecuteNonQueryAsync();
            }

            await tx.CommitAsync();
        }

        Assert.Equal(taken ? 1000 : 0, await Runs.CountAsync(
            database.DataSource,
            "select coalesce(sum(u.n), 0)::bigint from run_label_buckets b cross join lateral unnest(b.cells, b.counts) u (cell, n) where b.run_id = @run and u.cell = 7",
            runId));
        Assert.Equal(taken ? 1 : 0, await BucketMismatchesAsync(database.DataSource, runId) > 0 ? 1 : 0);
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_label_buckets where claim_xid is not null and run_id = @run", runId));
    }

    /// <summary>Cells whose bucket count differs from a count over the run's rows and the rows it reused.</summary>
    public static Task<long> BucketMismatchesAsync(NpgsqlDataSource db, Guid runId) => Runs.CountAsync(
        db,
        "select count(*) from (" +
        "  select u.cell, sum(u.n) as n from run_label_buckets b cross join lateral unnest(b.cells, b.counts) u (cell, n)" +
        "  where b.run_id = @run and b.claim_xid is null group by 1 having sum(u.n) <> 0) a " +
        "full join (" +
        "  select (u.ord::integer - 1) * 2003 + label_grid_bucket(u.p) as cell, count(*) as n" +
        "  from (select s.probabilities from scores s where s.run_id = @run" +
        "        union all select s.probabilities from run_reused_scores r join scores s using (model_id, record_id) where r.run_id = @run) x" +
        "  cross join lateral unnest(x.probabilities) with ordinality u (p, ord) where u.p is not null group by 1) c using (cell) " +
        "where a.n is distinct from c.n",
        runId);

    /// <summary>Labels whose run_label_positives differ from a recount over the run's rows and reused rows.</summary>
    public static Task<long> PositivesMismatchesAsync(NpgsqlDataSource db, Guid runId) => Runs.CountAsync(
        db,
        "select count(*) from (" +
        "  select t.position, count(*) as n" +
        "  from (select s.model_id, s.probabilities from scores s where s.run_id = @run" +
        "        union all select s.model_id, s.probabilities from run_reused_scores r join scores s using (model_id, record_id) where r.run_id = @run) x" +
        "  join dashboard_model_label_thresholds t on t.model_id = x.model_id" +
        "  where x.probabilities[t.position + 1] > t.threshold or (t.inclusive and x.probabilities[t.position + 1] = t.threshold)" +
        "  group by 1) a " +
        "full join (select position, positives from run_label_positives where run_id = @run and positives <> 0) p using (position) " +
        "where a.n is distinct from p.positives",
        runId);

    private async Task AssertExactAsync(params Guid[] runs)
    {
        foreach (var run in runs)
        {
            Assert.Equal(0, await BucketMismatchesAsync(database.DataSource, run));
            Assert.Equal(0, await PositivesMismatchesAsync(database.DataSource, run));
        }
    }

    // Probabilities that sit on grid thresholds, one float either side of them, at the ends, NaN, and in between.
    private static float[] Probabilities(int record, string etag)
    {
        var random = new Random(record * 31 + etag.Length + (etag.Contains('2') ? 7 : 0));
        return Enumerable.Range(0, 164).Select(label => (random.Next(8)) switch
        {
            0 => LabelGrid.Threshold(random.Next(LabelGrid.Steps + 1)),
            1 => MathF.BitIncrement(LabelGrid.Threshold(random.Next(LabelGrid.Steps + 1))),
            2 => MathF.BitDecrement(LabelGrid.Threshold(random.Next(LabelGrid.Steps + 1))),
            3 => new[] { 0f, 1f, 0.3f, 0.5f, 0.125f, 0.001f, 0.12345f, 0.33333f }[random.Next(8)],
            4 => label % 41 == 0 ? float.NaN : 0.5f,
            _ => random.NextSingle(),
        }).ToArray();
    }

    private async Task<bool> ChangeHoldsShareLockOnScoresAsync(string change)
    {
        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        await using (var cmd = new NpgsqlCommand(change, connection, tx))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        bool held;
        await using (var locks = new NpgsqlCommand(
            "select exists (select 1 from pg_locks where pid = pg_backend_pid() and relation = 'scores'::regclass and mode = 'ShareLock')",
            connection,
            tx))
        {
            held = (bool)(await locks.ExecuteScalarAsync())!;
        }

        await tx.CommitAsync();
        return held;
    }

    private async Task<Guid> CreateSetAsync(string model, string name, int version, Func<int, float?> threshold)
    {
        var id = Guid.NewGuid();
        await using var cmd = database.DataSource.CreateCommand(
            "insert into threshold_sets (set_id, model_id, name, version, rule, scores_source, labels_file, labels_sha256, cohort_size) " +
            "values (@id, @model, @name, @version, 'youden', 'test', 'labels.csv', repeat('a', 64), 10); " +
            "insert into threshold_set_labels (set_id, position, threshold) select @id, p, t from unnest(@positions, @thresholds) x (p, t)");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("model", model);
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.AddWithValue("version", version);
        cmd.Parameters.Add(new NpgsqlParameter("positions", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = Enumerable.Range(0, 164).ToArray() });
        cmd.Parameters.Add(new NpgsqlParameter("thresholds", NpgsqlDbType.Array | NpgsqlDbType.Real) { Value = Enumerable.Range(0, 164).Select(threshold).ToArray() });
        await cmd.ExecuteNonQueryAsync();
        return id;
    }

    private async Task ActivateAsync(Guid set)
    {
        await using var cmd = database.DataSource.CreateCommand("select threshold_set_activate(@id)");
        cmd.Parameters.AddWithValue("id", set);
        await cmd.ExecuteNonQueryAsync();
    }

    private async Task<bool> WaitsOnALockAsync(int pid)
    {
        await using var cmd = database.DataSource.CreateCommand("select exists (select 1 from pg_stat_activity where pid = @pid and wait_event_type = 'Lock')");
        cmd.Parameters.AddWithValue("pid", pid);
        return (bool)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
