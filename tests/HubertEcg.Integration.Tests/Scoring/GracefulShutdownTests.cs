using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>A silo that shuts down gracefully hands its leases back: no attempt is spent, nothing waits for a lease to expire.</summary>
public sealed class GracefulShutdownTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task StoppingASiloHandsItsLeasesBack()
    {
        using var model = new TinyModel(seed: 61);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "graceful/", 200);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(2, database.ConnectionString, blobs.ConnectionString);

        // A long lease: had the stopped silo's leases been dropped instead of handed back, the run would wait for it.
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "graceful/", shardSize: 10, leaseSeconds: 600, modelPath: model.Path);
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while ((await store.Shards.StateCountsAsync(runId)).GetValueOrDefault(ShardState.Done) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "no shard finished in 2 minutes");
            await Task.Delay(100);
        }

        await cluster.Cluster.StopSiloAsync(cluster.Cluster.Silos[^1]);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(2));

        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
        Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);
        Assert.All(await store.Shards.LoadAsync(runId, includeBlobs: false), s => Assert.Equal((ShardState.Done, 1), (s.State, s.Attempts)));
    }
}
