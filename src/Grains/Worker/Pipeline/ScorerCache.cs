using System.Collections.Concurrent;
using HubertEcg.Inference.Model;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// A worker's scorers by model path, each opened once on a thread of its own (loading a model takes seconds): the
/// download stage starts opening a shard's model as soon as it holds the lease, so that the model loads while the
/// shard downloads, and the prepare stage awaits it. A model that failed to open is tried again by the next shard.
/// </summary>
internal sealed class ScorerCache(IScorerProvider scorers, WorkerDevice device)
{
    private readonly ConcurrentDictionary<string, Task<IEcgScorer>> _opening = new(StringComparer.Ordinal);

    public Task<IEcgScorer> OpenAsync(string modelPath)
    {
        var opening = _opening.GetOrAdd(
            modelPath,
            path => Task.Factory.StartNew(() => scorers.Get(path, device), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default));
        if (opening.IsFaulted)
        {
            _opening.TryRemove(new KeyValuePair<string, Task<IEcgScorer>>(modelPath, opening));
        }

        return opening;
    }
}
