using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker.Pipeline;

/// <summary>
/// The stages a worker's downloaded shards flow through, running for as long as the worker runs, so that the model
/// sees one continuous stream of windows instead of one shard at a time. Each channel carries one item type:
/// <code>
/// HeldLease ─▶ PrepareStage ─ShardWork (each with its PreparedRecord channel)─▶ BatchStage ─Batch─▶ ScoreStage
///                                                  BatchStage, ScoreStage ─WriteItem─▶ WriteStage
///                                                  ScoreStage ─Batch (emptied, back to the pool)─▶ BatchStage
/// </code>
/// A shard is finished once its end was seen and every one of its records is aggregated; a shard whose lease is
/// lost, or that fails (model mismatch, a write that keeps failing, a model error), is dropped from the stream and
/// its lease released with the reason, without stopping the other shards. Records, windows and rows waiting in each
/// stage are counted in the worker's <see cref="ScoringMetrics.WorkerQueues"/>.
/// </summary>
internal sealed class ScoringPipeline(
    string workerId,
    WorkerDevice device,
    WorkerPorts ports,
    IIncrementalFilter incremental,
    ScorerCache scorers,
    WorkerOptions options,
    ScoringMetrics.WorkerQueues queues,
    OutageBackoff backoff,
    ILogger logger)
{
    /// <summary>Write items waiting for the writer: enough to keep it busy, few enough that a lost shard stops soon.</summary>
    private const int WritesAhead = 4;

    /// <summary>The logger scope of one shard's download and preparation: its run, shard number and worker.</summary>
    public static readonly Func<ILogger, Guid, int, string, IDisposable?> ShardScope =
        LoggerMessage.DefineScope<Guid, int, string>("run {RunId} shard {ShardNo} worker {Worker}");

    public static bool IsStop(Exception e, CancellationToken token) => e is OperationCanceledException && token.IsCancellationRequested;

    /// <summary>
    /// Runs the stages over the shards read from <paramref name="shards"/> until it completes or
    /// <paramref name="stoppingToken"/> is cancelled. <paramref name="finished"/> is called once for each shard that
    /// leaves the pipeline (done, failed or lost), after its lease was disposed; shards still inside when the worker
    /// stops are not passed to it (the caller hands them back). Throws <see cref="InvalidOperationException"/> when a
    /// stage fails (a defect, not a shard's error), after stopping the others.
    /// </summary>
    public async Task RunAsync(ChannelReader<HeldLease> shards, Action<HeldLease> finished, CancellationToken stoppingToken)
    {
        using var failing = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var token = failing.Token;
        var callers = options.EffectiveConcurrentBatches(device);

        // One shard at a time is prepared; the batch stage reads it while the next one waits here.
        var prepared = Channel.CreateBounded<ShardWork>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
        var batches = Channel.CreateBounded<Batch>(new BoundedChannelOptions(1) { SingleWriter = true });
        var writes = Channel.CreateBounded<WriteItem>(new BoundedChannelOptions(WritesAhead) { SingleReader = true });

        // One batch per model caller and one being filled: the windows in flight are bounded by these.
        var free = Channel.CreateUnbounded<Batch>();
        for (var i = 0; i <= callers; i++)
        {
            free.Writer.TryWrite(new Batch());
        }

        var prepare = new PrepareStage(workerId, ports.Decoder, ports.Preparer, incremental, scorers, options, queues, logger);
        var batch = new BatchStage(free.Reader, queues, ports.Stages);
        var score = new ScoreStage(workerId, callers, options.WriteBatchRows, free.Writer, ports.Metrics, queues, ports.Stages);
        var write = new WriteStage(workerId, ports.Results, ports.ContainerPasses, ports.Metrics, queues, backoff, logger, options.Writers);

        var batching = Task.Run(() => batch.RunAsync(prepared.Reader, batches.Writer, writes.Writer, token), CancellationToken.None);
        var scoring = Task.Run(() => score.RunAsync(batches.Reader, writes.Writer, token), CancellationToken.None);
        var stages = new List<Task>
        {
            Task.Run(() => prepare.RunAsync(shards, prepared.Writer, token), CancellationToken.None),
            batching,
            scoring,
            CompleteAfterAsync(writes.Writer, batching, scoring),
            Task.Run(() => write.RunAsync(writes.Reader, finished, token), CancellationToken.None),
        };

        // A stage that fails stops the others; the first failure is reported.
        Exception? failure = null;
        while (stages.Count > 0)
        {
            var done = await Task.WhenAny(stages);
            stages.Remove(done);
            if (done.IsFaulted && failure is null)
            {
                failure = done.Exception!.InnerException;
                await failing.CancelAsync();
            }
        }

        if (failure is not null)
        {
            throw new InvalidOperationException($"worker {workerId}: scoring pipeline failed: {failure.Message}", failure);
        }
    }

    // The writer's items come from the batch stage (shard ends) and the score stage (rows and shard ends).
    private static async Task CompleteAfterAsync(ChannelWriter<WriteItem> writes, Task batching, Task scoring)
    {
        await Task.WhenAll(batching, scoring).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        writes.TryComplete();
    }
}
