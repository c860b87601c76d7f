using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The quarantine reasons view reads counter rows that a trigger keeps beside quarantine
/// (0031_quarantine_reason_counters.sql). After every kind of write (the result writer's inserts, a record quarantined
/// again, a reason corrected, a time changed, the first, last and example rows deleted, a reason's last row deleted, a
/// run deleted, the table truncated) the view gives what the view's old query, a grouping of the rows, gives.
/// </summary>
public sealed class QuarantineReasonCounterTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly DateTime Start = new(2026, 12, 6, 8, 0, 0, DateTimeKind.Utc);

    [Fact]
    public async Task TheReasonsViewEqualsAGroupingOfTheRowsAfterEveryKindOfWrite()
    {
        var store = new RunStore(database.DataSource);
        var model = TestModels.Descriptor("quarantine-counter-model");
        var a = await Runs.SubmitAsync(store, model, "c", "a/", shardSize: 10);
        var b = await Runs.SubmitAsync(store, model, "c", "b/", shardSize: 10);
        Guid[] runs = [a, b];
        var writer = new ResultWriter(database.DataSource);

        // The workers' path: 40 records of each run in four batches, three reasons, times and record ids out of order.
        string[] reasons = ["header: unreadable", "signal: flat", "decode: truncated"];
        foreach (var run in runs)
        {
            for (var batch = 0; batch < 4; batch++)
            {
                var rows = Enumerable.Range(batch * 10, 10)
                    .Select(i => new QuarantineRow(run, $"rec{(i * 7) % 40:D2}", batch, $"x/rec{i}.hea", reasons[i % 3], Start.AddSeconds((i * 13) % 40)))
                    .ToList();
                Assert.Equal(10, await writer.WriteQuarantineAsync(rows, "silo-a/worker-0"));
                await AssertViewEqualsGroupingAsync(runs);
            }
        }

        // A record quarantined again in the same run: the writer keeps the first row, nothing changes.
        var before = await ViewAsync(runs);
        Assert.Equal(0, await writer.WriteQuarantineAsync([new QuarantineRow(a, "rec00", 9, "x/again.hea", "other: again", Start.AddHours(1))], null));
        Assert.Equal(before, await ViewAsync(runs));

        // The coordinator's path (a statement of many rows), a new reason of run b.
        await ExecuteAsync(
            "insert into quarantine (run_id, record_id, shard_no, source_blob, reason, quarantined_at) " +
            "select @run, 'plan' || n, 0, 'p/' || n, 'listing: name not valid', @at::timestamptz + n * interval '1 ms' from generate_series(1, 25) n",
            ("run", b), ("at", Start.AddMinutes(-5)));
        await AssertViewEqualsGroupingAsync(runs);

        // A reason corrected by an operator, for rows that hold the first time, the last time and the example.
        await ExecuteAsync(
            "update quarantine set reason = 'header: unreadable (corrected)' where run_id = @run and reason = 'signal: flat' and record_id in (" +
            "(select min(record_id) from quarantine where run_id = @run and reason = 'signal: flat'), " +
            "(select record_id from quarantine where run_id = @run and reason = 'signal: flat' order by quarantined_at, record_id limit 1), " +
            "(select record_id from quarantine where run_id = @run and reason = 'signal: flat' order by quarantined_at desc, record_id limit 1))",
            ("run", a));
        await AssertViewEqualsGroupingAsync(runs);

        // Times moved: a row made the earliest of its reason, the group's latest row made earlier than the rest.
        await ExecuteAsync(
            "update quarantine set quarantined_at = @at where run_id = @run and record_id = 'rec17'", ("run", a), ("at", Start.AddDays(-1)));
        await ExecuteAsync(
            "update quarantine set quarantined_at = quarantined_at - interval '2 days' where run_id = @run and reason = 'decode: truncated' and " +
            "quarantined_at = (select max(quarantined_at) from quarantine where run_id = @run and reason = 'decode: truncated')",
            ("run", b));
        await AssertViewEqualsGroupingAsync(runs);

        // Deletes: the example record, the first and the last row of a reason, then every row of another.
        await ExecuteAsync(
            "delete from quarantine where run_id = @run and record_id = (select min(record_id) from quarantine where run_id = @run and reason = 'header: unreadable')",
            ("run", b));
        await ExecuteAsync(
            "delete from quarantine where run_id = @run and reason = 'decode: truncated' and (" +
            "quarantined_at = (select min(quarantined_at) from quarantine where run_id = @run and reason = 'decode: truncated') or " +
            "quarantined_at = (select max(quarantined_at) from quarantine where run_id = @run and reason = 'decode: truncated'))",
            ("run", a));
        await AssertViewEqualsGroupingAsync(runs);
        await ExecuteAsync("delete from quarantine where run_id = @run and reason = 'listing: name not valid'", ("run", b));
        await AssertViewEqualsGroupingAsync(runs);
        Assert.DoesNotContain(await ViewAsync(runs), r => r.Contains("listing: name not valid", StringComparison.Ordinal));

        // A record of run a quarantined again after its row was deleted.
        await ExecuteAsync(
            "delete from quarantine where run_id = @run and record_id = 'rec05'", ("run", a));
        Assert.Equal(1, await writer.WriteQuarantineAsync([new QuarantineRow(a, "rec05", 9, "x/rec05.hea", "signal: flat", Start.AddHours(2))], null));
        await AssertViewEqualsGroupingAsync(runs);

        // A run deleted takes its counters with it; the other run's stay as they were.
        var bRows = await ViewAsync([b]);
        Assert.NotEmpty(bRows);
        await ExecuteAsync("delete from runs where run_id = @run", ("run", a));
        Assert.Empty(await ViewAsync([a]));
        Assert.Equal(0L, await ScalarAsync("select count(*) from run_quarantine_reasons where run_id = @run", ("run", a)));
        Assert.Equal(bRows, await ViewAsync([b]));
        await AssertViewEqualsGroupingAsync(runs);

        // Truncated: no counters left.
        await ExecuteAsync("truncate quarantine");
        Assert.Equal(0L, await ScalarAsync("select count(*) from run_quarantine_reasons"));
    }

    /// <summary>The view's rows of the runs against its old query (a grouping of quarantine), and never an empty group.</summary>
    private async Task AssertViewEqualsGroupingAsync(Guid[] runs)
    {
        var grouped = await LinesAsync(
            "select q.run_id::text || '|' || q.reason || '|' || count(*) || '|' || min(q.quarantined_at) || '|' || max(q.quarantined_at) || '|' || min(q.record_id) " +
            "from quarantine q where q.run_id = any (@runs) group by q.run_id, q.reason order by 1",
            runs);
        Assert.Equal(grouped, await ViewAsync(runs));
        Assert.Equal(0L, await ScalarAsync("select count(*) from run_quarantine_reasons where records <= 0"));
    }

    private Task<List<string>> ViewAsync(Guid[] runs) =>
        LinesAsync(
            "select run_id::text || '|' || reason || '|' || records || '|' || first_at || '|' || last_at || '|' || example_record_id " +
            "from dashboard_quarantine_reasons where run_id = any (@runs) order by 1",
            runs);

    private async Task<List<string>> LinesAsync(string sql, Guid[] runs)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("runs", runs);
        var lines = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            lines.Add(reader.GetString(0));
        }

        return lines;
    }

    private async Task<long> ScalarAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>0031 builds the counters of the quarantine rows already stored: the view gives after it what it gave before.</summary>
