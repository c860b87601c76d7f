using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>Active runs take turns: a small run submitted after a large one is not held back until the large one is leased out.</summary>
public sealed class FairRunsTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task ASmallRunSubmittedAfterALargeOneFinishesWhileTheLargeOneStillRuns()
    {
        using var model = new TinyModel(seed: 95);
        await SyntheticCohort.UploadAsync(blobs.Container, "fair-large/", 600);
        var small = await SyntheticCohort.UploadAsync(blobs.Container, "fair-small/", 8);
        var store = new RunStore(database.DataSource);

        // One silo, one worker: only the order in which runs are served decides who waits.
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);
        var large = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "fair-large/", shardSize: 4, modelPath: model.Path, name: "large");
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while ((await store.GetRunAsync(large))!.ShardsDone < 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the large run finished no shard in 2 minutes");
            await Task.Delay(100);
        }

        var smallRun = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "fair-small/", shardSize: 4, modelPath: model.Path, name: "small");
        var done = await Runs.WaitFinishedAsync(store, smallRun, TimeSpan.FromMinutes(3));
        Assert.Equal((RunState.Completed, (long)small.GoodRecords.Count), (done.State, done.RecordsDone));

        var largeThen = (await store.GetRunAsync(large))!;
        Assert.False(largeThen.State.IsFinal(), "the large run ended before the small one: the small one waited for it");
        Assert.True(largeThen.ShardsDone < 130, $"the large run had {largeThen.ShardsDone} of its ~150 shards done when the small one finished");
    }
}
