using Azure.Storage.Blobs;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;
using Xunit.Abstractions;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Faults of the infrastructure are waited out, not counted against the data, and a cancelled run ends with counts
/// that equal its rows. The storage outage stops an Azurite of this test's own (<see cref="PrivateAzurite"/>), never
/// the shared one.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class OutageAndCancelTests(PostgresDatabaseFixture database, BlobContainerFixture blobs, ITestOutputHelper output)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    [Trait("Category", "Chaos")]
    public async Task AStorageOutageMidRunIsWaitedOutWithoutSpendingAttempts()
    {
        await using var azurite = await PrivateAzurite.StartAsync();
        var container = new BlobContainerClient(azurite.ConnectionString, "outage");
        await container.CreateAsync();
        using var model = new TinyModel(seed: 71);
        var cohort = await SyntheticCohort.UploadAsync(container, "storage-outage/", 160);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(2, database.ConnectionString, azurite.ConnectionString);

        // Leases (20 s) outlast the renewals; three attempts at most, which the outage would use up if it counted.
        var runId = await Runs.SubmitAsync(
            store, model.Descriptor, "outage", "storage-outage/", shardSize: 8, leaseSeconds: 20, maxAttempts: 3, modelPath: model.Path);
        await WaitAsync(store, runId, r => r.ShardsDone >= 2, "2 shards done", TimeSpan.FromMinutes(2));

        await azurite.StopAsync();
        var stopped = DateTime.UtcNow;
        var waiting = await WaitAsync(store, runId, r => r.WaitingFor == "storage", "the run waiting for storage", TimeSpan.FromMinutes(2));
        Assert.Equal(RunState.Running, waiting.State);
        output.WriteLine($"waiting for storage {(DateTime.UtcNow - stopped).TotalSeconds:F1} s after Azurite stopped");

        // The outage lasts long enough for every worker to meet it several times over.
        while (DateTime.UtcNow - stopped < TimeSpan.FromSeconds(40))
        {
            await Task.Delay(200);
        }

        await azurite.StartServerAsync();
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(4));
        var shards = await store.Shards.LoadAsync(runId, includeBlobs: false);
        Assert.True(
            run.State == RunState.Completed,
            $"run ended {run.State.ToText()}: {run.Error}; " + string.Join("; ", shards.Where(s => s.State != ShardState.Done).Select(s => $"{s.ShardNo} {s.State} {s.LastError}")));
        Assert.Equal((cohort.GoodRecords.Count, cohort.CorruptRecords.Count, 0L), (run.RecordsDone, run.RecordsQuarantined, run.RecordsFailed));
        Assert.All(shards, s => Assert.Equal((ShardState.Done, 1), (s.State, s.Attempts)));
        Assert.Null(run.WaitingFor);
        await using var db = NpgsqlDataSource.Create(database.ConnectionString);
        var scored = await Runs.StringsAsync(db, "select record_id from scores where run_id = @run", runId);
        Assert.Equal(cohort.GoodRecords.Order(StringComparer.Ordinal), scored.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task CancellingMidRunEndsEveryShardAndLeavesCountsThatEqualTheRows()
    {
        using var model = new TinyModel(seed: 72);
        await SyntheticCohort.UploadAsync(blobs.Container, "cancel-mid/", 400);
        var store = new RunStore(database.DataSource);
        Guid runId;
        await using (var cluster = await ScoringCluster.StartAsync(2, database.ConnectionString, blobs.ConnectionString))
        {
            runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "cancel-mid/", shardSize: 8, leaseSeconds: 3, modelPath: model.Path);
            await WaitAsync(store, runId, r => r.ShardsDone >= 2, "2 shards done", TimeSpan.FromMinutes(2));
            await cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId).Cancel();

            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(1));
            Assert.Equal(RunState.Cancelled, run.State);
            var states = await store.Shards.StateCountsAsync(runId);
            Assert.Equal(0, states.GetValueOrDefault(ShardState.Pending) + states.GetValueOrDefault(ShardState.Leased));
            Assert.True(states.GetValueOrDefault(ShardState.Cancelled) > 0, "nothing was left to cancel: the run was not mid-way");
            await AssertCountsEqualRowsAsync(store, runId);
        }

        // Every worker has stopped: whatever was in flight at the cancel wrote nothing afterwards.
        await AssertCountsEqualRowsAsync(store, runId);
    }

    private async Task AssertCountsEqualRowsAsync(RunStore store, Guid runId)
    {
        var run = (await store.GetRunAsync(runId))!;
        await using var db = NpgsqlDataSource.Create(database.ConnectionString);
        var scored = await Runs.StringsAsync(db, "select record_id from scores where run_id = @run", runId);
        var quarantined = await Runs.StringsAsync(db, "select record_id from quarantine where run_id = @run", runId);
        Assert.Equal((run.RecordsDone, run.RecordsQuarantined), ((long)scored.Count, (long)quarantined.Count));
    }

    private static async Task<RunRecord> WaitAsync(RunStore store, Guid runId, Func<RunRecord, bool> condition, string what, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var run = await store.GetRunAsync(runId) ?? throw new InvalidOperationException($"run {runId} vanished");
            if (condition(run))
            {
                return run;
            }

            Assert.False(run.State.IsFinal(), $"run ended {run.State.ToText()} ({run.Error}) before {what}");
            Assert.True(DateTime.UtcNow < deadline, $"no {what} within {limit}");
            await Task.Delay(100);
        }
    }
}
