using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Planning runs off the coordinator's lease path. Another transaction holds a shard row the planner is about to
/// insert, so one planning step waits on Postgres for as long as the test likes; meanwhile lease calls must be
/// answered, and a run that ends must store that step before its final counts.
/// </summary>
public sealed class CoordinatorPlanningTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private const int BlockedShard = 3;
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task LeaseCallsAreAnsweredWhileAPlanningStepWaitsOnPostgres()
    {
        await SyntheticCohort.UploadAsync(blobs.Container, "interleave/", 8);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, workers: false, settings: new Dictionary<string, string?> { ["Coordinator:ListPageSize"] = "1" });
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("interleave-model"), blobs.ContainerName, "interleave/", shardSize: 1, leaseSeconds: 300);
        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);

        await using (var blocker = await HoldShardRowAsync(runId))
        {
            await coordinator.Start();
            await WaitForPlannerBlockedAsync();
            Assert.Equal(BlockedShard, (await coordinator.GetProgress()).ShardsPlanned);

            // The step that stores shard 3 cannot go on: every lease call below is answered all the same.
            var lease = await coordinator.AcquireLease("w1");
            Assert.NotNull(lease);
            Assert.Equal(0, lease.ShardNo);
            Assert.Equal(LeaseStatus.Renewed, await coordinator.Renew("w1", lease.ShardNo, lease.LeaseId, 1));
            await coordinator.Complete(new ShardOutcome("w1", lease.ShardNo, lease.LeaseId, 1, 0));
            var other = await coordinator.AcquireLease("w2");
            Assert.NotNull(other);
            await coordinator.Release("w2", other.ShardNo, other.LeaseId, null, false);

            var progress = await coordinator.GetProgress();
            Assert.Equal((BlockedShard, 1, false), (progress.ShardsPlanned, progress.ShardsDone, progress.PlanningComplete));
            Assert.True(await PlannerBlockedAsync(), "the planning step stopped waiting while the lease calls ran");
            await blocker.RollbackAsync();
        }

        // The step goes on once the row is free: planning completes, and the run drains with exact counts.
        var deadline = DateTime.UtcNow + Generous;
        while (!(await coordinator.GetProgress()).State.IsFinal())
        {
            Assert.True(DateTime.UtcNow < deadline, "the run did not drain in 30 s");
            if (await coordinator.AcquireLease("w3") is { } next)
            {
                await coordinator.Complete(new ShardOutcome("w3", next.ShardNo, next.LeaseId, 1, 0));
            }
            else
            {
                await Task.Delay(100);
            }
        }

        var run = await Runs.WaitFinishedAsync(store, runId, Generous);
        var shards = await store.Shards.LoadAsync(runId);
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(Enumerable.Range(0, shards.Count), shards.Select(s => s.ShardNo));
        Assert.All(shards, s => Assert.Equal(ShardState.Done, s.State));
        Assert.Equal((shards.Count, shards.Count, (long)shards.Count), (run.ShardsPlanned, run.ShardsDone, run.RecordsDone));
        Assert.True(shards.Count > BlockedShard + 1);
    }

    [Fact]
    public async Task ARunCancelledWhileAPlanningStepWaitsStoresThatStepBeforeItsFinalCounts()
    {
        await SyntheticCohort.UploadAsync(blobs.Container, "cancelmid/", 8);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, workers: false, settings: new Dictionary<string, string?> { ["Coordinator:ListPageSize"] = "1" });
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("cancelmid-model"), blobs.ContainerName, "cancelmid/", shardSize: 1, leaseSeconds: 300);
        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);

        Task cancel;
        await using (var blocker = await HoldShardRowAsync(runId))
        {
            await coordinator.Start();
            await WaitForPlannerBlockedAsync();

            // The cancellation waits for the step (its reads would be cancelled; its store is let finish).
            cancel = coordinator.Cancel();
            await blocker.RollbackAsync();
        }

        await cancel.WaitAsync(Generous);
        var run = await store.GetRunAsync(runId) ?? throw new InvalidOperationException("run vanished");
        var shards = await store.Shards.LoadAsync(runId);
        var progress = await coordinator.GetProgress();
        Assert.Equal(RunState.Cancelled, run.State);
        Assert.False(run.PlanningComplete);

        // The final counts include the step that was in flight (and any stored before the cancellation came), and no
        // step was stored after them: memory, the run row and the shard rows agree.
        Assert.True(shards.Count > BlockedShard, $"{shards.Count} shards stored");
        Assert.Equal((shards.Count, shards.Count), (run.ShardsPlanned, progress.ShardsPlanned));
        Assert.Equal(shards.Sum(s => (long)s.RecordsPlanned), run.RecordsPlanned);
        Assert.Null(await coordinator.AcquireLease("late"));
    }

    /// <summary>Inserts, uncommitted, the row of shard <see cref="BlockedShard"/>: the planner's insert of that shard waits on it.</summary>
    private async Task<HeldRow> HoldShardRowAsync(Guid runId)
    {
        var connection = await database.DataSource.OpenConnectionAsync();
        var tx = await connection.BeginTransactionAsync();
        await using var hold = new NpgsqlCommand(
            "insert into run_shards (run_id, shard_no, kind, blobs, records_planned, state) values (@run, @no, 'records', '{}', 0, 'pending')", connection, tx);
        hold.Parameters.AddWithValue("run", runId);
        hold.Parameters.AddWithValue("no", BlockedShard);
        await hold.ExecuteNonQueryAsync();
        return new HeldRow(connection, tx);
    }

    private async Task WaitForPlannerBlockedAsync()
    {
        var deadline = DateTime.UtcNow + Generous;
        while (!await PlannerBlockedAsync())
        {
            Assert.True(DateTime.UtcNow < deadline, "no planning step waited on the held shard row in 30 s");
            await Task.Delay(100);
        }
    }

    private async Task<bool> PlannerBlockedAsync()
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like 'insert into run_shards select%'");
        return (long)(await cmd.ExecuteScalarAsync())! > 0;
    }

    /// <summary>An uncommitted row and its connection; rolled back on <see cref="RollbackAsync"/> or when disposed.</summary>
    private sealed class HeldRow(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public Task RollbackAsync() => transaction.RollbackAsync();

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}
