using HubertEcg.Client.Results;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// A run's counters, export and dashboard summaries cover the records it scored, whichever run first wrote their
/// rows (issue 12, finding 3): a second full run over unchanged blobs writes no new score row, yet its export holds
/// every record it scored, naming the run that wrote each row; and a run cancelled while still pending leaves counts
/// that equal its rows and no open shard.
/// </summary>
public sealed class RunAttributionTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task ASecondFullRunOverUnchangedBlobsExportsEveryRecordItScoredAndNamesTheRunThatWroteIt()
    {
        using var model = new TinyModel(seed: 95);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "rerun/", 10);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);
        var first = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "rerun/", shardSize: 4, modelPath: model.Path, name: "first");
        var firstRun = await Runs.WaitFinishedAsync(store, first, TimeSpan.FromMinutes(3));
        Assert.Equal(RunState.Completed, firstRun.State);
        var expected = cohort.GoodRecords.Count;
        Assert.Equal(expected, firstRun.RecordsDone);

        // Not incremental: every record is scored again, from the same blob versions, so no score row changes.
        var second = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "rerun/", shardSize: 4, modelPath: model.Path, name: "second");
        var secondRun = await Runs.WaitFinishedAsync(store, second, TimeSpan.FromMinutes(3));
        Assert.Equal((RunState.Completed, (long)expected), (secondRun.State, secondRun.RecordsDone));

        await using var db = NpgsqlDataSource.Create(database.ConnectionString);
        Assert.Equal(expected, await Runs.CountAsync(db, "select count(*) from scores where run_id = @run", first));
        Assert.Equal(0, await Runs.CountAsync(db, "select count(*) from scores where run_id = @run", second));
        Assert.Equal(expected, await Runs.CountAsync(db, "select count(*) from run_reused_scores where run_id = @run", second));

        // The export of the second run holds every record it scored; run_id names the first run, which wrote the rows.
        var csv = Path.Combine(Path.GetTempPath(), $"rerun-{second:N}.csv");
        try
        {
            var summary = await ResultsExport.ExportAsync(database.DataSource, second, csv);
            Assert.Equal(expected, summary.Rows);
            var lines = await File.ReadAllLinesAsync(csv);
            Assert.Equal(expected + 1, lines.Length);
            var exported = lines.Skip(1).Select(l => l.Split(',')).ToList();
            Assert.Equal(cohort.GoodRecords.Order(StringComparer.Ordinal), exported.Select(c => c[0]));
            Assert.All(exported, c => Assert.Equal(first.ToString(), c[2]));
        }
        finally
        {
            File.Delete(csv);
        }

        // The dashboard counts the records of both runs, and the same positives for each (one set of rows).
        Assert.Equal(expected, await Runs.CountAsync(db, "select coalesce(sum(records_scored), 0) from run_progress_minutes where run_id = @run", second));
        var firstPositives = await Runs.StringsAsync(
            db, "select position::text || ':' || positives::text from run_label_positives where run_id = @run and positives > 0 order by position", first);
        var secondPositives = await Runs.StringsAsync(
            db, "select position::text || ':' || positives::text from run_label_positives where run_id = @run and positives > 0 order by position", second);
        Assert.Equal(firstPositives, secondPositives);

        // Writing the second run's rows again (a retried shard) adds nothing.
        var writer = new ResultWriter(database.DataSource);
        var rows = await ReadRowsAsync(db, first);
        Assert.Equal(0, await writer.WriteScoresAsync(rows.Select(r => r with { RunId = second }).ToList()));
        Assert.Equal(expected, await Runs.CountAsync(db, "select count(*) from run_reused_scores where run_id = @run", second));
    }

    [Fact]
    public async Task ARunCancelledWhilePendingEndsWithNoOpenShardAndCountsThatEqualItsRows()
    {
        using var model = new TinyModel(seed: 96);
        await SyntheticCohort.UploadAsync(blobs.Container, "cancel-pending/", 30);
        var store = new RunStore(database.DataSource);

        // Cancelled as `run cancel` does without a gateway, before any silo has seen the run.
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "cancel-pending/", shardSize: 4, modelPath: model.Path);
        Assert.True(await store.RequestCancelAsync(runId));
        Assert.Equal(RunState.Pending, (await store.GetRunAsync(runId))!.State);

        await using (var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString))
        {
            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(2));
            Assert.Equal(RunState.Cancelled, run.State);
        }

        // Every silo has stopped: nothing in flight at the cancel wrote afterwards.
        var ended = (await store.GetRunAsync(runId))!;
        await using var db = NpgsqlDataSource.Create(database.ConnectionString);
        Assert.Equal(0, await Runs.CountAsync(db, "select count(*) from run_shards where run_id = @run and state in ('pending', 'leased')", runId));
        var scored = await Runs.CountAsync(db, "select count(*) from scores where run_id = @run", runId);
        var quarantined = await Runs.CountAsync(db, "select count(*) from quarantine where run_id = @run", runId);
        Assert.Equal((scored, quarantined), (ended.RecordsDone, ended.RecordsQuarantined));
    }

    private static async Task<List<ScoreRow>> ReadRowsAsync(NpgsqlDataSource db, Guid runId)
    {
        await using var cmd = db.CreateCommand(
            "select model_id, record_id, run_id, probabilities, score_embedding(embedding, embedding_packed), windows_used, source_blob, source_etag, scored_at from scores where run_id = @run");
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<ScoreRow>();
        while (await reader.ReadAsync())
        {
            rows.Add(new ScoreRow(
                reader.GetString(0), reader.GetString(1), reader.GetGuid(2), reader.GetFieldValue<float[]>(3), reader.GetFieldValue<float[]>(4),
                reader.GetInt32(5), reader.GetString(6), reader.GetString(7), reader.GetDateTime(8)));
        }

        return rows;
    }
}
