using System.Collections.Concurrent;
using HubertEcg.Grains;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// A worker's scorers for its leases' models, each opened once on a thread of its own (loading a model takes seconds):
/// the download stage starts opening a shard's model as soon as it holds the lease, so that the model loads while the
/// shard downloads, and the prepare stage awaits it. A model that failed to open is tried again by the next shard.
/// A model kept in blob storage (<see cref="ModelLocation"/>) comes from the silo's <see cref="ModelCache"/>, which
/// checks the file's SHA-256 once per run on this worker before the scorer is opened (or found open) for it; a model
/// given as a file path (runs stored before models were kept in blob storage) is opened from that path.
/// </summary>
internal sealed class ScorerCache(IScorerProvider scorers, WorkerDevice device, ModelCache? models = null)
{
    // Runs whose blob models this worker keeps a checked scorer for; older ones are forgotten (and checked again).
    private const int RunsRemembered = 16;

    private readonly ConcurrentDictionary<string, Task<IEcgScorer>> _opening = new(StringComparer.Ordinal);
    private readonly Queue<string> _runKeys = new();

    /// <summary>
    /// Starts opening <paramref name="lease"/>'s model, or finds it opening or open, without taking a failure away: the
    /// shard's own <see cref="OpenAsync"/> later sees it (a failure seen here, when the open failed at once, would
    /// otherwise make that call open the model a second time for the same shard).
    /// </summary>
    public void Start(ShardLease lease) => _ = Opening(lease, retryFailed: false);

    /// <summary>The scorer of <paramref name="lease"/>'s model; a failed open is forgotten once seen here, so the next shard tries again.</summary>
    public Task<IEcgScorer> OpenAsync(ShardLease lease) => Opening(lease, retryFailed: true);

    private Task<IEcgScorer> Opening(ShardLease lease, bool retryFailed)
    {
        var location = lease.Settings.ModelPath;
        var blob = ModelLocation.Parse(location);
        var key = blob is null ? location : $"{lease.RunId:N} {location}";
        var opening = _opening.GetOrAdd(key, _ => blob is null ? Open(location) : OpenBlobAsync(blob));
        if (opening.IsFaulted && retryFailed)
        {
            _opening.TryRemove(new KeyValuePair<string, Task<IEcgScorer>>(key, opening));
        }
        else if (blob is not null)
        {
            Remember(key);
        }

        return opening;
    }

    private Task<IEcgScorer> Open(string path) =>
        Task.Factory.StartNew(() => scorers.Get(path, device), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private async Task<IEcgScorer> OpenBlobAsync(ModelBlob blob)
    {
        if (models is null)
        {
            throw new InvalidOperationException($"the run's model is kept in blob storage ({blob.Location}) but this worker has no model cache");
        }

        // Held from the check until the session is open; the session then has the weights in memory.
        using var file = await models.AcquireAsync(blob);
        return await Open(file.Path);
    }

    private void Remember(string key)
    {
        lock (_runKeys)
        {
            if (_runKeys.Contains(key))
            {
                return;
            }

            _runKeys.Enqueue(key);
            while (_runKeys.Count > RunsRemembered)
            {
                _opening.TryRemove(_runKeys.Dequeue(), out _);
            }
        }
    }
}
