using System.Threading.Channels;
using HubertEcg.Grains;
using HubertEcg.Worker;
using HubertEcg.Worker.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>What the writer does with a shard's rows and its end.</summary>
public sealed class WriteStageTests : IDisposable
{
    private readonly WorkerRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task ASinkThatKeepsFailingFailsTheShardWritesNothingMoreAndReleasesItsLeaseWithTheReason()
    {
        using var queues = _rig.Metrics.TrackWorker("write-test");
        _rig.Sink.BeforeScores = (_, _) => throw new IOException("connection reset by the score table's server");
        var lease = _rig.Shard(4, Aggregation.Mean);
        var held = new HeldLease("write-test", _rig.Leases, lease, NullLogger.Instance);
        var work = new ShardWork(held, queues, CancellationToken.None);
        work.Quarantine("q", "q.txt", "not a record");
        queues.AddRows(2);
        var writes = Channel.CreateUnbounded<WriteItem>();
        writes.Writer.TryWrite(new WriteItem(work, [Row(lease, "a")], Last: false));
        writes.Writer.TryWrite(new WriteItem(work, [Row(lease, "b")], Last: false));
        writes.Writer.TryWrite(new WriteItem(work, [], Last: true));
        writes.Writer.Complete();
        var finished = new List<HeldLease>();

        var stage = new WriteStage("write-test", _rig.Sink, new EmptyScoreIndex(), _rig.Metrics, queues, OutageBackoff.Default(), NullLogger.Instance);
        await stage.RunAsync(writes.Reader, finished.Add, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));

        // The first write failed the shard: the second and the quarantine rows were not tried.
        Assert.Equal(1, _rig.Sink.ScoreWrites);
        Assert.Empty(_rig.Sink.Scores);
        Assert.Empty(_rig.Sink.Quarantined);
        var (released, error, permanent) = Assert.Single(_rig.Leases.Released);
        Assert.Equal(lease, released);
        Assert.Equal("IOException: connection reset by the score table's server", error);
        Assert.False(permanent);
        Assert.Empty(_rig.Leases.Completed);
        Assert.Equal([held], finished);
        Assert.Equal(0, queues.Rows);
    }

    [Fact]
    public async Task TwoWritersWriteAShardsRowsAtOnceAndReportTheShardOnlyAfterAllOfThem()
    {
        using var queues = _rig.Metrics.TrackWorker("write-test");
        var inFlight = 0;
        var bothStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var completedBeforeRowsWritten = false;
        _rig.Sink.BeforeScores = async (_, ct) =>
        {
            // Each write waits until two are in flight at once: with one writer this would never happen.
            if (Interlocked.Increment(ref inFlight) == 2)
            {
                bothStarted.TrySetResult();
            }

            await bothStarted.Task.WaitAsync(TimeSpan.FromSeconds(60), ct);
            completedBeforeRowsWritten |= !_rig.Leases.Completed.IsEmpty;
        };
        var lease = _rig.Shard(4, Aggregation.Mean);
        var held = new HeldLease("write-test", _rig.Leases, lease, NullLogger.Instance);
        var work = new ShardWork(held, queues, CancellationToken.None);
        queues.AddRows(3);
        var writes = Channel.CreateUnbounded<WriteItem>();
        writes.Writer.TryWrite(new WriteItem(work, [Row(lease, "a"), Row(lease, "b")], Last: false));
        writes.Writer.TryWrite(new WriteItem(work, [Row(lease, "c")], Last: true));
        writes.Writer.Complete();
        var finished = new List<HeldLease>();

        var stage = new WriteStage("write-test", _rig.Sink, new EmptyScoreIndex(), _rig.Metrics, queues, OutageBackoff.Default(), NullLogger.Instance, writers: 2);
        await stage.RunAsync(writes.Reader, finished.Add, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, _rig.Sink.ScoreWrites);
        Assert.Equal(["a", "b", "c"], _rig.Sink.Scores.Select(r => r.RecordId).Order(StringComparer.Ordinal));
        Assert.False(completedBeforeRowsWritten);
        var outcome = Assert.Single(_rig.Leases.Completed);
        Assert.Equal((3, 0), (outcome.RecordsDone, outcome.RecordsQuarantined));
        Assert.Equal([held], finished);
        Assert.Equal(0, queues.Rows);
    }

    private static ScoreRow Row(ShardLease lease, string recordId) =>
        new(lease.Settings.ModelId, recordId, lease.RunId, [0.5f, 0.5f], [1, 2], 1, recordId, "", DateTime.UtcNow);
}
