using System.Threading.Channels;
using HubertEcg.Grains;
using HubertEcg.Inference.Model;
using HubertEcg.Worker;
using HubertEcg.Worker.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

namespace HubertEcg.Unit.Tests.Worker;

/// <summary>How windows go into batches: across shard boundaries, flushed only when no further shard is ready.</summary>
public sealed class BatchStageTests : IAsyncLifetime
{
    private readonly WorkerRig _rig = new();
    private readonly ScoringMetrics.WorkerQueues _queues;
    private readonly List<HeldLease> _held = [];

    public BatchStageTests() => _queues = _rig.Metrics.TrackWorker("batch-test");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var held in _held)
        {
            await held.DisposeAsync();
        }

        _queues.Dispose();
        _rig.Dispose();
    }

    [Fact]
    public async Task WindowsFillBatchesAcrossTwoShardsWhileTheNextShardIsReady()
    {
        var first = Work(flushAfter: false, ("a", [1, 2]), ("b", [3]));
        var second = Work(flushAfter: true, ("c", [4, 5, 6]));

        var (batches, writes) = await RunAsync(first, second);

        // The first batch takes the first shard's three windows and the second shard's first.
        Assert.Equal([[1, 2, 3, 4], [5, 6]], batches.Select(b => b.Values));
        Assert.Equal([first, first, first, second], batches[0].Works);
        Assert.Equal([second, second], batches[1].Works);

        // Their records are still open (not aggregated yet): no shard's end went to the writer.
        Assert.Empty(writes);
    }

    [Fact]
    public async Task APartialBatchIsSentWhenNoFurtherShardWasDownloadedAtAShardsEnd()
    {
        var first = Work(flushAfter: true, ("a", [1, 2]), ("b", [3]));
        var second = Work(flushAfter: true, ("c", [4, 5, 6]));

        var (batches, _) = await RunAsync(first, second);

        Assert.Equal([[1, 2, 3], [4, 5, 6]], batches.Select(b => b.Values));
    }

    [Fact]
    public async Task AShardWithNothingOpenHandsItsEndToTheWriterAndADroppedShardsRecordsAreLetGo()
    {
        var empty = Work(flushAfter: false);
        var dropped = Work(flushAfter: false, ("a", [1, 2]));
        dropped.Fail("the model failed", permanent: false);
        var scored = Work(flushAfter: true, ("b", [3]));
        _queues.AddWindows(3);

        var (batches, writes) = await RunAsync(empty, dropped, scored);

        Assert.Equal([[3]], batches.Select(b => b.Values));
        Assert.Equal([empty, dropped], writes.Select(w => w.Work));
        Assert.All(writes, w => Assert.True(w.Last && w.Rows.Count == 0));
        Assert.Equal(1, _queues.Windows);
    }

    private ShardWork Work(bool flushAfter, params (string Record, float[] Windows)[] records)
    {
        var lease = _rig.Shard(4, Aggregation.Mean);
        var held = new HeldLease("batch-test", _rig.Leases, lease, NullLogger.Instance);
        _held.Add(held);
        var work = new ShardWork(held, _queues, CancellationToken.None) { Scorer = _rig.Scorer, FlushAfter = flushAfter };
        foreach (var (record, values) in records)
        {
            var windows = new float[values.Length * IEcgScorer.WindowLength];
            for (var w = 0; w < values.Length; w++)
            {
                windows.AsSpan(w * IEcgScorer.WindowLength, IEcgScorer.WindowLength).Fill(values[w]);
            }

            Assert.True(work.Records.Writer.TryWrite(new PreparedRecord(new RecordInput(record, record, "", () => throw new InvalidOperationException()), windows)));
        }

        work.Records.Writer.Complete();
        return work;
    }

    private async Task<(List<(float[] Values, ShardWork[] Works)> Batches, List<WriteItem> Writes)> RunAsync(params ShardWork[] works)
    {
        var shards = Channel.CreateUnbounded<ShardWork>();
        foreach (var work in works)
        {
            await shards.Writer.WriteAsync(work);
        }

        shards.Writer.Complete();
        var free = Channel.CreateUnbounded<Batch>();
        for (var i = 0; i < 4; i++)
        {
            await free.Writer.WriteAsync(new Batch());
        }

        var output = Channel.CreateUnbounded<Batch>();
        var writes = Channel.CreateUnbounded<WriteItem>();
        await new BatchStage(free.Reader, _queues).RunAsync(shards.Reader, output.Writer, writes.Writer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        writes.Writer.Complete();

        var batches = new List<(float[], ShardWork[])>();
        await foreach (var batch in output.Reader.ReadAllAsync())
        {
            Assert.Same(_rig.Scorer, batch.Scorer);
            batches.Add((
                Enumerable.Range(0, batch.Count).Select(i => batch.Windows[i * IEcgScorer.WindowLength]).ToArray(),
                batch.Slots.Select(s => s.Work).ToArray()));
        }

        return (batches, await writes.Reader.ReadAllAsync().ToListAsync());
    }
}
