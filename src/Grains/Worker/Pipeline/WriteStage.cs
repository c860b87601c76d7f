using System.Diagnostics;
using System.Threading.Channels;
using HubertEcg.Grains;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker.Pipeline;

/// <summary>Score rows of one shard for the writer; <see cref="Last"/> marks the shard's end (its rows come before it).</summary>
internal sealed record WriteItem(ShardWork Work, List<ScoreRow> Rows, bool Last);

/// <summary>
/// Stage 4: writes score rows as they come, up to <paramref name="writers"/> writes at once
/// (<see cref="WorkerOptions.Writers"/>), then at each shard's end, once every write of its rows is over, its
/// quarantine rows, its container pass (a container shard dealt with whole, through <see cref="IContainerPassLog"/>)
/// and its report to the coordinator. A shard whose write fails is failed and its lease released with the reason; its
/// rows not yet being written are not tried. A shard whose lease was lost is let go without a word to the coordinator.
/// Either way the shard leaves the pipeline (<c>finished</c>) and the others go on.
/// </summary>
internal sealed partial class WriteStage(
    string workerId,
    IResultSink results,
    IContainerPassLog containerPasses,
    ScoringMetrics metrics,
    ScoringMetrics.WorkerQueues queues,
    OutageBackoff backoff,
    ILogger logger,
    int writers = 1)
{
    public async Task RunAsync(ChannelReader<WriteItem> writes, Action<HeldLease> finished, CancellationToken token)
    {
        using var slots = new SemaphoreSlim(Math.Max(1, writers));

        // Each shard's row writes in flight; only this loop touches the dictionary.
        var inFlight = new Dictionary<ShardWork, List<Task>>();
        try
        {
            await foreach (var item in writes.ReadAllAsync(token))
            {
                var work = item.Work;
                if (item.Rows.Count > 0)
                {
                    await slots.WaitAsync(token);

                    // Checked after the wait: an earlier write of the shard may have failed it meanwhile.
                    if (work.Dropped)
                    {
                        slots.Release();
                        queues.AddRows(-item.Rows.Count);
                    }
                    else
                    {
                        if (!inFlight.TryGetValue(work, out var tasks))
                        {
                            inFlight[work] = tasks = [];
                        }

                        tasks.Add(WriteAndFreeAsync(work, item.Rows, slots, token));
                    }
                }

                if (item.Last)
                {
                    if (inFlight.Remove(work, out var pending))
                    {
                        await Task.WhenAll(pending);
                    }

                    await FinishAsync(work, token);
                    finished(work.Held);
                }
            }
        }
        catch (Exception e) when (ScoringPipeline.IsStop(e, token))
        {
            // The worker is stopping.
        }
        finally
        {
            // Writes of shards still open end on the stop too (their tokens are linked to it); none may outlive the stage.
            await Task.WhenAll(inFlight.Values.SelectMany(t => t)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task WriteAndFreeAsync(ShardWork work, List<ScoreRow> rows, SemaphoreSlim slots, CancellationToken token)
    {
        try
        {
            await WriteRowsAsync(work, rows, token);
        }
        finally
        {
            queues.AddRows(-rows.Count);
            slots.Release();
        }
    }

    private async Task WriteRowsAsync(ShardWork work, List<ScoreRow> rows, CancellationToken token)
    {
        try
        {
            var started = Stopwatch.GetTimestamp();
            await results.WriteScoresAsync(rows, workerId, work.Token);
            metrics.RecordWrite(workerId, "scores", Stopwatch.GetElapsedTime(started));
            metrics.AddRecordsScored(workerId, work.Lease.Settings.ModelId, rows.Count);
            work.AddScored(rows.Count);
            work.Held.Report(rows.Count);
        }
        catch (OperationCanceledException) when (work.Token.IsCancellationRequested && !token.IsCancellationRequested)
        {
            // The lease was lost mid-write: the shard is dropped.
        }
        catch (Exception e) when (!ScoringPipeline.IsStop(e, token))
        {
            work.Fail(e);
        }
    }

    private async Task FinishAsync(ShardWork work, CancellationToken token)
    {
        var lease = work.Lease;
        var quarantine = work.TakeQuarantine();
        if (!work.Dropped && quarantine.Count > 0)
        {
            try
            {
                var started = Stopwatch.GetTimestamp();
                await results.WriteQuarantineAsync(quarantine, workerId, work.Token);
                metrics.RecordWrite(workerId, "quarantine", Stopwatch.GetElapsedTime(started));
                metrics.AddRecordsQuarantined(workerId, quarantine.Count);
                work.Held.Report(quarantine.Count);
            }
            catch (OperationCanceledException) when (work.Token.IsCancellationRequested && !token.IsCancellationRequested)
            {
                // Lost mid-write.
            }
            catch (Exception e) when (!ScoringPipeline.IsStop(e, token))
            {
                work.Fail(e);
            }
        }

        queues.AddRows(-quarantine.Count);
        try
        {
            if (work is { Error: { } runFault, RunFault: true })
            {
                LogRunFailedWith(logger, workerId, lease.RunId, lease.ShardNo, runFault);
                await work.Held.TryFailRunAsync(runFault);
            }
            else if (work.Error is { } error && work.Outage is { } service)
            {
                var wait = backoff.Failed();
                LogOutage(logger, workerId, lease.RunId, lease.ShardNo, service, wait.TotalSeconds, error);
                await work.Held.InterruptAsync(service, error);
            }
            else if (work.Error is { } failure)
            {
                LogShardFailedWith(logger, workerId, lease.RunId, lease.ShardNo, failure);
                await work.Held.TryReleaseAsync(failure, work.Permanent);
            }
            else if (work.Held.Stopped.IsCancellationRequested)
            {
                LogLeaseLost(logger, workerId, lease.RunId, lease.ShardNo);
            }
            else
            {
                await RecordContainerPassAsync(work, quarantine.Count, token);
                await work.Held.CompleteAsync(work.Scored, quarantine.Count, work.Skipped);
                backoff.Succeeded();
                LogShardDone(logger, workerId, lease.RunId, lease.ShardNo, work.Scored, quarantine.Count, work.Skipped);
            }
        }
        catch (Exception e) when (!ScoringPipeline.IsStop(e, token))
        {
            // The coordinator could not be told (its silo died); the lease expires and the shard is redone.
            LogReportFailed(logger, SafeErrors.ForLog(e), workerId, lease.RunId, lease.ShardNo);
        }

        work.Dispose();
        await work.Held.DisposeAsync();
    }

    /// <summary>
    /// Every record of a container shard is dealt with: an incremental run may now leave this version of the container
    /// out whole. Without the row (Postgres failing past the retries) the container is only read again.
    /// </summary>
    private async Task RecordContainerPassAsync(ShardWork work, int quarantined, CancellationToken token)
    {
        var lease = work.Lease;
        if (lease.Kind != ShardKind.Container || work.Held.Shard is not { Blobs: [var container] })
        {
            return;
        }

        try
        {
            await containerPasses.RecordContainerPassAsync(
                lease.Settings.ModelId, container.BlobName, container.ETag, lease.RunId, work.Scored + work.Skipped, quarantined, work.Token);
        }
        catch (Exception e) when (!ScoringPipeline.IsStop(e, token))
        {
            LogPassNotRecorded(logger, SafeErrors.ForLog(e), workerId, lease.RunId, lease.ShardNo);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Worker}: run {RunId} shard {ShardNo} done: {Done} scored, {Quarantined} quarantined, {Skipped} left out as current")]
    private static partial void LogShardDone(ILogger logger, string worker, Guid runId, int shardNo, int done, int quarantined, int skipped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo}: {Service} unreachable; handed back without spending an attempt, next shard in {WaitSeconds:0.0} s: {Error}")]
    private static partial void LogOutage(ILogger logger, string worker, Guid runId, int shardNo, string service, double waitSeconds, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo} failed: {Error}")]
    private static partial void LogShardFailedWith(ILogger logger, string worker, Guid runId, int shardNo, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Worker}: run {RunId} cannot work (found on shard {ShardNo}); failing the run: {Error}")]
    private static partial void LogRunFailedWith(ILogger logger, string worker, Guid runId, int shardNo, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo} finished, but the coordinator could not be told")]
    private static partial void LogReportFailed(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: run {RunId} shard {ShardNo}: the container's pass could not be recorded; incremental runs will read it again")]
    private static partial void LogPassNotRecorded(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: lease of run {RunId} shard {ShardNo} lost; stopped working on it")]
    private static partial void LogLeaseLost(ILogger logger, string worker, Guid runId, int shardNo);
}
