using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// A writer that dies between its COPY and its commit leaves no row behind, and writing the batch again stores each
/// row exactly once with dashboard summaries that match the rows; two writers racing on the same new keys store them
/// once. Both write paths are covered: the direct COPY of a batch whose keys are all new, and the staging table of a
/// batch that replaces stored rows.
/// </summary>
public sealed class ResultWriterCrashTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("crash-new", 0)]
    [InlineData("crash-replace", 100)]
    public async Task AWriterKilledBetweenItsCopyAndItsCommitLeavesNoRowAndTheRetryWritesEachRowOnce(string model, int storedBefore)
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        var at = new DateTime(2026, 11, 24, 9, 0, 0, DateTimeKind.Utc);
        ScoreRow Row(int i, string etag) => new(
            model, $"{model}/rec-{i}", runId, Enumerable.Range(0, 164).Select(l => ((l * 7 + i) % 100) / 100f).ToArray(),
            Enumerable.Range(0, 512).Select(h => h * 0.25f + i).ToArray(), 1, $"{model}/rec-{i}.npy", etag, at);

        // The records stored before come from an older version of their blobs: the batch replaces them.
        if (storedBefore > 0)
        {
            Assert.Equal(storedBefore, await new ResultWriter(database.DataSource).WriteScoresAsync(
                [.. Enumerable.Range(0, storedBefore).Select(i => Row(i, "\"old\""))]));
        }

        var batch = Enumerable.Range(0, 300).Select(i => Row(i, "\"new\"")).ToList();
        var atCommit = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var killed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var attempts = 0;
        var writer = new ResultWriter(database.DataSource, new TransientRetry(maxAttempts: 3, firstDelay: TimeSpan.FromMilliseconds(10)))
        {
            BeforeCommit = async (connection, ct) =>
            {
                if (Interlocked.Increment(ref attempts) == 1)
                {
                    atCommit.SetResult(connection.ProcessID);
                    await killed.Task.WaitAsync(Patience, ct);
                }
            },
        };

        var write = writer.WriteScoresAsync(batch);
        var backend = await atCommit.Task.WaitAsync(Patience);
        await using (var terminate = database.DataSource.CreateCommand("select pg_terminate_backend(@pid)"))
        {
            terminate.Parameters.AddWithValue("pid", backend);
            Assert.True((bool)(await terminate.ExecuteScalarAsync())!);
        }

        await WaitUntilAsync(async () => await ScalarAsync<long>("select count(*) from pg_stat_activity where pid = " + backend) == 0);

        // The killed transaction left nothing: only the rows stored before, unchanged, and their summaries.
        Assert.Equal(storedBefore, await CountAsync("select count(*) from scores where model_id = @model", model));
        Assert.Equal(storedBefore, await CountAsync("select count(*) from scores where model_id = @model and source_etag = '\"old\"'", model));
        await AssertSummariesMatchRowsAsync(runId, storedBefore);

        // The writer's commit fails on the dead connection; its retry writes the batch again on a fresh one.
        killed.SetResult();
        Assert.Equal(300, await write.WaitAsync(Patience));
        Assert.Equal(2, attempts);

        // And a third write of the same batch (a shard re-leased after the crash) changes nothing.
        Assert.Equal(0, await new ResultWriter(database.DataSource).WriteScoresAsync(batch));

        Assert.Equal(300, await CountAsync("select count(*) from scores where model_id = @model", model));
        Assert.Equal(300, await CountAsync("select count(distinct record_id) from scores where model_id = @model", model));
        Assert.Equal(300, await CountAsync("select count(*) from scores where model_id = @model and source_etag = '\"new\"'", model));
        Assert.Equal(0, await CountAsync("select count(*) from run_reused_scores where model_id = @model", model));
        await using (var cmd = database.DataSource.CreateCommand(
            $"select probabilities, score_embedding(embedding, embedding_packed) from scores where model_id = @model and record_id = '{model}/rec-42'"))
        {
            cmd.Parameters.AddWithValue("model", model);
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(Row(42, "\"new\"").Probabilities, reader.GetFieldValue<float[]>(0));
            Assert.Equal(Row(42, "\"new\"").Embedding, reader.GetFieldValue<float[]>(1));
        }

        await AssertSummariesMatchRowsAsync(runId, 300);
    }

    [Fact]
    public async Task TwoWritersOfTheSameNewRowsStoreThemOnce()
    {
        const string model = "race-model";
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", "race/", shardSize: 10);
        var at = DateTime.UtcNow;
        var batch = Enumerable.Range(0, 200).Select(i => new ScoreRow(
            model, $"race/rec-{i}", runId, Enumerable.Range(0, 164).Select(l => (l + i) % 3 / 2f).ToArray(), new float[512], 1,
            $"race/rec-{i}.npy", "\"e\"", at)).ToList();

        // The first writer stops before its commit with the rows copied; the second sees none of them stored, copies
        // the same keys, and waits on the first's uncommitted keys in the primary key.
        var atCommit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = new ResultWriter(database.DataSource)
        {
            BeforeCommit = async (_, ct) =>
            {
                atCommit.TrySetResult();
                await release.Task.WaitAsync(Patience, ct);
            },
        };
        var firstWrite = first.WriteScoresAsync(batch, "first", CancellationToken.None);
        await atCommit.Task.WaitAsync(Patience);
        var secondWrite = new ResultWriter(database.DataSource).WriteScoresAsync(batch, "second", CancellationToken.None);
        await WaitUntilAsync(async () => await ScalarAsync<long>(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like 'copy scores%'") == 1);

        // The first commits; the second's copy fails on the keys and its batch goes through the staging insert, which
        // finds every row stored by the same run from the same source: nothing new.
        release.SetResult();
        Assert.Equal(200, await firstWrite.WaitAsync(Patience));
        Assert.Equal(0, await secondWrite.WaitAsync(Patience));

        Assert.Equal(200, await CountAsync("select count(*) from scores where model_id = @model", model));
        await AssertSummariesMatchRowsAsync(runId, 200);
    }

    // The dashboard summaries of the run equal a recount from its rows.
    private async Task AssertSummariesMatchRowsAsync(Guid runId, long rows)
    {
        Assert.Equal(rows, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", runId));
        Assert.Equal(rows, await Runs.CountAsync(database.DataSource, "select coalesce(sum(records_scored), 0) from run_progress_minutes where run_id = @run", runId));
        var positives = await Runs.CountAsync(
            database.DataSource,
            "select count(*) from scores s cross join dashboard_label_thresholds t where s.run_id = @run and s.probabilities[t.position + 1] > t.threshold",
            runId);
        Assert.True(rows == 0 || positives > 0);
        Assert.Equal(positives, await Runs.CountAsync(database.DataSource, "select coalesce(sum(positives), 0) from run_label_positives where run_id = @run", runId));
        // And the label bucket counts a threshold change recounts from (0025_threshold_buckets.sql).
        Assert.Equal(0, await Dashboard.ThresholdBucketsTests.BucketMismatchesAsync(database.DataSource, runId));
    }

    private async Task<long> CountAsync(string sql, string model)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("model", model);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold within " + Patience);
            await Task.Delay(20);
        }
    }
}
