using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>Lease bookkeeping of the coordinator, driven by hand (the silos run no workers).</summary>
public sealed class LeaseTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task ExpiredLeasesAreReleasedUntilAttemptsAreSpentThenTheShardFails()
    {
        await SyntheticCohort.UploadAsync(blobs.Container, "lease/", 4);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, workers: false);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("lease-model"), blobs.ContainerName, "lease/", shardSize: 4, leaseSeconds: 1, maxAttempts: 2);
        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);
        await WaitPlannedAsync(coordinator);

        // Listing order puts the four corrupt records in shard 0 and the four good ones in shard 1.
        var first = await coordinator.AcquireLease("ghost-a");
        Assert.NotNull(first);
        Assert.Equal((0, 1), (first.ShardNo, first.LeaseId));
        Assert.Equal(["lease/corrupt-magic.npy", "lease/corrupt-orphan.dat", "lease/corrupt-shape.npy", "lease/corrupt-short.npy"], first.Blobs);

        var other = await coordinator.AcquireLease("worker-b");
        Assert.NotNull(other);
        Assert.Equal(1, other.ShardNo);
        Assert.Equal(["lease/rec00000.npy", "lease/rec00001.npy", "lease/rec00002.npy", "lease/rec00003.npy"], other.Blobs);
        Assert.Null(await coordinator.AcquireLease("worker-c"));

        // worker-b renews and finishes; ghost-a never renews.
        Assert.Equal(LeaseStatus.Renewed, await coordinator.Renew("worker-b", 1, other.LeaseId, 2));
        await coordinator.Complete(new ShardOutcome("worker-b", 1, other.LeaseId, 4, 0));

        var second = await AcquireWhenAvailableAsync(coordinator, "ghost-b");
        Assert.Equal((0, 2), (second.ShardNo, second.LeaseId));
        Assert.Equal(LeaseStatus.Lost, await coordinator.Renew("ghost-a", 0, 1, 0));

        var shards = await store.Shards.LoadAsync(runId);
        Assert.Equal(ShardState.Leased, shards[0].State);
        Assert.Equal("ghost-b", shards[0].LeaseOwner);
        Assert.Contains("expired", shards[0].LastError, StringComparison.Ordinal);

        // ghost-b lets its lease lapse too: two attempts spent, the shard fails and the run ends.
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromSeconds(30));
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(1, run.ShardsFailed);
        Assert.Equal(1, run.ShardsDone);
        Assert.Equal(4, run.RecordsFailed);
        Assert.Equal(4, run.RecordsDone);
        Assert.Equal(8, run.RecordsPlanned);

        shards = await store.Shards.LoadAsync(runId);
        Assert.Equal((ShardState.Failed, 2), (shards[0].State, shards[0].Attempts));
        Assert.Contains("lease of attempt 2 expired", shards[0].LastError, StringComparison.Ordinal);
        Assert.Null(await coordinator.AcquireLease("worker-c"));
    }

    [Fact]
    public async Task AHandedBackLeaseDoesNotSpendAnAttemptAndAFailedOneDoes()
    {
        await SyntheticCohort.UploadAsync(blobs.Container, "handback/", 2);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, workers: false);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("handback-model"), blobs.ContainerName, "handback/", shardSize: 100, leaseSeconds: 30, maxAttempts: 2);
        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);
        await WaitPlannedAsync(coordinator);

        var lease = await coordinator.AcquireLease("w1");
        Assert.NotNull(lease);
        await coordinator.Release("w1", lease.ShardNo, lease.LeaseId, null, false);
        Assert.Equal(0, (await store.Shards.LoadAsync(runId))[0].Attempts);

        lease = await coordinator.AcquireLease("w2");
        Assert.NotNull(lease);
        Assert.Equal(1, lease.LeaseId);
        await coordinator.Release("w2", lease.ShardNo, lease.LeaseId, "decoder crashed", false);
        var shard = (await store.Shards.LoadAsync(runId))[0];
        Assert.Equal((ShardState.Pending, 1, "decoder crashed"), (shard.State, shard.Attempts, shard.LastError));

        lease = await coordinator.AcquireLease("w3");
        Assert.NotNull(lease);
        await coordinator.Release("w3", lease.ShardNo, lease.LeaseId, "decoder crashed again", false);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromSeconds(30));
        Assert.Equal((RunState.Completed, 1), (run.State, run.ShardsFailed));
        Assert.Equal("decoder crashed again", (await store.Shards.LoadAsync(runId))[0].LastError);
    }

    private static async Task WaitPlannedAsync(IRunCoordinatorGrain coordinator)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!(await coordinator.GetProgress()).PlanningComplete)
        {
            Assert.True(DateTime.UtcNow < deadline, "planning did not finish in 30 s");
            await Task.Delay(100);
        }
    }

    private static async Task<ShardLease> AcquireWhenAvailableAsync(IRunCoordinatorGrain coordinator, string worker)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (await coordinator.AcquireLease(worker) is { } lease)
            {
                return lease;
            }

            Assert.True(DateTime.UtcNow < deadline, "no lease became available in 30 s");
            await Task.Delay(100);
        }
    }
}
