using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The shard views read counters that triggers keep beside run_shards (0019_shard_counters.sql). Whatever the writes
/// (inserts, leases taken, renewed, expired and taken back, shards done, failed and cancelled, shards and whole runs
/// deleted, the counters' deltas folded), the views give what a count over the rows gives.
/// </summary>
public sealed class ShardCounterTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    // The views as they were before the counters: a scan of run_shards.
    private const string WorkerRecount =
        "select s.run_id::text || '|' || s.lease_owner || '|' || count(*) filter (where s.state = 'leased') || '|' || " +
        "count(*) filter (where s.state = 'done') || '|' || coalesce(sum(s.records_done) filter (where s.state = 'done'), 0) || '|' || " +
        "coalesce(sum(s.records_quarantined) filter (where s.state = 'done'), 0) || '|' || " +
        "coalesce(min(s.lease_deadline) filter (where s.state = 'leased')::text, '-') " +
        "from run_shards s where s.lease_owner is not null and s.run_id = any (@runs) group by s.run_id, s.lease_owner order by 1";

    private const string WorkerView =
        "select w.run_id::text || '|' || w.worker || '|' || w.shards_leased || '|' || w.shards_done || '|' || w.records_done || '|' || " +
        "w.records_quarantined || '|' || coalesce(w.next_lease_deadline::text, '-') from dashboard_worker_shards w where w.run_id = any (@runs) order by 1";

    private const string StateRecount =
        "select r.run_id::text || '|' || count(s.*) filter (where s.state = 'pending') || '|' || count(s.*) filter (where s.state = 'leased') || '|' || " +
        "count(s.*) filter (where s.state = 'done') || '|' || count(s.*) filter (where s.state = 'failed') || '|' || count(s.*) || '|' || " +
        "count(s.*) filter (where s.state = 'leased' and s.lease_deadline < now()) || '|' || count(s.*) filter (where s.state = 'cancelled') " +
        "from runs r left join run_shards s on s.run_id = r.run_id where r.run_id = any (@runs) group by r.run_id order by 1";

    private const string StateView =
        "select run_id::text || '|' || pending || '|' || leased || '|' || done || '|' || failed || '|' || total || '|' || expired_leases || '|' || cancelled " +
        "from dashboard_shard_states where run_id = any (@runs) order by 1";

    [Fact]
    public async Task TheShardViewsEqualACountOverTheRowsAfterEveryKindOfWrite()
    {
        var store = new RunStore(database.DataSource);
        var model = TestModels.Descriptor("shard-counter-model");
        var runs = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            runs.Add(await Runs.SubmitAsync(store, model, "c", $"p{i}/", shardSize: 10));
        }

        var random = new Random(19);
        string[] workers = ["silo-a/worker-0", "silo-a/worker-1", "silo-b/worker-0"];
        foreach (var run in runs)
        {
            await ExecuteAsync(
                "insert into run_shards (run_id, shard_no, kind, blobs, records_planned, state) " +
                "select @run, n, 'records', array['x'], 10, 'pending' from generate_series(0, 199) n",
                ("run", run));
        }

        await AssertViewsEqualRecountAsync(runs);
        for (var step = 0; step < 60; step++)
        {
            var run = runs[random.Next(runs.Count)];
            var worker = workers[random.Next(workers.Length)];
            var from = random.Next(200);
            var to = from + random.Next(1, 30);
            var deadline = DateTime.UtcNow.AddSeconds(random.Next(-60, 60));
            switch (random.Next(6))
            {
                case 0: // leases taken
                    await ExecuteAsync(
                        "update run_shards set state = 'leased', lease_owner = @worker, lease_deadline = @deadline, attempts = attempts + 1, updated_at = now() " +
                        "where run_id = @run and shard_no between @from and @to and state = 'pending'",
                        ("run", run), ("worker", worker), ("deadline", deadline), ("from", from), ("to", to));
                    break;
                case 1: // renewed (nothing a counter holds changes)
                    await ExecuteAsync(
                        "update run_shards set lease_deadline = @deadline, updated_at = now() where run_id = @run and state = 'leased' and shard_no between @from and @to",
                        ("run", run), ("deadline", deadline), ("from", from), ("to", to));
                    break;
                case 2: // done, with records
                    await ExecuteAsync(
                        "update run_shards set state = 'done', records_done = 7 + shard_no % 3, records_quarantined = shard_no % 2, lease_deadline = null, updated_at = now() " +
                        "where run_id = @run and shard_no between @from and @to and state = 'leased'",
                        ("run", run), ("from", from), ("to", to));
                    break;
                case 3: // expired and taken back, or handed to another worker
                    await ExecuteAsync(
                        "update run_shards set state = case when shard_no % 2 = 0 then 'pending' else 'leased' end, " +
                        "lease_owner = case when shard_no % 2 = 0 then null else @worker end, updated_at = now() " +
                        "where run_id = @run and shard_no between @from and @to and state = 'leased'",
                        ("run", run), ("worker", worker), ("from", from), ("to", to));
                    break;
                case 4: // failed or cancelled
                    await ExecuteAsync(
                        "update run_shards set state = case when shard_no % 3 = 0 then 'failed' else 'cancelled' end, lease_deadline = null, updated_at = now() " +
                        "where run_id = @run and shard_no between @from and @to and state in ('pending', 'leased')",
                        ("run", run), ("from", from), ("to", to));
                    break;
                default: // shards deleted
                    await ExecuteAsync("delete from run_shards where run_id = @run and shard_no between @from and @to", ("run", run), ("from", from), ("to", to));
                    break;
            }

            await AssertViewsEqualRecountAsync(runs);
            if (step % 10 == 9)
            {
                // The deltas folded into one row per group (the triggers do it now and then) count the same.
                await ExecuteAsync("select run_shard_counters_fold(@runs)", ("runs", runs.ToArray()));
                await AssertViewsEqualRecountAsync(runs);
            }
        }

        // A run deleted takes its shards and counters with it; the others are untouched.
        await ExecuteAsync("delete from runs where run_id = @run", ("run", runs[0]));
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_shard_counts where run_id = @run", runs[0]));
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_worker_shard_counts where run_id = @run", runs[0]));
        runs.RemoveAt(0);
        await AssertViewsEqualRecountAsync(runs);
    }

    private async Task AssertViewsEqualRecountAsync(List<Guid> runs)
    {
        Assert.Equal(await LinesAsync(WorkerRecount, runs), await LinesAsync(WorkerView, runs));
        Assert.Equal(await LinesAsync(StateRecount, runs), await LinesAsync(StateView, runs));
    }

    private async Task<List<string>> LinesAsync(string sql, List<Guid> runs)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("runs", runs.ToArray());
        await using var reader = await cmd.ExecuteReaderAsync();
        var lines = new List<string>();
        while (await reader.ReadAsync())
        {
            lines.Add(reader.GetString(0));
        }

        return lines;
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
