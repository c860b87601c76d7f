using System.Security.Cryptography;
using HubertEcg.Grains;
using HubertEcg.Worker;
using Microsoft.Extensions.Logging.Abstractions;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>
/// Issue 16: a worker gets a run's model kept in blob storage from the silo's model cache; one that cannot get it
/// hands the shard back as a storage outage (no attempt spent, the run not failed), and the shard can be scored later.
/// </summary>
public sealed class ModelFetchTests : IDisposable
{
    private readonly WorkerRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task A_shard_whose_model_cannot_be_fetched_is_handed_back_as_an_outage_and_a_fetchable_one_is_scored()
    {
        var modelId = Convert.ToHexStringLower(SHA256.HashData("fake model"u8));
        _rig.Scorer = new FakeScorer(modelId);
        var cache = new ModelCache(
            new LocalBlobSource(_rig.BlobRoot),
            new ModelOptions { CacheFolder = Path.Combine(_rig.BlobRoot, "..", "cache") },
            NullLogger<ModelCache>.Instance);
        _rig.Models = cache;

        // The model file is any bytes here (the fake scorer never reads it); its blob is at its content address.
        var content = "weights"u8.ToArray();
        var present = new ModelBlob("models", modelId, Convert.ToHexStringLower(SHA256.HashData(content)));
        Directory.CreateDirectory(Path.Combine(_rig.BlobRoot, "models", modelId));
        await File.WriteAllBytesAsync(Path.Combine(_rig.BlobRoot, "models", present.BlobName), content);
        var missing = new ModelBlob("models", modelId, Convert.ToHexStringLower(SHA256.HashData("other weights"u8)));

        var orphan = WithModel(_rig.Shard(4, Aggregation.Mean, ("a", "1")), missing);
        var good = WithModel(_rig.Shard(4, Aggregation.Mean, ("b", "2"), ("c", "3")), present);
        _rig.Leases.Add(orphan, good);
        using var stop = new CancellationTokenSource();
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(() => _rig.Leases.IsCompleted(good) && !_rig.Leases.Interrupted.IsEmpty, "the good shard done and the other handed back");
        await stop.CancelAsync();
        await running;

        var (lease, service, error) = Assert.Single(_rig.Leases.Interrupted);
        Assert.Equal((orphan.RunId, ServiceUnavailableException.Storage), (lease.RunId, service));
        Assert.Contains($"model {modelId} cannot be fetched from models/{missing.BlobName}: its blob does not exist", error, StringComparison.Ordinal);
        Assert.Empty(_rig.Leases.RunsFailed);
        Assert.Empty(_rig.Leases.Released);
        Assert.Equal(["s2/b", "s2/c"], _rig.Sink.Scores.Select(r => r.RecordId).Order(StringComparer.Ordinal));
        Assert.Equal((2L, 0L), (cache.Downloads, cache.Rejections));
        Assert.Equal([present.Sha256], cache.Held);
    }

    private static ShardLease WithModel(ShardLease lease, ModelBlob model) =>
        lease with { Settings = lease.Settings with { ModelPath = model.Location } };
}
