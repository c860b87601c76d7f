using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;

namespace HubertEcg.Integration.Tests.Scoring;

public sealed class ResultWriterTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Fact]
    public async Task RewritingAShardNeitherDuplicatesNorLosesRows()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("writer-model"), "c", "p/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource);
        var at = new DateTime(2026, 11, 24, 8, 0, 0, DateTimeKind.Utc);
        ScoreRow Row(int i) => new(
            "writer-model", $"rec-{i}", runId, Enumerable.Range(0, 164).Select(l => (l + i) / 1000f).ToArray(),
            Enumerable.Range(0, 512).Select(h => h * 0.5f).ToArray(), 2, $"p/rec-{i}.npy", $"\"etag-{i}\"", at);

        var first = Enumerable.Range(0, 300).Select(Row).ToList();
        Assert.Equal(300, await writer.WriteScoresAsync(first));

        // The same shard again after a "crash", overlapping with 100 rows it had not written yet.
        var again = Enumerable.Range(200, 200).Select(Row).ToList();
        Assert.Equal(100, await writer.WriteScoresAsync(again));
        Assert.Equal(0, await writer.WriteScoresAsync(again));

        Assert.Equal(400, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", runId));
        await using var cmd = database.DataSource.CreateCommand(
            "select probabilities, score_embedding(embedding, embedding_packed), windows_used, source_blob, source_etag, scored_at from scores where model_id = 'writer-model' and record_id = 'rec-7'");
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(Row(7).Probabilities, reader.GetFieldValue<float[]>(0));
        Assert.Equal(Row(7).Embedding, reader.GetFieldValue<float[]>(1));
        Assert.Equal(2, reader.GetInt32(2));
        Assert.Equal("p/rec-7.npy", reader.GetString(3));
        Assert.Equal("\"etag-7\"", reader.GetString(4));
        Assert.Equal(at, reader.GetFieldValue<DateTime>(5));
    }

    [Fact]
    public async Task TextUuidAndTimeArriveAsWrittenThroughTheDirectCopyAndTheStagingTable()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("writer-text-model"), "c", "p/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource);
        // Sub-microsecond ticks are dropped, as timestamptz holds microseconds.
        var at = new DateTime(2026, 12, 6, 9, 15, 30, DateTimeKind.Utc).AddTicks(1_234_567);
        ScoreRow Row(int i, string etag) => new(
            "writer-text-model", $"récord-ü-{i}-\u65e5", runId, [0.25f, float.Epsilon, 1f, 0f],
            [1.5f, -0f, float.MaxValue], 1 + i, $"p/dossier é/{i}.xml", etag, at);

        Assert.Equal(3, await writer.WriteScoresAsync([Row(1, "\"é1\""), Row(2, "\"é2\""), Row(3, "\"é3\"")]));
        // Record 2's source changed, record 4 is new: the batch goes through the staging table.
        Assert.Equal(2, await writer.WriteScoresAsync([Row(2, "\"é2-b\""), Row(4, "\"é4\"")]));

        await using var cmd = database.DataSource.CreateCommand(
            "select record_id, run_id, probabilities, score_embedding(embedding, embedding_packed), windows_used, source_blob, source_etag, scored_at " +
            "from scores where model_id = 'writer-text-model' order by record_id");
        await using var reader = await cmd.ExecuteReaderAsync();
        var expected = new[] { Row(1, "\"é1\""), Row(2, "\"é2-b\""), Row(3, "\"é3\""), Row(4, "\"é4\"") };
        foreach (var row in expected)
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(row.RecordId, reader.GetString(0));
            Assert.Equal(runId, reader.GetGuid(1));
            Assert.Equal(row.Probabilities, reader.GetFieldValue<float[]>(2));
            Assert.Equal(row.Embedding, reader.GetFieldValue<float[]>(3));
            Assert.Equal(row.WindowsUsed, reader.GetInt32(4));
            Assert.Equal(row.SourceBlob, reader.GetString(5));
            Assert.Equal(row.SourceETag, reader.GetString(6));
            Assert.Equal(new DateTime(2026, 12, 6, 9, 15, 30, 123, 456, DateTimeKind.Utc), reader.GetFieldValue<DateTime>(7));
        }

        Assert.False(await reader.ReadAsync());
    }

    [Fact]
    public async Task ABatchWithTextThatIsNotValidIsRefusedNamingTheRecordAndWritesNothing()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("writer-bad-text-model"), "c", "p/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource);
        ScoreRow Row(int i, string blob) => new(
            "writer-bad-text-model", $"rec-{i}", runId, [0.5f], [1f], 1, blob, "\"e\"", DateTime.UtcNow);

        // Enough rows before the bad one that the first of them are already sent when it is reached.
        var rows = Enumerable.Range(0, 200).Select(i => Row(i, $"p/{i}.xml")).Append(Row(200, "p/\ud800.xml")).ToList();
        var error = await Assert.ThrowsAsync<ArgumentException>(() => writer.WriteScoresAsync(rows));
        Assert.Contains("record rec-200", error.Message);
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", runId));

        // The writer and its connections are still usable.
        Assert.Equal(200, await writer.WriteScoresAsync(rows.Take(200).ToList()));
    }

    [Fact]
    public async Task AChangedSourceReplacesTheRowAndMovesItsDashboardCountsWhileTheSameRowAgainChangesNothing()
    {
        var store = new RunStore(database.DataSource);
        var model = TestModels.Descriptor("replace-model");
        var first = await Runs.SubmitAsync(store, model, "c", "p/", shardSize: 10);
        var second = await Runs.SubmitAsync(store, model, "c", "p/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource);
        var at = DateTime.UtcNow;
        ScoreRow Row(Guid run, int i, string etag, float p) => new(
            "replace-model", $"rec-{i}", run, Enumerable.Repeat(p, 164).ToArray(), new float[16], 1, $"p/rec-{i}.npy", etag, at);

        Assert.Equal(4, await writer.WriteScoresAsync([.. Enumerable.Range(0, 4).Select(i => Row(first, i, "\"v1\"", 0.9f))]));

        // The second run meets records 0 and 1 unchanged, record 2 changed (a new ETag), record 4 new; record 4 twice.
        List<ScoreRow> batch =
        [
            Row(second, 0, "\"v1\"", 0.1f), Row(second, 1, "\"v1\"", 0.1f), Row(second, 2, "\"v2\"", 0.1f),
            Row(second, 4, "\"v1\"", 0.1f), Row(second, 4, "\"v1\"", 0.1f),
        ];
        Assert.Equal(2, await writer.WriteScoresAsync(batch));
        Assert.Equal(0, await writer.WriteScoresAsync(batch));

        await using (var cmd = database.DataSource.CreateCommand(
            "select record_id, run_id, source_etag, probabilities[1] from scores where model_id = 'replace-model' order by record_id"))
        {
            await using var reader = await cmd.ExecuteReaderAsync();
            var rows = new List<(string, Guid, string, float)>();
            while (await reader.ReadAsync())
            {
                rows.Add((reader.GetString(0), reader.GetGuid(1), reader.GetString(2), reader.GetFloat(3)));
            }

            Assert.Equal(
                [
                    ("rec-0", first, "\"v1\"", 0.9f), ("rec-1", first, "\"v1\"", 0.9f), ("rec-2", second, "\"v2\"", 0.1f),
                    ("rec-3", first, "\"v1\"", 0.9f), ("rec-4", second, "\"v1\"", 0.1f),
                ],
                rows);
        }

        // The second run found records 0 and 1 current: it lists them as reused, once however often it writes them.
        Assert.Equal(
            ["rec-0", "rec-1"],
            await Runs.StringsAsync(database.DataSource, "select record_id from run_reused_scores where run_id = @run order by record_id", second));

        // The dashboard summaries follow the replaced row from the first run to the second, and count the reused rows
        // for the second run too, as a recount from the rows says.
        Assert.Equal(3, await Runs.CountAsync(database.DataSource, "select sum(records_scored) from run_progress_minutes where run_id = @run", first));
        Assert.Equal(4, await Runs.CountAsync(database.DataSource, "select sum(records_scored) from run_progress_minutes where run_id = @run", second));
        foreach (var run in new[] { first, second })
        {
            Assert.Equal(
                await Runs.CountAsync(
                    database.DataSource,
                    "select count(*) from (select s.probabilities from scores s where s.run_id = @run union all " +
                    "select s.probabilities from run_reused_scores u join scores s using (model_id, record_id) where u.run_id = @run) x " +
                    "cross join dashboard_label_thresholds t where x.probabilities[t.position + 1] > t.threshold",
                    run),
                await Runs.CountAsync(database.DataSource, "select coalesce(sum(positives), 0) from run_label_positives where run_id = @run", run));
            Assert.Equal(0, await Dashboard.ThresholdBucketsTests.BucketMismatchesAsync(database.DataSource, run));
        }

        Assert.Equal(3 * 164, await Runs.CountAsync(database.DataSource, "select sum(positives) from run_label_positives where run_id = @run", first));
    }

    [Fact]
    public async Task CurrentScoresAreThoseFromTheListedVersionOfTheirSourceBlob()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("current-model"), "c", "p/", shardSize: 10);
        await Runs.SubmitAsync(store, TestModels.Descriptor("other-model"), "c", "p/", shardSize: 10);
        var at = DateTime.UtcNow;
        ScoreRow Row(string record, string blob, string etag) => new("current-model", record, runId, new float[164], new float[16], 1, blob, etag, at);
        await new ResultWriter(database.DataSource).WriteScoresAsync(
        [
            Row("p/a", "p/a.npy", "\"1\""), Row("p/b", "p/b.hea", "\"1\""),
            Row("p/x.h5#1", "p/x.h5", "\"7\""), Row("p/x.h5#2", "p/x.h5", "\"7\""),
            Row("p/y.h5#1", "p/y.h5", "\"7\""), Row("p/y.h5#2", "p/y.h5", "\"6\""), // half from an older version
        ]);
        var current = new CurrentScores(database.DataSource);

        var listed = new (string, string)[] { ("p/a.npy", "\"1\""), ("p/b.hea", "\"2\""), ("p/x.h5", "\"7\""), ("p/y.h5", "\"7\""), ("p/new.npy", "\"1\"") };
        Assert.Equal(
            [("p/a.npy", 1L), ("p/x.h5", 2L)],
            (await current.CurrentBlobsAsync("current-model", listed)).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value)));
        Assert.Empty(await current.CurrentBlobsAsync("other-model", listed));

        var scored = await current.ScoredRecordsAsync("current-model", ["p/y.h5", "p/b.hea", "p/none.npy"]);
        Assert.Equal(
            [("p/b", new ScoredSource("p/b.hea", "\"1\"")), ("p/y.h5#1", new ScoredSource("p/y.h5", "\"7\"")), ("p/y.h5#2", new ScoredSource("p/y.h5", "\"6\""))],
            scored.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value)));
    }

    [Fact]
    public async Task QuarantineRowsAreWrittenOncePerRunAndRecord()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("quarantine-model"), "c", "p/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource);
        var rows = Enumerable.Range(0, 5)
            .Select(i => new QuarantineRow(runId, $"bad-{i}'; drop table scores; --", 3, $"p/bad-{i}.hea", $"reason {i}", DateTime.UtcNow))
            .ToList();

        Assert.Equal(5, await writer.WriteQuarantineAsync(rows));
        Assert.Equal(0, await writer.WriteQuarantineAsync(rows));
        Assert.Equal(5, await Runs.CountAsync(database.DataSource, "select count(*) from quarantine where run_id = @run", runId));
        Assert.Equal(1, await Runs.CountAsync(
            database.DataSource, "select count(*) from quarantine where run_id = @run and record_id = 'bad-2''; drop table scores; --' and reason = 'reason 2'", runId));
    }

    [Fact]
    public async Task TransientFailuresAreRetriedAndOthersAreNot()
    {
        var retry = new TransientRetry(maxAttempts: 4, firstDelay: TimeSpan.FromMilliseconds(1));
        var calls = 0;
        var result = await retry.RunAsync(
            _ =>
            {
                calls++;
                return calls < 3 ? throw new Npgsql.NpgsqlException("connection lost", new IOException("reset")) : Task.FromResult(42);
            },
            CancellationToken.None);
        Assert.Equal(42, result);
        Assert.Equal(3, calls);

        calls = 0;
        await Assert.ThrowsAsync<InvalidOperationException>(() => retry.RunAsync<int>(
            _ =>
            {
                calls++;
                throw new InvalidOperationException("a bug, not an outage");
            },
            CancellationToken.None));
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task TheWritingWorkerIsNamedInTheDashboardThroughput()
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("named-writer-model"), "c", "named/", shardSize: 10);
        var writer = new ResultWriter(database.DataSource);
        var at = DateTime.UtcNow;
        var scores = Enumerable.Range(0, 3).Select(i => new ScoreRow(
            "named-writer-model", $"named-{i}", runId, new float[164], new float[512], 1, $"named/{i}.npy", "\"e\"", at)).ToList();
        Assert.Equal(3, await writer.WriteScoresAsync(scores, "silo-a/cpu", CancellationToken.None));
        Assert.Equal(1, await writer.WriteQuarantineAsync(
            [new QuarantineRow(runId, "named-bad", 0, "named/bad.npy", "unreadable", at)], "silo-a/cpu", CancellationToken.None));
        Assert.Equal(1, await writer.WriteScoresAsync(
            [scores[0] with { RecordId = "named-3" }], CancellationToken.None));

        await using var cmd = database.DataSource.CreateCommand(
            "select worker, sum(records_scored)::int, sum(records_quarantined)::int from dashboard_worker_throughput where run_id = @run group by worker order by worker");
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<(string Worker, int Scored, int Quarantined)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2)));
        }

        Assert.Equal([("(unattributed)", 1, 0), ("silo-a/cpu", 3, 1)], rows);
    }
}
