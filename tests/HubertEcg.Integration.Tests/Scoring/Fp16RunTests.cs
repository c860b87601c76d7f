using HubertEcg.Client.Commands;
using HubertEcg.Grains;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Preprocessing;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// A run with an fp16 model on a CPU worker that binds I/O (<c>Workers:IoBinding</c> true, batches padded to a fixed
/// shape): the model's precision is recorded on the models and runs rows, shown by run status, and the stored scores
/// are the ones the scorer computes offline.
/// </summary>
public sealed class Fp16RunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task AnFp16RunRecordsItsPrecisionWithItsScores()
    {
        using var model = new TinyModel(precision: ModelPrecision.Fp16);
        Assert.Equal(ModelPrecision.Fp16, model.Descriptor.Precision);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "fp16/", 40);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, settings: new Dictionary<string, string?> { ["Workers:IoBinding"] = "true" });

        // Batches of 6 windows (3 records of 2 windows): bound runs of 6 are padded to a fixed shape of 8, and a
        // shorter last batch to the next power of two.
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "fp16/", shardSize: 10, batchSize: 6, modelPath: model.Path);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(5));
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
        Assert.Equal("fp16", run.ModelPrecision);
        Assert.Contains($"model: {model.Descriptor.ModelId} (fp16)", RunStatusCommand.Describe(RunCommands.View(run, new Dictionary<ShardState, int>())), StringComparison.Ordinal);

        // Each score row's provenance: its model id, whose row says fp16.
        await using (var cmd = database.DataSource.CreateCommand(
            "select distinct m.precision from scores s join models m on m.model_id = s.model_id where s.run_id = @run"))
        {
            cmd.Parameters.AddWithValue("run", runId);
            Assert.Equal("fp16", (string?)await cmd.ExecuteScalarAsync());
        }

        // The stored scores are the scorer's (unbound, offline) for the same record: the mean over its two windows.
        var record = cohort.GoodRecords.Order(StringComparer.Ordinal).First();
        var local = Path.Combine(model.Directory, "record.npy");
        await blobs.Container.GetBlobClient(record + ".npy").DownloadToAsync(local);
        var windows = new EcgPreprocessor(new EcgPreprocessorOptions { MaxWindows = 4 }).Preprocess(FormatRegistry.Default.Load(local, samplingRate: 500).ToStandard12Lead());
        using var offline = new OnnxEcgScorer(model.Path, new ScorerOptions { IntraOpThreads = 1, IoBinding = false });
        var labels = offline.Model.LabelCount;
        var probabilities = new float[windows.WindowCount * labels];
        offline.Score(windows.Windows, windows.WindowCount, new float[windows.WindowCount * offline.Model.HiddenSize], probabilities);
        await using (var cmd = database.DataSource.CreateCommand("select probabilities from scores where run_id = @run and record_id = @record"))
        {
            cmd.Parameters.AddWithValue("run", runId);
            cmd.Parameters.AddWithValue("record", record);
            var stored = (float[])(await cmd.ExecuteScalarAsync())!;
            Assert.Equal(labels, stored.Length);
            for (var l = 0; l < labels; l++)
            {
                var mean = 0f;
                for (var w = 0; w < windows.WindowCount; w++)
                {
                    mean += probabilities[(w * labels) + l] / windows.WindowCount;
                }

                Assert.Equal(mean, stored[l], 1e-5f);
            }
        }
    }

    [Fact]
    public async Task ARegisteredFp16ModelKeepsItsPrecision()
    {
        using var model = new TinyModel(seed: 23, precision: ModelPrecision.Fp16);
        var container = "models-" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            var registry = new ModelRegistry(database.DataSource, () => new Azure.Storage.Blobs.BlobServiceClient(blobs.ConnectionString), container);
            await registry.RegisterFileAsync(model.Path);
            await using var cmd = database.DataSource.CreateCommand("select precision from models where model_id = @id");
            cmd.Parameters.AddWithValue("id", model.Descriptor.ModelId);
            Assert.Equal("fp16", (string?)await cmd.ExecuteScalarAsync());
        }
        finally
        {
            await new Azure.Storage.Blobs.BlobContainerClient(blobs.ConnectionString, container).DeleteIfExistsAsync();
        }
    }

    [Fact]
    public async Task RunsOfFp32ModelsAndRowsFromBeforeThePrecisionColumnAreFp32()
    {
        using var model = new TinyModel(seed: 11);
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "none/", shardSize: 10, modelPath: model.Path);
        var run = await store.GetRunAsync(runId);
        Assert.Equal("fp32", run!.ModelPrecision);

        // A client that says nothing of precision (one built before it existed) registers an fp32 model.
        await using var cmd = database.DataSource.CreateCommand("select precision from models where model_id = @id");
        cmd.Parameters.AddWithValue("id", model.Descriptor.ModelId);
        Assert.Equal("fp32", (string?)await cmd.ExecuteScalarAsync());
    }
}
