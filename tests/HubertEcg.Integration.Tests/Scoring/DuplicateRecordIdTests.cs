using HubertEcg.Grains;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats.Hdf5;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>Records of one container that share an id are one record: the first is scored, the others quarantined as duplicates, each with its row.</summary>
public sealed class DuplicateRecordIdTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task TenExamsWithOneIdAreScoredOnceAndTheOthersQuarantinedAsDuplicates()
    {
        using var model = new TinyModel(seed: 81);
        var exams = Enumerable.Range(0, 12).Select(i => SyntheticEcg.Generate($"exam{i}", 500 + i, 400, 4096 / 400.0)).ToArray();
        long[] ids = [.. Enumerable.Repeat(4242L, 10), 7001L, 7002L];
        await blobs.Container.GetBlobClient("dupes/" + Code15ShardWriter.FileName("exams_part0")).UploadAsync(new BinaryData(Code15ShardWriter.Write(exams, ids)));
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "dupes/", shardSize: 8, modelPath: model.Path);

        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
        Assert.Equal((RunState.Completed, 3L, 9L), (run.State, run.RecordsDone, run.RecordsQuarantined));
        await using var db = NpgsqlDataSource.Create(database.ConnectionString);
        var scored = await Runs.StringsAsync(db, "select record_id from scores where run_id = @run", runId);
        var quarantined = await Runs.StringsAsync(db, "select reason from quarantine where run_id = @run", runId);
        Assert.Equal(3, scored.Count);
        Assert.Equal(9, quarantined.Count);
        Assert.All(quarantined, r => Assert.StartsWith("duplicate record id: ", r, StringComparison.Ordinal));
    }
}
