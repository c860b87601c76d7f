using HubertEcg.Grains;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>
/// Issue 12, finding 1: a run whose options or model cannot work is failed once through the lease port with the reason,
/// and the worker goes on with other runs, instead of handing the shard back uncounted and starting again forever.
/// </summary>
public sealed class RunFaultTests : IDisposable
{
    private readonly WorkerRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task ABatchOf400000FailsItsRunOnceAndTheNextRunIsScored()
    {
        var poison = _rig.Shard(400_000, Aggregation.Mean, ("a", "1"), ("b", "2"));
        var good = _rig.Shard(4, Aggregation.Mean, ("c", "3"));
        _rig.Leases.Add(poison, good);
        using var stop = new CancellationTokenSource();
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(
            () => _rig.Leases.IsCompleted(good) && !_rig.Leases.RunsFailed.IsEmpty, "the poisoned run is failed and the good shard done");
        await stop.CancelAsync();
        await running;

        var (lease, reason) = Assert.Single(_rig.Leases.RunsFailed);
        Assert.Equal(poison.RunId, lease.RunId);
        Assert.Contains("--batch 400000 is outside 1..1024", reason, StringComparison.Ordinal);

        // Not handed back to be leased again (no attempt counted), not completed, nothing of it scored or batched.
        Assert.Empty(_rig.Leases.Released);
        Assert.Equal(good.ShardNo, Assert.Single(_rig.Leases.Completed).ShardNo);
        Assert.Equal(["s2/c"], _rig.Sink.Scores.Select(r => r.RecordId));
        Assert.Equal([1], _rig.Scorer.Batches.Select(b => b.Length));
    }

    [Fact]
    public async Task AModelClaimingHiddenSize2147483647FailsItsRunOnceWithoutAllocatingForIt()
    {
        _rig.Scorer = new FakeScorer(hiddenSize: int.MaxValue);
        var poison = _rig.Shard(4, Aggregation.Mean, ("a", "1"), ("b", "2"));
        _rig.Leases.Add(poison);
        using var stop = new CancellationTokenSource();
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(() => !_rig.Leases.RunsFailed.IsEmpty, "the run is failed");
        await stop.CancelAsync();
        await running;

        var (lease, reason) = Assert.Single(_rig.Leases.RunsFailed);
        Assert.Equal(poison.RunId, lease.RunId);
        Assert.Contains("model hidden size 2147483647 is outside 1..16384", reason, StringComparison.Ordinal);
        Assert.Empty(_rig.Leases.Released);
        Assert.Empty(_rig.Leases.Completed);
        Assert.Empty(_rig.Scorer.Batches);
        Assert.Single(_rig.Leases.Acquired);
    }
}
