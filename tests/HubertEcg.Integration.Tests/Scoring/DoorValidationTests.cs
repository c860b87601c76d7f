using HubertEcg.Grains;
using HubertEcg.Inference.Onnx;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Issue 12, finding 1 and validation at the door, through the command-line tool against the real Postgres: run and
/// schedule options outside <see cref="RunSettingsRules"/>, and model files that lie or are no models, are refused with
/// the reason before anything is stored.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class DoorValidationCommandTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task RunSubmitWithABatchOf400000IsRefusedWithTheReasonAndStoresNothing()
    {
        using var model = new TinyModel(seed: 41);
        var (code, output, error) = await CliHarness.RunAsync(
            database.ConnectionString, blobs.ConnectionString,
            "run", "submit", "--input", $"{blobs.ContainerName}/door/", "--model", model.Path, "--batch", "400000", "--name", "door batch");

        Assert.Equal(1, code);
        Assert.Equal("", output.Trim());
        Assert.Contains("error: run options refused: --batch 400000 is outside 1..1024", error, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync("select count(*) from runs where name = @name", "door batch"));
    }

    [Fact]
    public async Task ScheduleAddWithOptionsOutsideTheBoundsIsRefusedWithEveryReasonAndStoresNothing()
    {
        using var model = new TinyModel(seed: 42);
        var (code, output, error) = await CliHarness.RunAsync(
            database.ConnectionString, blobs.ConnectionString,
            "schedule", "add", "--name", "door nightly", "--input", $"{blobs.ContainerName}/door/", "--model", model.Path, "--cron", "0 2 * * *",
            "--batch", "400000", "--shard-size", "1000000");

        Assert.Equal(1, code);
        Assert.Equal("", output.Trim());
        Assert.Contains("--batch 400000 is outside 1..1024", error, StringComparison.Ordinal);
        Assert.Contains("--shard-size 1000000 is outside 1..10000", error, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync("select count(*) from schedules where name = @name", "door nightly"));

        // The store refuses it too, whoever calls it (the firing of such a schedule is covered by DoorValidationRunTests).
        var e = await Assert.ThrowsAsync<ArgumentException>(() => new ScheduleStore(database.DataSource).AddAsync(new ScheduleRecord(
            Guid.NewGuid(), "door store", blobs.ContainerName, "door/", null, model.Descriptor.ModelId, model.Path, model.Descriptor.PreprocessingProfile,
            Aggregation.Mean, 6, 400_000, 100, 3, 60, "0 2 * * *", "UTC", Incremental: true)));
        Assert.Contains("--batch 400000 is outside 1..1024", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync("select count(*) from schedules where name = @name", "door store"));
    }

    [Fact]
    public async Task RunSubmitWithAModelLyingAboutItsHiddenSizeOrNoModelAtAllIsRefusedWithTheReason()
    {
        using var model = new TinyModel(seed: 43);
        var lying = Path.Combine(model.Directory, "lying.onnx");
        ModelFiles.WithMetadata(model.Path, lying, OnnxModelMetadata.HiddenSizeKey, "2147483647");
        var (code, output, error) = await CliHarness.RunAsync(
            database.ConnectionString, blobs.ConnectionString,
            "run", "submit", "--input", $"{blobs.ContainerName}/door/", "--model", lying, "--name", "door lying model");

        Assert.Equal(1, code);
        Assert.Equal("", output.Trim());
        Assert.Contains(
            $"'hubert_ecg.hidden_size': metadata entry says 2147483647, but the graph's 'embedding' output is {model.Descriptor.HiddenSize} wide",
            error,
            StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync("select count(*) from runs where name = @name", "door lying model"));

        // A 20 GB file of zeros given as the model is refused at once from its size, not scanned.
        var zeros = Path.Combine(model.Directory, "zeros.onnx");
        ModelFiles.SparseZeros(zeros, 20L << 30);
        (code, _, error) = await CliHarness.RunAsync(
            database.ConnectionString, blobs.ConnectionString,
            "run", "submit", "--input", $"{blobs.ContainerName}/door/", "--model", zeros, "--name", "door zeros")
            .WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, code);
        Assert.Contains("the file is 21474836480 bytes, more than an ONNX model can be", error, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync("select count(*) from runs where name = @name", "door zeros"));
    }

    private async Task<long> CountAsync(string sql, string name)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("name", name);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}

