using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// A whole run on three in-process silos against real Postgres and Azurite. The record count is
/// <c>HUBERT_E2E_RECORDS</c> (default 300; the acceptance size is 3000).
/// </summary>
public sealed class RunEndToEndTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private static int RecordCount =>
        int.TryParse(Environment.GetEnvironmentVariable("HUBERT_E2E_RECORDS"), out var n) && n > 0 ? n : 300;

    [Fact]
    public async Task ThreeSilosScoreEveryGoodRecordOnceAndQuarantineTheCorruptOnes()
    {
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "cohort/", RecordCount);
        var scorer = new DeterministicScorer();
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            3, database.ConnectionString, blobs.ConnectionString, new FixedScorerProvider(scorer), new ThinningWindowPreparer(),
            settings: new Dictionary<string, string?> { ["Coordinator:ListPageSize"] = "97" });

        var runId = await Runs.SubmitAsync(store, scorer.Model, blobs.ContainerName, "cohort/", shardSize: 25);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(10));

        Assert.Equal(RunStates.Completed, run.State);
        Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
        Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);
        Assert.Equal(0, run.RecordsFailed);
        Assert.Equal(run.ShardsPlanned, run.ShardsDone);
        Assert.NotNull(run.FinishedAt);

        // Exactly one score row per good record, 164 probabilities, the model's embedding size.
        var scored = new Dictionary<string, (int Probs, int Embedding, int Windows, string Etag)>();
        await using (var cmd = database.DataSource.CreateCommand(
            "select record_id, cardinality(probabilities), cardinality(embedding), windows_used, source_etag from scores where run_id = @run"))
        {
            cmd.Parameters.AddWithValue("run", runId);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                Assert.True(scored.TryAdd(reader.GetString(0), (reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetString(4))));
            }
        }

        Assert.Equal(cohort.GoodRecords.Order(StringComparer.Ordinal), scored.Keys.Order(StringComparer.Ordinal));
        Assert.All(scored.Values, v =>
        {
            Assert.Equal(164, v.Probs);
            Assert.Equal(DeterministicScorer.Hidden, v.Embedding);
            Assert.Equal(2, v.Windows);
            Assert.False(string.IsNullOrEmpty(v.Etag));
        });

        // One quarantine row per corrupt record, each with its reason.
        var quarantined = new Dictionary<string, string>();
        await using (var cmd = database.DataSource.CreateCommand("select record_id, reason from quarantine where run_id = @run"))
        {
            cmd.Parameters.AddWithValue("run", runId);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                quarantined.Add(reader.GetString(0), reader.GetString(1));
            }
        }

        Assert.Equal(cohort.CorruptRecords.Order(StringComparer.Ordinal), quarantined.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("not a readable .npy", quarantined["cohort/corrupt-magic"], StringComparison.Ordinal);
        Assert.Contains("shape (3, 100)", quarantined["cohort/corrupt-shape"], StringComparison.Ordinal);
        Assert.Contains("shorter than one 5 s window", quarantined["cohort/corrupt-short"], StringComparison.Ordinal);
        Assert.Contains("no reader", quarantined["cohort/corrupt-orphan"], StringComparison.Ordinal);

        // Every window of every good record went through the model once (no shard scored twice on a healthy run).
        Assert.Equal(2 * cohort.GoodRecords.Count, scorer.WindowsScored);
    }
}
