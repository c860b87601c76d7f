using System.Diagnostics.Metrics;
using HubertEcg.Grains;
using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>The worker's stages end to end, with fakes for the lease port, blob store, sink and model.</summary>
public sealed class ScoringWorkerTests : IDisposable
{
    private readonly WorkerRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Theory]
    [InlineData(Aggregation.Mean)]
    [InlineData(Aggregation.Max)]
    public async Task RecordsOfAShardFlowThroughEveryStageIntoScoreRowsAggregatedPerRecord(Aggregation aggregation)
    {
        // Batches of 4: r3's windows share a batch with r1's and r2's, and run on into the next one.
        var lease = _rig.Shard(4, aggregation, ("r1", "1,3"), ("r2", "2"), ("r3", "4,5,6"));
        _rig.Leases.Add(lease);
        using var stop = new CancellationTokenSource();
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(() => _rig.Leases.IsCompleted(lease), "the shard is reported done");
        var queues = QueueDepths();
        await stop.CancelAsync();
        await running;

        var outcome = Assert.Single(_rig.Leases.Completed);
        Assert.Equal((3, 0, 0), (outcome.RecordsDone, outcome.RecordsQuarantined, outcome.RecordsSkipped));
        Assert.Empty(_rig.Leases.Released);
        var rows = _rig.Sink.Scores.ToDictionary(r => r.RecordId);
        Assert.Equal(["s1/r1", "s1/r2", "s1/r3"], rows.Keys.Order(StringComparer.Ordinal));
        Assert.All(rows.Values, r => Assert.Equal((lease.RunId, "fake-model"), (r.RunId, r.ModelId)));
        Assert.Equal("s1/r3.txt", rows["s1/r3"].SourceBlob);

        // The embedding is always the mean; the probabilities are the mean or the maximum of the windows'.
        var max = aggregation == Aggregation.Max;
        AssertRow(rows["s1/r1"], 2, [2, 4], max ? [0.3f, 0.9f] : [0.2f, 0.8f]);
        AssertRow(rows["s1/r2"], 1, [2, 4], [0.2f, 0.8f]);
        AssertRow(rows["s1/r3"], 3, [5, 10], max ? [0.6f, 0.6f] : [0.5f, 0.5f]);
        Assert.Equal([4, 2], _rig.Scorer.Batches.Select(b => b.Length));

        // Every queue the worker reports is empty once the shard is done.
        Assert.Equal(4, queues.Count);
        Assert.All(queues, q => Assert.True(q.Value == 0, $"{q.Key} is {q.Value}"));
    }

    [Fact]
    public async Task ARecordThatCannotBePreprocessedOrReadIsQuarantinedAndTheRestScored()
    {
        var lease = _rig.Shard(4, Aggregation.Mean, ("good", "1,2"), ("short", "-1"), ("broken", "unreadable"), ("fine", "3"));
        _rig.Leases.Add(lease);
        using var stop = new CancellationTokenSource();
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(() => _rig.Leases.IsCompleted(lease), "the shard is reported done");
        await stop.CancelAsync();
        await running;

        var outcome = Assert.Single(_rig.Leases.Completed);
        Assert.Equal((2, 2), (outcome.RecordsDone, outcome.RecordsQuarantined));
        Assert.Equal(["s1/fine", "s1/good"], _rig.Sink.Scores.Select(r => r.RecordId).Order(StringComparer.Ordinal));
        var reasons = _rig.Sink.Quarantined.ToDictionary(q => q.RecordId, q => q.Reason);
        Assert.Equal("too short to preprocess", reasons["s1/short"]);
        Assert.Equal("not a record", reasons["s1/broken"]);
        Assert.All(_rig.Sink.Quarantined, q => Assert.Equal((lease.RunId, lease.ShardNo), (q.RunId, q.ShardNo)));
    }

    [Fact]
    public async Task ALostLeaseDropsItsShardWithoutWritingMoreWhileTheNextShardCompletes()
    {
        // One row per write; the first write of the lost shard waits until its lease is lost.
        _rig.Options.WriteBatchRows = 1;
        var lost = _rig.Shard(2, Aggregation.Mean, ("a", "1"), ("b", "2"), ("c", "3"), ("d", "unreadable"));
        var next = _rig.Shard(2, Aggregation.Mean, ("e", "4"));
        _rig.Sink.BeforeScores = async (rows, token) =>
        {
            if (rows[0].RunId == lost.RunId)
            {
                _rig.Leases.Lose(lost);
                await Task.Delay(Timeout.Infinite, token).WaitAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
            }
        };
        _rig.Leases.Add(lost, next);
        using var stop = new CancellationTokenSource();
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(() => _rig.Leases.IsCompleted(next), "the next shard is reported done");
        await stop.CancelAsync();
        await running;

        // The lost shard wrote nothing (its one write was cancelled, the rest not tried, no quarantine row), was
        // neither reported nor released with an error, and was not handed back on stopping: it had left the worker.
        Assert.Equal(1, _rig.Sink.ScoreWrites - _rig.Sink.Scores.Count);
        Assert.DoesNotContain(_rig.Sink.Scores, r => r.RunId == lost.RunId);
        Assert.Empty(_rig.Sink.Quarantined);
        Assert.False(_rig.Leases.IsCompleted(lost));
        Assert.DoesNotContain(_rig.Leases.Released, r => r.Lease == lost);
        Assert.Equal(["s2/e"], _rig.Sink.Scores.Select(r => r.RecordId));
    }

    [Fact]
    public async Task ASinkThatKeepsFailingFailsTheShardAndReleasesItsLeaseWithTheReasonWhileOthersComplete()
    {
        var failing = _rig.Shard(2, Aggregation.Mean, ("a", "1"), ("b", "unreadable"));
        var other = _rig.Shard(2, Aggregation.Mean, ("c", "2"));
        _rig.Sink.BeforeScores = (rows, _) => rows[0].RunId == failing.RunId
            ? throw new TimeoutException("the score table did not answer in time")
            : Task.CompletedTask;
        _rig.Leases.Add(failing, other);
        using var stop = new CancellationTokenSource();
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(
            () => _rig.Leases.IsCompleted(other) && _rig.Leases.Released.Any(r => r.Lease == failing), "one shard is done and the other released");
        await stop.CancelAsync();
        await running;

        var (_, error, permanent) = Assert.Single(_rig.Leases.Released);
        Assert.Equal("TimeoutException: the score table did not answer in time", error);
        Assert.False(permanent);
        Assert.False(_rig.Leases.IsCompleted(failing));
        Assert.Empty(_rig.Sink.Quarantined);
        Assert.Equal(["s2/c"], _rig.Sink.Scores.Select(r => r.RecordId));
    }

    [Fact]
    public async Task StoppingHandsBackTheLeasesNotFinishedWithoutCountingAnAttempt()
    {
        // The model's first call waits until the worker is told to stop: the first shard is being scored, the second
        // downloaded ahead of it.
        _rig.Options.PrefetchShards = 1;
        using var stop = new CancellationTokenSource();
        using var stopping = new ManualResetEventSlim();
        var modelCalled = 0;
        _rig.Scorer.BeforeBatch = () =>
        {
            Interlocked.Increment(ref modelCalled);
            _rig.Changes.Pulse();
            Assert.True(stopping.Wait(TimeSpan.FromSeconds(60)));
        };
        var first = _rig.Shard(1, Aggregation.Mean, ("a", "1"), ("b", "2"));
        var second = _rig.Shard(1, Aggregation.Mean, ("c", "3"));
        var third = _rig.Shard(1, Aggregation.Mean, ("d", "4"));
        _rig.Leases.Add(first, second, third);
        var running = _rig.Worker().RunAsync(stop.Token);

        await _rig.Changes.WaitUntilAsync(() => Volatile.Read(ref modelCalled) > 0 && _rig.Leases.Acquired.Count >= 2, "the model scores and the next shard is leased");
        await stop.CancelAsync();
        stopping.Set();
        await running.WaitAsync(TimeSpan.FromSeconds(60));

        // 1 + PrefetchShards leases were held: both are handed back without an error, none is reported done.
        Assert.Equal([first, second], _rig.Leases.Acquired);
        Assert.Empty(_rig.Leases.Completed);
        Assert.Equal([first.ShardNo, second.ShardNo], _rig.Leases.Released.Select(r => r.Lease.ShardNo).Order());
        Assert.All(_rig.Leases.Released, r => Assert.Equal((null, false), (r.Error, r.Permanent)));
    }

    private static void AssertRow(ScoreRow row, int windows, float[] embedding, float[] probabilities)
    {
        Assert.Equal(windows, row.WindowsUsed);
        Assert.Equal(embedding, row.Embedding, (a, b) => Math.Abs(a - b) < 1e-5);
        Assert.Equal(probabilities, row.Probabilities, (a, b) => Math.Abs(a - b) < 1e-5);
    }

    // The queue gauges of the rig's meter, read now.
    private Dictionary<string, long> QueueDepths()
    {
        var depths = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, _rig.Metrics.Meter) && instrument.Name.StartsWith("hubert_ecg.queue.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => depths[instrument.Name] = value);
        listener.Start();
        listener.RecordObservableInstruments();
        return depths;
    }
}
