using System.Security.Cryptography;
using Azure.Storage.Blobs;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Models through blob storage (issue 16): a model registered from a file that is then deleted, so that no silo can
/// read the submitter's copy, scored by three in-process silos that each keep their own model cache folder. Each
/// silo downloads and checks the model once; a cached copy altered between runs is refused and fetched again.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class ModelBlobRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "hubert-model-blobs-" + Guid.NewGuid().ToString("N"));
    private readonly string _modelsContainer = "models-" + Guid.NewGuid().ToString("N")[..12];

    public void Dispose()
    {
        new BlobContainerClient(blobs.ConnectionString, _modelsContainer).DeleteIfExists();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task Three_silos_fetch_check_and_cache_a_registered_model_once_and_replace_an_altered_copy()
    {
        var first = await SyntheticCohort.UploadAsync(blobs.Container, "first/", 40);
        var second = await SyntheticCohort.UploadAsync(blobs.Container, "second/", 40);
        var name = "tiny-" + Guid.NewGuid().ToString("N")[..8];

        // Registered from a file that is gone before any silo starts; registering it again changes nothing.
        string modelId;
        string sha256;
        using (var model = new TinyModel(seed: 16))
        {
            sha256 = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(model.Path)));
            var registered = await CliAsync("model", "register", model.Path, "--name", name);
            Assert.True(registered.Code == 0, registered.Error);
            modelId = registered.Output.Trim();
            Assert.Equal(model.Descriptor.ModelId, modelId);
            Assert.Contains("uploaded, registered", registered.Error, StringComparison.Ordinal);

            var again = await CliAsync("model", "register", model.Path);
            Assert.True(again.Code == 0, again.Error);
            Assert.Contains("blob already there, already registered", again.Error, StringComparison.Ordinal);
        }

        var stored = await new ModelRegistry(database.DataSource, () => throw new InvalidOperationException("no upload expected"), _modelsContainer).FindAsync(name);
        Assert.Equal(new ModelBlob(_modelsContainer, modelId, sha256), stored.Blob);
        Assert.True(await new BlobContainerClient(blobs.ConnectionString, _modelsContainer).GetBlobClient(stored.Blob!.BlobName).ExistsAsync());

        await using var cluster = await ScoringCluster.StartAsync(
            3, database.ConnectionString, blobs.ConnectionString,
            siloSettings: silo => new Dictionary<string, string?> { ["Models:CacheFolder"] = Path.Combine(_root, silo) });
        var caches = cluster.Cluster.Silos.Select(s => s.ServiceProvider.GetRequiredService<ModelCache>()).ToList();
        Assert.Equal(3, caches.Select(c => c.Folder).Distinct().Count());

        // Run 1, by the model's name: every silo downloads the model once and checks it.
        var store = new RunStore(database.DataSource);
        var run1 = await SubmitAsync("first/", name);
        Assert.Equal($"blob:{_modelsContainer}/{modelId}/{sha256}.onnx", (await store.GetRunAsync(run1))!.ModelPath);
        await AssertCompletedAsync(store, run1, first);
        Assert.All(caches, c =>
        {
            Assert.Equal(1, c.Downloads);
            Assert.Equal(0, c.Rejections);
            Assert.Equal([sha256], c.Held);
            Assert.Equal(sha256, Sha256Of(Path.Combine(c.Folder, sha256 + ".onnx")));
        });

        // Between runs, one silo's cached copy is altered.
        var altered = Path.Combine(caches[0].Folder, sha256 + ".onnx");
        var bytes = await File.ReadAllBytesAsync(altered);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(altered, bytes);
        var checksBefore = caches.Select(c => c.Verifications).ToList();

        // Run 2, by the model's id: that silo refuses its copy and fetches the model again; the others reuse theirs.
        var run2 = await SubmitAsync("second/", modelId);
        await AssertCompletedAsync(store, run2, second);
        Assert.Equal((2L, 1L), (caches[0].Downloads, caches[0].Rejections));
        Assert.Equal(sha256, Sha256Of(altered));
        Assert.All(caches.Skip(1), c => Assert.Equal((1L, 0L), (c.Downloads, c.Rejections)));
        Assert.All(caches.Select((c, i) => c.Verifications - checksBefore[i]), checks => Assert.True(checks >= 1, "every silo checks the model again for a new run"));
    }

    [Fact]
    public async Task Unknown_and_ambiguous_models_are_refused_with_the_reason()
    {
        var unknownId = new string('a', 64);
        var unknown = await CliAsync("run", "submit", "--input", blobs.ContainerName + "/x/", "--model", unknownId);
        Assert.Equal(1, unknown.Code);
        Assert.Contains($"--model {unknownId}: no model with this id is registered", unknown.Error, StringComparison.Ordinal);

        var missingFile = await CliAsync("run", "submit", "--input", blobs.ContainerName + "/x/", "--model", Path.Combine(_root, "gone.onnx"));
        Assert.Equal(1, missingFile.Code);
        Assert.Contains("gone.onnx does not exist", missingFile.Error, StringComparison.Ordinal);

        var name = "shared-" + Guid.NewGuid().ToString("N")[..8];
        var ids = new List<string>();
        foreach (var seed in new[] { 3, 4 })
        {
            using var model = new TinyModel(seed);
            var registered = await CliAsync("model", "register", model.Path, "--name", name);
            Assert.True(registered.Code == 0, registered.Error);
            ids.Add(registered.Output.Trim());
        }

        var ambiguous = await CliAsync("run", "submit", "--input", blobs.ContainerName + "/x/", "--model", name);
        Assert.Equal(1, ambiguous.Code);
        Assert.Contains($"--model '{name}' is the name of 2 registered models", ambiguous.Error, StringComparison.Ordinal);
        Assert.All(ids, id => Assert.Contains(id, ambiguous.Error, StringComparison.Ordinal));

        var nobody = await CliAsync("schedule", "add", "--name", "s-" + name, "--cron", "0 2 * * *", "--input", blobs.ContainerName + "/x/", "--model", "no-such-model");
        Assert.Equal(1, nobody.Code);
        Assert.Contains("'no-such-model' is neither a file, a model id nor the name of a registered model", nobody.Error, StringComparison.Ordinal);
    }

    private async Task<Guid> SubmitAsync(string prefix, string model)
    {
        var submitted = await CliAsync(
            "run", "submit", "--input", $"{blobs.ContainerName}/{prefix}", "--model", model, "--shard-size", "2", "--batch", "8", "--max-windows", "2");
        Assert.True(submitted.Code == 0, submitted.Error);
        return Guid.Parse(submitted.Output.Trim());
    }

    private static async Task AssertCompletedAsync(RunStore store, Guid runId, CohortManifest cohort)
    {
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(5));
        Assert.True(run.State == RunState.Completed, $"run {runId} ended {run.State}: {run.Error}");
        Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
        Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);
        Assert.Equal(0, run.RecordsFailed);
        Assert.Equal(0, run.ShardsFailed);
    }

    private Task<(int Code, string Output, string Error)> CliAsync(params string[] args) =>
        CliHarness.RunAsync(database.ConnectionString, blobs.ConnectionString, [.. args, "--set", $"Models:Container={_modelsContainer}"]);

    private static string Sha256Of(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
