using System.Collections.Concurrent;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// The leases a worker holds from the moment their shard is downloaded until it leaves the pipeline, and the slots
/// that bound them: one for the shard being scored plus <see cref="WorkerOptions.PrefetchShards"/> downloaded ahead.
/// The download stage takes a slot before it asks for a lease; the write stage frees it when the shard is finished.
/// What is still held when the worker stops is handed back without counting an attempt.
/// </summary>
internal sealed class InFlightLeases(int prefetchShards) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(1 + Math.Max(0, prefetchShards));
    private readonly ConcurrentDictionary<HeldLease, bool> _held = new();

    /// <summary>Waits until fewer than the allowed shards are held.</summary>
    public Task TakeSlotAsync(CancellationToken cancellationToken) => _slots.WaitAsync(cancellationToken);

    /// <summary>Frees a slot that no shard went into (nothing leased, or the download failed).</summary>
    public void ReturnSlot() => _slots.Release();

    /// <summary>A downloaded shard enters the pipeline in the slot its download stage took.</summary>
    public void Add(HeldLease held) => _held[held] = true;

    /// <summary>A shard that was added but did not enter the pipeline after all; its slot is returned separately.</summary>
    public void Remove(HeldLease held) => _held.TryRemove(held, out _);

    /// <summary>A shard left the pipeline (done, failed or lost): its lease is no longer held and its slot is free.</summary>
    public void Finished(HeldLease held)
    {
        _held.TryRemove(held, out _);
        _slots.Release();
    }

    /// <summary>Hands back every lease still held (the worker stopped, or its pipeline failed) without counting an attempt.</summary>
    public async Task HandBackAllAsync()
    {
        foreach (var held in _held.Keys)
        {
            _held.TryRemove(held, out _);
            await held.HandBackAsync();
            await held.DisposeAsync();
        }
    }

    public void Dispose() => _slots.Dispose();
}