public sealed class QuarantineReasonCounterMigrationTests : ScratchDatabase
{
    [Fact]
    public async Task TheMigrationCountsTheRowsAlreadyThere()
    {
        var migration = await ApplyMigrationsBeforeAsync("0031_quarantine_reason_counters.sql");
        var store = new RunStore(DataSource);
        var model = TestModels.Descriptor("quarantine-migration-model");
        var a = await Runs.SubmitAsync(store, model, "c", "a/", shardSize: 10);
        var b = await Runs.SubmitAsync(store, model, "c", "b/", shardSize: 10);
        await ExecuteAsync(
            "insert into quarantine (run_id, record_id, shard_no, source_blob, reason, quarantined_at) " +
            $"select case when n % 3 = 0 then '{b}'::uuid else '{a}'::uuid end, 'rec' || ((n * 37) % 500), n / 10, 'x/' || n, " +
            "(array['header: unreadable', 'signal: flat', 'decode: truncated', 'lead count: 8'])[1 + n % 4], " +
            "timestamptz '2026-12-06 08:00' + ((n * 53) % 500) * interval '1 s' from generate_series(0, 499) n");

        const string view = "select run_id::text || '|' || reason || '|' || records || '|' || first_at || '|' || last_at || '|' || example_record_id " +
            "from dashboard_quarantine_reasons order by 1";
        var before = await LinesAsync(view);
        Assert.Equal(8, before.Count);

        await ExecuteAsync(migration.Sql);

        Assert.Equal(before, await LinesAsync(view));
        Assert.Equal(8, (await LinesAsync("select run_id::text from run_quarantine_reasons")).Count);
    }

    private async Task<List<string>> LinesAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        var lines = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            lines.Add(reader.GetString(0));
        }

        return lines;
    }
}
