using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// The references of score rows to their run and model, checked once per statement since
/// 0029_statement_reference_checks.sql instead of by per-row foreign keys: the same rows are refused with the same error
/// code (23503), a run or model with score rows cannot be deleted, and a writer and a deleter racing on one run end as
/// they did with foreign keys (whichever commits first wins, the other fails). Also the writer's sampled probe: a
/// stored key the sample misses sends the batch through staging, with no duplicate.
/// </summary>
public sealed class ScoreReferenceTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly DateTime At = new(2026, 12, 6, 7, 0, 0, DateTimeKind.Utc);

    private static ScoreRow Row(string model, Guid run, int i, string etag = "\"e\"") => new(
        model, $"{model}/rec-{i:D4}", run, Enumerable.Range(0, 164).Select(l => ((l * 13 + i) % 100) / 100f).ToArray(),
        Enumerable.Range(0, 16).Select(h => h * 0.5f - i).ToArray(), 1, $"{model}/rec-{i:D4}.npy", etag, At);

    [Fact]
    public async Task RowsNamingAMissingRunOrModelAreRefusedOnEveryWritePath()
    {
        var store = new RunStore(database.DataSource);
        const string model = "refs-missing";
        var run = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        var missingRun = Guid.NewGuid();

        // The writer's direct copy (no key stored; its bucket claim for the run is refused first) and its staging path
        // (a key stored) both refuse a missing run.
        var direct = await Assert.ThrowsAsync<PostgresException>(() => new ResultWriter(database.DataSource).WriteScoresAsync([Row(model, missingRun, 1)]));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, direct.SqlState);

        Assert.Equal(1, await new ResultWriter(database.DataSource).WriteScoresAsync([Row(model, run, 2, "\"old\"")]));
        var staged = await Assert.ThrowsAsync<PostgresException>(() => new ResultWriter(database.DataSource).WriteScoresAsync([Row(model, missingRun, 2, "\"new\"")]));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, staged.SqlState);

        // A plain insert naming a missing run: the statement's check names it.
        var plain = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(
            "insert into scores (model_id, record_id, run_id, probabilities, embedding_packed, windows_used, source_blob, source_etag, scored_at) " +
            "values (@m, 'r', @missing, '{0.5}', '\\x0400000000'::bytea, 1, 'r.npy', 'e', now())", ("m", model), ("missing", missingRun)));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, plain.SqlState);
        Assert.Contains(missingRun.ToString(), plain.MessageText, StringComparison.Ordinal);
        Assert.Equal("scores", plain.TableName);

        // A plain insert naming an unregistered model, and an update moving a row to a missing run.
        var unregistered = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(
            "insert into scores (model_id, record_id, run_id, probabilities, embedding_packed, windows_used, source_blob, source_etag, scored_at) " +
            "values ('refs-no-such-model', 'r', @run, '{0.5}', '\\x0400000000'::bytea, 1, 'r.npy', 'e', now())", ("run", run)));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, unregistered.SqlState);
        Assert.Contains("refs-no-such-model", unregistered.MessageText, StringComparison.Ordinal);
        var moved = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(
            "update scores set run_id = @missing where model_id = 'refs-missing'", ("missing", missingRun)));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, moved.SqlState);

        // Nothing of the refused statements is stored; the good row is.
        Assert.Equal(1, await CountAsync("select count(*) from scores where model_id = @m", ("m", model)));
        Assert.Equal(1, await CountAsync("select count(*) from scores where run_id = @r", ("r", run)));
    }

    [Fact]
    public async Task ARunOrModelWithScoreRowsCannotBeDeletedAndOneWithoutCan()
    {
        var store = new RunStore(database.DataSource);
        const string model = "refs-delete";
        var scored = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        var empty = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        Assert.Equal(3, await new ResultWriter(database.DataSource).WriteScoresAsync([.. Enumerable.Range(0, 3).Select(i => Row(model, scored, i))]));

        var run = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync("delete from runs where run_id = @r", ("r", scored)));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, run.SqlState);
        Assert.Contains(scored.ToString(), run.MessageText, StringComparison.Ordinal);
        var key = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync("update runs set run_id = gen_random_uuid() where run_id = @r", ("r", scored)));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, key.SqlState);
        var modelDelete = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync("delete from models where model_id = @m", ("m", model)));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, modelDelete.SqlState);

        Assert.Equal(1, await ExecuteAsync("delete from runs where run_id = @r", ("r", empty)));
        Assert.Equal(1, await CountAsync("select count(*) from runs where run_id = @r", ("r", scored)));
        Assert.Equal(3, await CountAsync("select count(*) from scores where run_id = @r", ("r", scored)));
    }

    [Fact]
    public async Task ADeleteOfARunWaitsForItsWriterAndThenFails()
    {
        var store = new RunStore(database.DataSource);
        const string model = "refs-race-1";
        var run = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);

        // The writer's transaction holds its rows uncommitted (stopped before its commit).
        var atCommit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writer = new ResultWriter(database.DataSource)
        {
            BeforeCommit = async (_, ct) =>
            {
                atCommit.TrySetResult();
                await release.Task.WaitAsync(Patience, ct);
            },
        };
        var write = writer.WriteScoresAsync([.. Enumerable.Range(0, 5).Select(i => Row(model, run, i))]);
        await atCommit.Task.WaitAsync(Patience);

        // The delete waits on the writer's lock of the run's row...
        await using var deleter = await database.DataSource.OpenConnectionAsync();
        await using var delete = new NpgsqlCommand("delete from runs where run_id = @r", deleter);
        delete.Parameters.AddWithValue("r", run);
        var deleting = delete.ExecuteNonQueryAsync();
        await WaitUntilAsync(async () => await CountAsync(
            "select count(*) from pg_stat_activity where pid = @pid and wait_event_type = 'Lock'", ("pid", deleter.ProcessID)) == 1);

        // ...and once the rows are committed, it sees them and fails; the rows and the run stay.
        release.SetResult();
        Assert.Equal(5, await write.WaitAsync(Patience));
        var failed = await Assert.ThrowsAsync<PostgresException>(() => deleting.WaitAsync(Patience));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, failed.SqlState);
        Assert.Equal(5, await CountAsync("select count(*) from scores where run_id = @r", ("r", run)));
        Assert.Equal(1, await CountAsync("select count(*) from runs where run_id = @r", ("r", run)));
    }

    [Fact]
    public async Task AWriteWaitsForADeleteOfItsRunAndThenFails()
    {
        var store = new RunStore(database.DataSource);
        const string model = "refs-race-2";
        var run = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);

        // The run's deletion is under way, uncommitted (its shards go with it).
        await using var deleter = await database.DataSource.OpenConnectionAsync();
        await using var tx = await deleter.BeginTransactionAsync();
        await using (var delete = new NpgsqlCommand("delete from runs where run_id = @r", deleter, tx))
        {
            delete.Parameters.AddWithValue("r", run);
            Assert.Equal(1, await delete.ExecuteNonQueryAsync());
        }

        // A plain insert of a row of the run waits on the deleted row's lock...
        await using var inserter = await database.DataSource.OpenConnectionAsync();
        await using var insert = new NpgsqlCommand(
            "insert into scores (model_id, record_id, run_id, probabilities, embedding_packed, windows_used, source_blob, source_etag, scored_at) " +
            "values (@m, 'refs-race-2/r', @r, '{0.5}', '\\x0400000000'::bytea, 1, 'r.npy', 'e', now())", inserter);
        insert.Parameters.AddWithValue("m", model);
        insert.Parameters.AddWithValue("r", run);
        var inserting = insert.ExecuteNonQueryAsync();
        await WaitUntilAsync(async () => await CountAsync(
            "select count(*) from pg_stat_activity where pid = @pid and wait_event_type = 'Lock'", ("pid", inserter.ProcessID)) == 1);

        // ...and fails once the deletion commits: no row names the deleted run.
        await tx.CommitAsync();
        var failed = await Assert.ThrowsAsync<PostgresException>(() => inserting.WaitAsync(Patience));
        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, failed.SqlState);
        Assert.Equal(0, await CountAsync("select count(*) from scores where run_id = @r", ("r", run)));
    }

    [Fact]
    public async Task AStoredKeyTheProbeSampleMissesSendsTheBatchThroughStagingWithoutADuplicate()
    {
        var store = new RunStore(database.DataSource);
        const string model = "refs-probe";
        var first = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        var second = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        var batch = Enumerable.Range(0, 300).Select(i => Row(model, second, i)).ToList();

        // Record 5 is not among the probed keys of this batch (in key order: the first, the last and evenly spaced).
        var probed = ResultWriter.ProbeSample(batch).Select(r => r.RecordId).ToHashSet();
        Assert.Equal(ResultWriter.ProbeKeys, probed.Count);
        Assert.Contains(batch[0].RecordId, probed);
        Assert.Contains(batch[^1].RecordId, probed);
        Assert.DoesNotContain(batch[5].RecordId, probed);

        // Another run stored record 5 from the same source version: the direct copy fails on it, and the staging path
        // stores the other 299 and lists record 5 as reused by the second run.
        Assert.Equal(1, await new ResultWriter(database.DataSource).WriteScoresAsync([Row(model, first, 5)]));
        Assert.Equal(299, await new ResultWriter(database.DataSource).WriteScoresAsync(batch));
        Assert.Equal(300, await CountAsync("select count(*) from scores where model_id = @m", ("m", model)));
        Assert.Equal(299, await CountAsync("select count(*) from scores where run_id = @r", ("r", second)));
        Assert.Equal(1, await CountAsync("select count(*) from run_reused_scores where run_id = @r", ("r", second)));
        // The run's progress counts the records it covered: its 299 rows and the reused one.
        Assert.Equal(300, await CountAsync("select coalesce(sum(records_scored), 0)::bigint from run_progress_minutes where run_id = @r", ("r", second)));
    }

    private async Task<int> ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return await cmd.ExecuteNonQueryAsync();
    }

    private async Task<long> CountAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return (long)(await cmd.ExecuteScalarAsync())!;
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