/// <summary>
/// Issue 12, finding 1, on in-process silos with the real Postgres, Azurite and ONNX Runtime: a run that got past the
/// door (a schedule stored before the checks, a model file that lies) fails once with the reason within a minute,
/// nothing more of it is leased, and a run submitted after it completes: one poisoned run no longer stalls every worker.
/// </summary>
public sealed class DoorValidationRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task AScheduledRunWithABatchOf400000FailsWithTheReasonWhileTheNextRunCompletes()
    {
        using var model = new TinyModel(seed: 44);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "door-batch/", 6);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);

        // A schedule stored before its options were checked fires the way a silo's reminder does.
        await store.RegisterModelAsync(new ModelRecord(
            model.Descriptor.ModelId, model.Descriptor.Name, model.Descriptor.SourceHash, model.Descriptor.ArchitectureJson, model.Descriptor.HiddenSize,
            model.Descriptor.LabelCodes, model.Descriptor.Untrained, model.Descriptor.PreprocessingProfile));
        var scheduleId = await InsertUncheckedScheduleAsync(model.Descriptor.ModelId, model.Path, "door-batch/", batchSize: 400_000);
        var firing = await new ScheduleStore(database.DataSource).StartRunAsync(scheduleId, byHand: true);
        Assert.Equal(FiringOutcome.Started, firing.Outcome);
        var poisoned = firing.RunId!.Value;
        var good = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "door-batch/", shardSize: 3, modelPath: model.Path, name: "after the poison");

        var failed = await Runs.WaitFinishedAsync(store, poisoned, TimeSpan.FromMinutes(1));
        Assert.Equal(RunState.Failed, failed.State);
        Assert.Contains("--batch 400000 is outside 1..1024", failed.Error, StringComparison.Ordinal);
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_shards where run_id = @run", poisoned));

        var done = await Runs.WaitFinishedAsync(store, good, TimeSpan.FromMinutes(5));
        Assert.Equal(RunState.Completed, done.State);
        Assert.Equal(cohort.GoodRecords.Count, done.RecordsDone);
        Assert.Equal(cohort.GoodRecords.Count, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", good));
    }

    [Fact]
    public async Task ARunWhoseModelLiesAboutItsHiddenSizeFailsOnceWithTheReasonWhileTheNextRunCompletes()
    {
        using var model = new TinyModel(seed: 45);
        var lying = Path.Combine(model.Directory, "lying.onnx");
        ModelFiles.WithMetadata(model.Path, lying, OnnxModelMetadata.HiddenSizeKey, "2147483647");
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "door-model/", 6);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);

        // Stored without the submit checks, as any tool writing the row could: only a worker opening the file finds the lie.
        var poisoned = await Runs.SubmitAsync(
            store, model.Descriptor with { HiddenSize = int.MaxValue }, blobs.ContainerName, "door-model/", shardSize: 2, modelPath: lying, name: "lying model");
        var good = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "door-model/", shardSize: 3, modelPath: model.Path, name: "after the lie");

        var failed = await Runs.WaitFinishedAsync(store, poisoned, TimeSpan.FromMinutes(1));
        Assert.Equal(RunState.Failed, failed.State);
        Assert.Contains("the run's model cannot be used", failed.Error, StringComparison.Ordinal);
        Assert.Contains("metadata entry says 2147483647, but the graph's 'embedding' output is", failed.Error, StringComparison.Ordinal);
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", poisoned));

        // Failed once, through the run: no shard spent its attempts (failed) or went round again (a second lease).
        Assert.Equal(0, await Runs.CountAsync(
            database.DataSource, "select count(*) from run_shards where run_id = @run and (state = 'failed' or attempts > 1)", poisoned));

        var done = await Runs.WaitFinishedAsync(store, good, TimeSpan.FromMinutes(5));
        Assert.Equal(RunState.Completed, done.State);
        Assert.Equal(cohort.GoodRecords.Count, done.RecordsDone);
    }

    // The row `schedule add` stored before the bounds existed: no check on the way in.
    private async Task<Guid> InsertUncheckedScheduleAsync(string modelId, string modelPath, string prefix, int batchSize)
    {
        var id = Guid.NewGuid();
        await using var cmd = database.DataSource.CreateCommand(
            "insert into schedules (schedule_id, name, input_container, input_prefix, model_id, model_path, preprocessing_profile, aggregation, " +
            "max_windows, batch_size, shard_size, max_attempts, lease_seconds, cron, time_zone, incremental, enabled) values " +
            "(@id, @name, @container, @prefix, @model, @path, 'hubert-ecg-2024', 'mean', 4, @batch, 3, 3, 10, '0 2 * * *', 'UTC', false, false)");
        cmd.Parameters.Add(new NpgsqlParameter("id", NpgsqlDbType.Uuid) { Value = id });
        cmd.Parameters.AddWithValue("name", "unchecked " + id.ToString("N"));
        cmd.Parameters.AddWithValue("container", blobs.ContainerName);
        cmd.Parameters.AddWithValue("prefix", prefix);
        cmd.Parameters.AddWithValue("model", modelId);
        cmd.Parameters.AddWithValue("path", modelPath);
        cmd.Parameters.AddWithValue("batch", batchSize);
        await cmd.ExecuteNonQueryAsync();
        return id;
    }
}
