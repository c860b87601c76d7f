using System.Text;
using HubertEcg.Grains;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats.Archive;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>Archive shards scored by a cluster against real Postgres and Azurite.</summary>
public sealed class ArchiveRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task ArchivesAreScoredOneRowPerMemberRecord()
    {
        using var model = new TinyModel(seed: 45);
        var expectedScores = new List<string>();
        var expectedQuarantine = new List<string>();

        // A gzipped tar with a corrupt member, a zip, and a tar cut inside its last member.
        var (tgzMembers, tgzRecords) = ArchiveBuilder.Cohort(seed: 20);
        tgzMembers.Add(new("bad/x1.hea", Encoding.ASCII.GetBytes("garbage\n")));
        expectedScores.AddRange(tgzRecords.Select(r => "arch/one.tar.gz/" + r));
        expectedQuarantine.Add("arch/one.tar.gz/bad/x1");

        var (zipMembers, zipRecords) = ArchiveBuilder.Cohort(seed: 30);
        expectedScores.AddRange(zipRecords.Select(r => "arch/two.zip/" + r));

        var (cutMembers, _) = ArchiveBuilder.Cohort(seed: 40);
        cutMembers.RemoveAll(m => m.Key == "README.txt");
        var cutTar = ArchiveBuilder.Tar(cutMembers);
        cutTar = cutTar[..(ArchiveBuilder.TarHeaderOffset(cutMembers, cutMembers.Count - 1) + 512 + 100)];
        expectedScores.AddRange(new[] { "challenge/A0001", "wfdb/p1", "wfdb/p2" }.Select(r => "arch/three.tar/" + r));
        expectedQuarantine.Add("arch/three.tar/npy/r1");

        foreach (var (name, bytes) in new[]
        {
            ("arch/one.tar.gz", ArchiveBuilder.Tar(tgzMembers, gzip: true)), ("arch/two.zip", ArchiveBuilder.Zip(zipMembers)), ("arch/three.tar", cutTar),
        })
        {
            await blobs.Container.GetBlobClient(name).UploadAsync(new BinaryData(bytes), overwrite: true);
        }

        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(2, database.ConnectionString, blobs.ConnectionString);
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "arch/", shardSize: 10, modelPath: model.Path);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(5));

        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(3, run.ShardsDone);
        Assert.Equal(expectedScores.Count, run.RecordsDone);
        Assert.Equal(expectedQuarantine.Count, run.RecordsQuarantined);

        var scored = await RowsAsync("select record_id, source_blob from scores where run_id = @run", runId);
        Assert.Equal(expectedScores.Order(StringComparer.Ordinal), scored.Select(r => r.Id).Order(StringComparer.Ordinal));
        Assert.Equal("arch/two.zip", scored.Single(r => r.Id == "arch/two.zip/wfdb/p1").Value);

        var quarantined = await RowsAsync("select record_id, reason from quarantine where run_id = @run", runId);
        Assert.Equal(expectedQuarantine.Order(StringComparer.Ordinal), quarantined.Select(r => r.Id).Order(StringComparer.Ordinal));
        Assert.Contains("truncated", quarantined.Single(r => r.Id == "arch/three.tar/npy/r1").Value, StringComparison.Ordinal);
    }

    private async Task<List<(string Id, string Value)>> RowsAsync(string sql, Guid runId)
    {
        var rows = new List<(string, string)>();
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetString(1)));
        }

        return rows;
    }
}
