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
        Assert.Equal(RunState.CompletedWithFailures, run.State);
        Assert.StartsWith("1 of 2 shards failed (4 records neither scored nor quarantined); the first, shard 0: lease of attempt 2 expired", run.Error, StringComparison.Ordinal);
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
        Assert.Equal((RunState.Failed, 1), (run.State, run.ShardsFailed));
        Assert.Equal("every shard failed (1, 6 records); the first, shard 0: decoder crashed again", run.Error);
        Assert.Equal("decoder crashed again", (await store.Shards.LoadAsync(runId))[0].LastError);
    }

    [Fact]
    public async Task AnOutageSpendsNoAttemptWithinTheRunsBudgetAndTheRunShowsWhatItWaitsFor()
    {
        await SyntheticCohort.UploadAsync(blobs.Container, "outage/", 2);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, workers: false);
        var runId = await Runs.SubmitAsync(
            store, TestModels.Descriptor("outage-model"), blobs.ContainerName, "outage/", shardSize: 100, leaseSeconds: 30, maxAttempts: 2, outageBudgetSeconds: 2);
        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);
        await WaitPlannedAsync(coordinator);

        // Storage unreachable: handed back three times within the budget, no attempt spent, the run waits for storage.
        var firstOutage = DateTime.UtcNow;
        for (var i = 0; i < 3; i++)
        {
            var lease = await coordinator.AcquireLease($"w{i}");
            Assert.NotNull(lease);
            Assert.Equal(1, lease.LeaseId);
            await coordinator.Interrupted($"w{i}", lease.ShardNo, lease.LeaseId, "storage", "blob storage unreachable while downloading x (HttpRequestException)");
        }

        var shard = (await store.Shards.LoadAsync(runId))[0];
        Assert.Equal((ShardState.Pending, 0), (shard.State, shard.Attempts));
        Assert.Equal("waiting for storage: blob storage unreachable while downloading x (HttpRequestException)", shard.LastError);
        Assert.Equal("storage", (await coordinator.GetProgress()).WaitingFor);
        var waiting = await WaitForRowAsync(store, runId, r => r.WaitingFor == "storage");
        Assert.NotNull(waiting.WaitingSince);

        // Past the budget (2 s) the same fault counts as an attempt again.
        while (DateTime.UtcNow - firstOutage <= TimeSpan.FromSeconds(2.5))
        {
            await Task.Delay(100);
        }

        var late = await coordinator.AcquireLease("w3");
        Assert.NotNull(late);
        await coordinator.Interrupted("w3", late.ShardNo, late.LeaseId, "storage", "still unreachable");
        shard = (await store.Shards.LoadAsync(runId))[0];
        Assert.Equal((ShardState.Pending, 1), (shard.State, shard.Attempts));
        Assert.StartsWith("storage unreachable for longer than the run's outage budget of 2 s", shard.LastError, StringComparison.Ordinal);

        // A shard that goes through ends the wait.
        var done = await coordinator.AcquireLease("w4");
        Assert.NotNull(done);
        await coordinator.Complete(new ShardOutcome("w4", done.ShardNo, done.LeaseId, 2, 4));
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromSeconds(30));
        Assert.Equal((RunState.Completed, null, null), (run.State, run.WaitingFor, run.WaitingSince));
        Assert.Null((await coordinator.GetProgress()).WaitingFor);
    }

    private static async Task<RunRecord> WaitForRowAsync(RunStore store, Guid runId, Func<RunRecord, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var run = await store.GetRunAsync(runId);
            if (run is not null && condition(run))
            {
                return run;
            }

            Assert.True(DateTime.UtcNow < deadline, "the run's row did not reach the expected state in 30 s");
            await Task.Delay(100);
        }
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
