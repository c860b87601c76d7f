using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The dashboard views of <c>infra/sql/0010_dashboard.sql</c> on small known datasets written through the product's
/// own paths (<see cref="RunStore"/> for runs and shards, <see cref="ResultWriter"/> for scores and quarantine).
/// Each test uses its own run, so the tests share one database.
/// </summary>
public sealed class DashboardViewsTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private const string ModelId = "dashboard-model";

    [Fact]
    public async Task ProgressShowsCountsPercentRatesAndEta()
    {
        var now = await DatabaseNowAsync();
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 3, recordsPerShard: 10);
        var started = now.AddHours(-4);
        await store.SaveProgressAsync(new RunProgressUpdate(runId, RunState.Running, 30, 10, 0, 0, 1, 0, 0, null, null, started, null));
        await ExecuteAsync($"update runs set started_at = now() - interval '4 hours' where run_id = '{runId}'"); // planning set it to now

        var writer = new ResultWriter(database.DataSource);
        var rows = new List<ScoreRow>();
        rows.AddRange(Enumerable.Range(0, 3).Select(i => Score(runId, $"old-{i}", now.AddHours(-3))));
        rows.AddRange(Enumerable.Range(0, 6).Select(i => Score(runId, $"hour-{i}", now.AddMinutes(-30))));
        rows.Add(Score(runId, "edge-70", now.AddSeconds(-70)));

        // Spread over the last minute (leaving 20 s for the test to reach its query), so that the minute boundary and
        // the window start fall between them at different seconds of the clock.
        rows.AddRange(new[] { -40, -35, -25, -15 }.Select(s => Score(runId, $"minute{s}", now.AddSeconds(s))));
        rows.AddRange(Enumerable.Range(0, 2).Select(i => Score(runId, $"inflight-{i}", now.AddSeconds(-5))));
        Assert.Equal(16, await writer.WriteScoresAsync(rows));
        Assert.Equal(2, await writer.WriteQuarantineAsync(
        [
            new QuarantineRow(runId, "bad-1", 1, "p/bad-1.hea", "header: missing lead V4", now.AddSeconds(-20)),
            new QuarantineRow(runId, "bad-2", 1, "p/bad-2.hea", "header: missing lead V4", now.AddSeconds(-20)),
        ]));

        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        await using var cmd = new NpgsqlCommand(
            "select state, records_planned, records_done, records_quarantined, records_failed, records_remaining, percent_done, " +
            "rate_last_minute, rate_last_hour, eta_seconds, " +
            "extract(epoch from now() - (date_trunc('minute', now()) - interval '59 minutes'))::double precision, " +
            "name, shards_planned, planning_complete, eta_at - now() " +
            "from dashboard_run_progress where run_id = @run",
            connection,
            tx);
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal("running", reader.GetString(0));
            Assert.Equal(30, reader.GetInt64(1));
            Assert.Equal(16, reader.GetInt64(2)); // rows written beat the coordinator's 10 (shard 0)
            Assert.Equal(2, reader.GetInt64(3));
            Assert.Equal(0, reader.GetInt64(4));
            Assert.Equal(12, reader.GetInt64(5));
            Assert.Equal(60.00m, reader.GetDecimal(6));
            Assert.Equal(8 / 60.0, reader.GetDouble(7), 9); // 4 + 2 scored and 2 quarantined in the last minute
            Assert.Equal(15 / reader.GetDouble(10), reader.GetDouble(8), 9); // the 3 rows of 3 hours ago are out
            Assert.Equal(12 / (8 / 60.0), reader.GetDouble(9), 6);
            Assert.Equal("dashboard run", reader.GetString(11));
            Assert.Equal(3, reader.GetInt32(12));
            Assert.True(reader.GetBoolean(13));
            Assert.Equal(90, reader.GetFieldValue<TimeSpan>(14).TotalSeconds, 3);
        }

        await tx.CommitAsync();

        await store.SaveProgressAsync(new RunProgressUpdate(runId, RunState.Completed, 18, 16, 2, 0, 3, 0, 0, 0, null, started, now));
        await using var done = database.DataSource.CreateCommand(
            "select records_planned, records_remaining, percent_done, eta_seconds from dashboard_run_progress where run_id = @run");
        done.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        await using var finished = await done.ExecuteReaderAsync();
        Assert.True(await finished.ReadAsync());
        Assert.Equal(18, finished.GetInt64(0));
        Assert.Equal(0, finished.GetInt64(1));
        Assert.Equal(100m, finished.GetDecimal(2));
        Assert.Equal(0.0, finished.GetDouble(3));
    }

    [Fact]
    public async Task ProgressOfARunWithoutRowsIsZeroWithoutEta()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 2, recordsPerShard: 5);

        var row = await SingleRowAsync(
            "select state, records_planned, records_done, percent_done, rate_last_minute, rate_last_hour, eta_seconds is null " +
            "from dashboard_run_progress where run_id = @run",
            runId);

        Assert.Equal(["planning", 0L, 0L, 0m, 0.0, 0.0, true], row);
    }

    [Fact]
    public async Task RecordsAnIncrementalRunLeftOutCountAsDealtWith()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 4, recordsPerShard: 25);

        // Two of four shards finished: of their 50 records, 40 were left out as current, 9 scored, 1 quarantined.
        await store.SaveProgressAsync(new RunProgressUpdate(
            runId, RunState.Running, 100, 9, 1, 0, 2, 0, 0, null, null, DateTime.UtcNow, null, RecordsSkipped: 40));
        var row = await SingleRowAsync(
            "select records_planned, records_done, records_quarantined, records_skipped, records_remaining, percent_done " +
            "from dashboard_run_progress where run_id = @run",
            runId);

        Assert.Equal([100L, 9L, 1L, 40L, 50L, 50.00m], row);
    }

    [Fact]
    public async Task WorkerThroughputAttributesBatchesToTheWritingConnection()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 1, recordsPerShard: 10);
        var minute = new DateTime(2026, 11, 24, 3, 17, 0, DateTimeKind.Utc);
        await using var workerA = WorkerDataSource("worker-a");
        await using var workerB = WorkerDataSource("worker-b");

        await new ResultWriter(workerA).WriteScoresAsync(Enumerable.Range(0, 5).Select(i => Score(runId, $"a-{i}", minute.AddSeconds(i))).ToList());
        await new ResultWriter(workerA).WriteScoresAsync([Score(runId, "a-late", minute.AddMinutes(1))]);
        await new ResultWriter(workerB).WriteScoresAsync(Enumerable.Range(0, 3).Select(i => Score(runId, $"b-{i}", minute.AddSeconds(30))).ToList());
        await new ResultWriter(workerB).WriteQuarantineAsync([new QuarantineRow(runId, "b-bad", 0, "p/b-bad.hea", "signal: flat line", minute.AddSeconds(40))]);

        // A shard written again (a retried lease) inserts nothing new, so it counts nothing twice.
        Assert.Equal(0, await new ResultWriter(workerB).WriteScoresAsync(Enumerable.Range(0, 5).Select(i => Score(runId, $"a-{i}", minute.AddSeconds(i))).ToList()));
        Assert.Equal(0, await new ResultWriter(workerB).WriteQuarantineAsync([new QuarantineRow(runId, "b-bad", 0, "p/b-bad.hea", "signal: flat line", minute.AddSeconds(40))]));

        var rows = await RowsAsync(
            "select minute, worker, records_scored, records_quarantined, records, records_per_second " +
            "from dashboard_worker_throughput where run_id = @run order by minute, worker",
            runId);

        Assert.Equal(
            [
                [minute, "worker-a", 5L, 0L, 5L, 5 / 60.0],
                [minute, "worker-b", 3L, 1L, 4L, 4 / 60.0],
                [minute.AddMinutes(1), "worker-a", 1L, 0L, 1L, 1 / 60.0],
            ],
            rows);
    }

    [Fact]
    public async Task ShardStatesAndWorkerShardsCountEachState()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 5, recordsPerShard: 4);
        var past = DateTime.UtcNow.AddMinutes(-5);
        var future = DateTime.UtcNow.AddMinutes(5);
        await store.Shards.SaveAsync(new ShardRecord(runId, 0, ShardKind.Records, [], 4, ShardState.Done, 1, "worker-a", null, 3, 1, null));
        await store.Shards.SaveAsync(new ShardRecord(runId, 1, ShardKind.Records, [], 4, ShardState.Leased, 1, "worker-a", future, 0, 0, null));
        await store.Shards.SaveAsync(new ShardRecord(runId, 2, ShardKind.Records, [], 4, ShardState.Leased, 2, "worker-b", past, 0, 0, null));
        await store.Shards.SaveAsync(new ShardRecord(runId, 3, ShardKind.Records, [], 4, ShardState.Failed, 3, null, null, 0, 0, "blob missing"));

        var states = await SingleRowAsync(
            "select run_state, pending, leased, done, failed, total, expired_leases from dashboard_shard_states where run_id = @run", runId);
        Assert.Equal(["planning", 1L, 2L, 1L, 1L, 5L, 1L], states);

        var workers = await RowsAsync(
            "select worker, shards_leased, shards_done, records_done, records_quarantined from dashboard_worker_shards " +
            "where run_id = @run order by worker",
            runId);
        Assert.Equal([["worker-a", 1L, 1L, 3L, 1L], ["worker-b", 1L, 0L, 0L, 0L]], workers);
    }

    [Fact]
    public async Task QuarantineReasonsAreCountedPerRun()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 1, recordsPerShard: 10);
        var other = await NewRunAsync(store, shards: 1, recordsPerShard: 10);
        var at = new DateTime(2026, 11, 24, 2, 0, 0, DateTimeKind.Utc);
        var writer = new ResultWriter(database.DataSource);
        await writer.WriteQuarantineAsync(
        [
            new QuarantineRow(runId, "r-3", 0, "p/r-3.hea", "signal: shorter than 5 s", at.AddMinutes(2)),
            new QuarantineRow(runId, "r-1", 0, "p/r-1.hea", "signal: shorter than 5 s", at),
            new QuarantineRow(runId, "r-2", 0, "p/r-2.hea", "signal: shorter than 5 s", at.AddMinutes(1)),
            new QuarantineRow(runId, "r-9", 0, "p/r-9.hea", "header: unparseable gain", at.AddMinutes(3)),
            new QuarantineRow(other, "r-1", 0, "p/r-1.hea", "header: unparseable gain", at),
        ]);

        var rows = await RowsAsync(
            "select reason, records, first_at, last_at, example_record_id from dashboard_quarantine_reasons where run_id = @run order by records desc",
            runId);

        Assert.Equal(
            [
                ["signal: shorter than 5 s", 3L, at, at.AddMinutes(2), "r-1"],
                ["header: unparseable gain", 1L, at.AddMinutes(3), at.AddMinutes(3), "r-9"],
            ],
            rows);
        Assert.Equal(4L, (await SingleRowAsync("select records_quarantined from dashboard_run_progress where run_id = @run", runId))[0]);
    }

    [Fact]
    public async Task PrevalenceUsesDefaultAndCustomThresholdsAndFollowsDeletes()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 1, recordsPerShard: 10);
        var writer = new ResultWriter(database.DataSource);
        var at = new DateTime(2026, 11, 24, 1, 0, 0, DateTimeKind.Utc);

        // Label 140 (CLBBB|LBBB) is a label no test changes the threshold of; label 141 (NSSTTA) gets custom ones.
        float[] lbbb = [0.9f, 0.6f, 0.5f, 0.1f];
        float[] nsstta = [0.3f, 0.2f, 0.1f, 0.05f];
        await writer.WriteScoresAsync(Enumerable.Range(0, 4)
            .Select(i => Score(runId, $"p-{i}", at, (140, lbbb[i]), (141, nsstta[i])))
            .ToList());

        async Task<object?[]> Prevalence(int position) => await SingleRowAsync(
            $"select code, threshold, threshold_is_default, records_scored, records_positive, prevalence from dashboard_label_prevalence " +
            $"where run_id = @run and position = {position}",
            runId);

        Assert.Equal(["CLBBB|LBBB", 0.5f, true, 4L, 2L, 0.5], await Prevalence(140)); // 0.5 itself is not above 0.5
        Assert.Equal(["NSSTTA", 0.5f, true, 4L, 0L, 0.0], await Prevalence(141));
        Assert.Equal(164L, (await SingleRowAsync("select count(*) from dashboard_label_prevalence where run_id = @run", runId))[0]);

        await ExecuteAsync("insert into label_thresholds (position, threshold) values (141, 0.15)");
        Assert.Equal(["NSSTTA", 0.15f, false, 4L, 2L, 0.5], await Prevalence(141));

        // A batch written after the change counts against the new threshold.
        await writer.WriteScoresAsync([Score(runId, "p-4", at, (140, 0.7f), (141, 0.16f))]);
        Assert.Equal(["NSSTTA", 0.15f, false, 5L, 3L, 0.6], await Prevalence(141));
        Assert.Equal(["CLBBB|LBBB", 0.5f, true, 5L, 3L, 0.6], await Prevalence(140));

        await ExecuteAsync("update label_thresholds set threshold = 0.04 where position = 141");
        Assert.Equal(["NSSTTA", 0.04f, false, 5L, 5L, 1.0], await Prevalence(141));

        await ExecuteAsync($"delete from scores where run_id = '{runId}' and record_id in ('{runId:N}/p-0', '{runId:N}/p-4')");
        Assert.Equal(["NSSTTA", 0.04f, false, 3L, 3L, 1.0], await Prevalence(141));
        Assert.Equal(["CLBBB|LBBB", 0.5f, true, 3L, 1L, 1 / 3.0], await Prevalence(140));

        await ExecuteAsync("delete from label_thresholds where position = 141");
        Assert.Equal(["NSSTTA", 0.5f, true, 3L, 0L, 0.0], await Prevalence(141));
    }

    [Fact]
    public async Task TopFindingsListLabelsAboveThresholdHighestFirst()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 1, recordsPerShard: 10);
        var writer = new ResultWriter(database.DataSource);
        var at = new DateTime(2026, 11, 24, 1, 30, 0, DateTimeKind.Utc);

        // Label 163 has a custom threshold of 0.3 (set once for this test; no other test reads label 163).
        await ExecuteAsync("insert into label_thresholds (position, threshold) values (163, 0.3)");
        await writer.WriteScoresAsync(
        [
            Score(runId, "finding", at, (50, 0.7f), (3, 0.9f), (19, 0.7f), (95, 0.5f), (163, 0.35f)),
            Score(runId, "normal", at, (3, 0.2f)),
        ]);

        var rows = await RowsAsync(
            "select split_part(record_id, '/', 2), rank, position, code, name, probability, threshold from dashboard_record_findings where run_id = @run order by record_id, rank",
            runId);
        Assert.Equal(
            [
                ["finding", 1, 3, "NORM", "sinus rhythm", 0.9f, 0.5f],
                ["finding", 2, 19, "AFL", "atrial flutter", 0.7f, 0.5f],
                ["finding", 3, 50, "AF", "atrial fibrillation", 0.7f, 0.5f],
                ["finding", 4, 163, "3AVB", "av block complete (third degree)", 0.35f, 0.3f],
            ],
            rows);

        var top = await RowsAsync(
            "select split_part(record_id, '/', 2), findings, codes, probabilities from dashboard_record_top_findings where run_id = @run order by record_id", runId);
        Assert.Equal(
            [
                ["finding", 4, new[] { "NORM", "AFL", "AF", "3AVB" }, new[] { 0.9f, 0.7f, 0.7f, 0.35f }],
                ["normal", 0, Array.Empty<string>(), Array.Empty<float>()],
            ],
            top);
    }

    [Fact]
    public async Task DashboardRoleReadsViewsButCannotWrite()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 1, recordsPerShard: 3);
        await new ResultWriter(database.DataSource).WriteScoresAsync([Score(runId, "ro-1", DateTime.UtcNow, (3, 0.9f))]);
        await new ResultWriter(database.DataSource).WriteQuarantineAsync([new QuarantineRow(runId, "ro-2", 0, "p/ro-2.hea", "blob: truncated file", DateTime.UtcNow)]);
        await store.Shards.SaveAsync(new ShardRecord(runId, 0, ShardKind.Records, [], 3, ShardState.Leased, 1, "worker-a", DateTime.UtcNow.AddMinutes(1), 0, 0, null));

        var canLogin = await SingleRowAsync("select rolcanlogin, rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = 'hubert_dashboard'", runId);
        Assert.Equal([false, false, false, false], canLogin);

        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await using (var role = new NpgsqlCommand("set local role hubert_dashboard", connection, tx))
            {
                await role.ExecuteNonQueryAsync();
            }

            foreach (var view in new[]
            {
                "dashboard_run_progress", "dashboard_worker_throughput", "dashboard_worker_shards", "dashboard_shard_states",
                "dashboard_quarantine_reasons", "dashboard_label_prevalence", "dashboard_record_findings", "dashboard_record_top_findings",
                "dashboard_label_thresholds", "scores", "runs",
            })
            {
                await using var read = new NpgsqlCommand($"select count(*) from {view} where {(view.Contains("thresholds", StringComparison.Ordinal) ? "true" : "run_id = @run")}", connection, tx);
                read.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
                Assert.True((long)(await read.ExecuteScalarAsync())! > 0, view);
            }

            await tx.CommitAsync();
        }

        foreach (var write in new[]
        {
            "insert into label_thresholds (position, threshold) values (1, 0.9)",
            $"update runs set state = 'failed' where run_id = '{runId}'",
            "delete from scores",
            "insert into run_progress_minutes (run_id, minute) values (gen_random_uuid(), now())",
            "create table dashboard_scratch (id integer)",
            "select dashboard_recount_labels(array[1])",
        })
        {
            await using var tx = await connection.BeginTransactionAsync();
            await using (var role = new NpgsqlCommand("set local role hubert_dashboard", connection, tx))
            {
                await role.ExecuteNonQueryAsync();
            }

            await using var cmd = new NpgsqlCommand(write, connection, tx);
            var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync());
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
            await tx.RollbackAsync();
        }

        Assert.Equal(1L, (await SingleRowAsync("select count(*) from scores where run_id = @run", runId))[0]);
    }

    [Fact]
    public async Task AWriterWithPrivilegesOnScoresOnlyFeedsTheSummaries()
    {
        var store = new RunStore(database.DataSource);
        var runId = await NewRunAsync(store, shards: 1, recordsPerShard: 3);
        var role = "test_writer_" + Guid.NewGuid().ToString("N");
        await ExecuteAsync($"create role {role} nologin");
        try
        {
            await ExecuteAsync($"grant select, insert on scores, quarantine to {role}");
            await using var connection = await database.DataSource.OpenConnectionAsync();
            await using (var tx = await connection.BeginTransactionAsync())
            {
                await using var write = new NpgsqlCommand(
                    $"set local role {role}; " +
                    "insert into scores (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at) " +
                    "values (@model, @record, @run, @probabilities, '{1}', 1, 'p/w.hea', 'e', now())",
                    connection,
                    tx);
                write.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = ModelId });
                write.Parameters.Add(new NpgsqlParameter("record", NpgsqlDbType.Text) { Value = $"{runId:N}/writer" });
                write.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
                write.Parameters.Add(new NpgsqlParameter("probabilities", NpgsqlDbType.Array | NpgsqlDbType.Real)
                {
                    Value = Score(runId, "writer", DateTime.UtcNow, (7, 0.75f)).Probabilities,
                });
                await write.ExecuteNonQueryAsync();
                await tx.CommitAsync();
            }

            Assert.Equal(
                [1L, 1L],
                await SingleRowAsync("select records_scored, records_positive from dashboard_label_prevalence where run_id = @run and position = 7", runId));
        }
        finally
        {
            await ExecuteAsync($"drop owned by {role}; drop role {role}");
        }
    }

    private static ScoreRow Score(Guid runId, string recordId, DateTime scoredAt, params (int Position, float Probability)[] probabilities)
    {
        var values = new float[164];
        Array.Fill(values, 0.01f);
        foreach (var (position, probability) in probabilities)
        {
            values[position] = probability;
        }

        return new ScoreRow(ModelId, $"{runId:N}/{recordId}", runId, values, [0.5f, -0.5f], 1, $"p/{recordId}.hea", "\"etag\"", scoredAt);
    }

    private async Task<Guid> NewRunAsync(RunStore store, int shards, int recordsPerShard)
    {
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(ModelId), "c", "p/", shardSize: recordsPerShard);
        await ExecuteAsync($"update runs set name = 'dashboard run' where run_id = '{runId}'");
        var plan = Enumerable.Range(0, shards)
            .Select(n => new ShardRecord(runId, n, ShardKind.Records, [$"p/{n}.hea"], recordsPerShard, ShardState.Pending, 0, null, null, 0, 0, null))
            .ToList();
        await store.Shards.AppendPlanAsync(runId, plan, null, [], planningComplete: true);
        return runId;
    }

    private NpgsqlDataSource WorkerDataSource(string worker) =>
        NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database.ConnectionString) { ApplicationName = worker }.ConnectionString);

    private async Task<DateTime> DatabaseNowAsync()
    {
        await using var cmd = database.DataSource.CreateCommand("select now()");
        return (DateTime)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    private async Task<object?[]> SingleRowAsync(string sql, Guid runId)
    {
        var rows = await RowsAsync(sql, runId);
        return Assert.Single(rows);
    }

    private async Task<List<object?[]>> RowsAsync(string sql, Guid runId)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }
}
