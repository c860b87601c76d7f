using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scheduling;

/// <summary>
/// Incremental runs on a real silo against Postgres and Azurite: a run over an unchanged prefix scores nothing, a
/// run after records were added and changed scores exactly those (replacing the changed ones' rows), containers are
/// skipped whole while unchanged once a run has read them through, and a manifest run leaves out current records
/// after download.
/// </summary>
public sealed class IncrementalRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task IncrementalRunsScoreOnlyNewAndChangedRecords()
    {
        using var model = new TinyModel(seed: 61);
        var first = await SyntheticCohort.UploadAsync(blobs.Container, "inc/a/", 20, mixed: true);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, settings: new Dictionary<string, string?> { ["Coordinator:ListPageSize"] = "7" });

        var full = await RunAsync(store, model, "inc/", incremental: false);
        Assert.Equal((first.GoodRecords.Count, first.CorruptRecords.Count, 0L), (full.RecordsDone, full.RecordsQuarantined, full.RecordsSkipped));

        // Nothing changed: planning leaves every scored record out (the HDF5 shard whole); the corrupt records, which
        // have no score, are tried again.
        var unchanged = await RunAsync(store, model, "inc/", incremental: true);
        Assert.Equal(RunState.Completed, unchanged.State);
        Assert.Equal((0L, first.CorruptRecords.Count, first.GoodRecords.Count), (unchanged.RecordsDone, unchanged.RecordsQuarantined, unchanged.RecordsSkipped));
        Assert.Equal(first.GoodRecords.Count, unchanged.PlanningSkipped);
        Assert.Equal(first.CorruptRecords.Count, unchanged.RecordsPlanned);
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_shards where run_id = @run and kind = 'container'", unchanged.RunId));

        // New records under the prefix, one record rewritten with other content, the HDF5 shard uploaded again.
        var added = await SyntheticCohort.UploadAsync(blobs.Container, "inc/b/", 6);
        var (changedBefore, _) = await ScoreOfAsync(model, "inc/a/rec00003");
        var other = new float[12 * 5000];
        for (var i = 0; i < other.Length; i++)
        {
            other[i] = (float)Math.Cos(i / 37.0);
        }

        var changed = await blobs.Container.GetBlobClient("inc/a/rec00003.npy").UploadAsync(new BinaryData(SyntheticCohort.NpyBytes(other, 12, 5000)), overwrite: true);
        var shard = blobs.Container.GetBlobClient("inc/a/code15/exams_part0.hdf5");
        var shardBytes = (await shard.DownloadContentAsync()).Value.Content;
        await shard.UploadAsync(shardBytes, overwrite: true);

        // And the PTB-XL record's signal file rewritten without its header: the record's version is that of both files.
        var signal = blobs.Container.GetBlobClient("inc/a/ptbxl/00001_lr.dat");
        var signalBytes = (await signal.DownloadContentAsync()).Value.Content;
        var header = (await blobs.Container.GetBlobClient("inc/a/ptbxl/00001_lr.hea").GetPropertiesAsync()).Value.ETag.ToString("H");
        var rewritten = (await signal.UploadAsync(signalBytes, overwrite: true)).Value.ETag.ToString("H");

        var next = await RunAsync(store, model, "inc/", incremental: true);
        var examCount = first.GoodRecords.Count(r => r.Contains(".hdf5#", StringComparison.Ordinal));
        Assert.Equal(added.GoodRecords.Count + 2 + examCount, next.RecordsDone);
        Assert.Equal(first.CorruptRecords.Count + added.CorruptRecords.Count, next.RecordsQuarantined);
        Assert.Equal(first.GoodRecords.Count - 2 - examCount, next.RecordsSkipped);
        Assert.Equal(next.RecordsSkipped, next.PlanningSkipped);

        // The changed record's row was replaced: new run, new ETag, new scores; still one row per record.
        var (changedAfter, changedRun) = await ScoreOfAsync(model, "inc/a/rec00003");
        Assert.Equal(next.RunId, changedRun);
        Assert.NotEqual(changedBefore, changedAfter);
        Assert.Equal(changed.Value.ETag.ToString("H"), await EtagOfAsync(model, "inc/a/rec00003"));
        Assert.Equal(
            first.GoodRecords.Count + added.GoodRecords.Count,
            await Runs.CountAsync(database.DataSource, "select count(*) from scores where model_id = (select model_id from runs where run_id = @run)", next.RunId));
        Assert.Equal(
            added.GoodRecords.Append("inc/a/rec00003").Append("inc/a/ptbxl/00001_lr")
                .Concat(first.GoodRecords.Where(r => r.Contains(".hdf5#", StringComparison.Ordinal))).Order(StringComparer.Ordinal),
            await Runs.StringsAsync(database.DataSource, Schedules.RecordsOfRun, next.RunId));
        Assert.Equal($"{rewritten}+{header}", await EtagOfAsync(model, "inc/a/ptbxl/00001_lr"));

        // A manifest names no ETags: its workers leave out what is current after download (a listed blob that does
        // not exist is quarantined as before).
        var manifest = "inc/a/rec00000.npy\ninc/a/rec00003.npy\ninc/b/rec00001.npy\ninc/a/code15/exams_part0.hdf5\ninc/gone.npy\n";
        await blobs.Container.GetBlobClient("lists/inc.txt").UploadAsync(new BinaryData(manifest), overwrite: true);
        var listed = await RunAsync(store, model, "", incremental: true, manifestBlob: "lists/inc.txt");
        Assert.Equal((0L, 1L, 3L + examCount, 0L), (listed.RecordsDone, listed.RecordsQuarantined, listed.RecordsSkipped, listed.PlanningSkipped));
        Assert.Equal(
            3 + examCount,
            await Runs.CountAsync(database.DataSource, "select coalesce(sum(records_skipped), 0) from run_shards where run_id = @run", listed.RunId));
    }

    [Fact]
    public async Task AContainerScoredOnlyInPartIsReadAgainAndFinishedByTheNextIncrementalRun()
    {
        using var model = new TinyModel(seed: 62);
        await SyntheticCohort.UploadAsync(blobs.Container, "part/", 1, mixed: true);
        const string Prefix = "part/code15/";
        const string Shard = Prefix + "exams_part0.hdf5";
        var etag = (await blobs.Container.GetBlobClient(Shard).GetPropertiesAsync()).Value.ETag.ToString("H");
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);

        // A full run reads the container through and records its pass over this version.
        var full = await RunAsync(store, model, Prefix, incremental: false);
        Assert.Equal(((long)SyntheticCohort.Hdf5Exams, 0L), (full.RecordsDone, full.RecordsQuarantined));
        Assert.Equal([$"{Shard} {etag} {SyntheticCohort.Hdf5Exams} 0 {full.RunId}"], await PassesAsync(model));

        // What a run cancelled half way through the container leaves behind: score rows for the exams it got to, all
        // with the container's current ETag, and no pass.
        await ExecuteAsync(model, "delete from container_passes where model_id = @model");
        await ExecuteAsync(
            model,
            "delete from scores where model_id = @model and record_id in " +
            "(select record_id from scores where model_id = @model order by record_id limit 5)");

        // The next incremental run reads the container again, leaves out the 7 exams it has current scores for and
        // scores the other 5 (before passes, planning took the container for scored and those 5 never were).
        var next = await RunAsync(store, model, Prefix, incremental: true);
        Assert.Equal((5L, 0L, 7L, 0L), (next.RecordsDone, next.RecordsQuarantined, next.RecordsSkipped, next.PlanningSkipped));
        Assert.Equal(1, await Runs.CountAsync(database.DataSource, "select count(*) from run_shards where run_id = @run and kind = 'container'", next.RunId));
        Assert.Equal(
            SyntheticCohort.Hdf5Exams,
            await Runs.CountAsync(database.DataSource, "select count(*) from scores where model_id = (select model_id from runs where run_id = @run)", next.RunId));
        Assert.Equal([$"{Shard} {etag} {SyntheticCohort.Hdf5Exams} 0 {next.RunId}"], await PassesAsync(model));

        // Now the container is left out whole, without being downloaded.
        var after = await RunAsync(store, model, Prefix, incremental: true);
        Assert.Equal((0L, 0L, (long)SyntheticCohort.Hdf5Exams), (after.RecordsDone, after.RecordsPlanned, after.PlanningSkipped));
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_shards where run_id = @run", after.RunId));
    }

    private async Task<List<string>> PassesAsync(TinyModel model)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select source_blob || ' ' || source_etag || ' ' || records_scored || ' ' || records_quarantined || ' ' || run_id " +
            "from container_passes where model_id = @model order by source_blob");
        cmd.Parameters.AddWithValue("model", model.Descriptor.ModelId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    private async Task ExecuteAsync(TinyModel model, string sql)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("model", model.Descriptor.ModelId);
        await cmd.ExecuteNonQueryAsync();
    }

    private async Task<RunRecord> RunAsync(RunStore store, TinyModel model, string prefix, bool incremental, string? manifestBlob = null)
    {
        var runId = await Runs.SubmitAsync(
            store, model.Descriptor, blobs.ContainerName, prefix, shardSize: 4, modelPath: model.Path, manifest: manifestBlob, incremental: incremental);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(incremental, run.Incremental);
        return run;
    }

    private async Task<(float[] Probabilities, Guid RunId)> ScoreOfAsync(TinyModel model, string recordId)
    {
        await using var cmd = database.DataSource.CreateCommand("select probabilities, run_id from scores where model_id = @model and record_id = @record");
        cmd.Parameters.AddWithValue("model", model.Descriptor.ModelId);
        cmd.Parameters.AddWithValue("record", recordId);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetFieldValue<float[]>(0), reader.GetGuid(1));
    }

    private async Task<string> EtagOfAsync(TinyModel model, string recordId)
    {
        await using var cmd = database.DataSource.CreateCommand("select source_etag from scores where model_id = @model and record_id = @record");
        cmd.Parameters.AddWithValue("model", model.Descriptor.ModelId);
        cmd.Parameters.AddWithValue("record", recordId);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }

}
