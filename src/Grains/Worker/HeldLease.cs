using HubertEcg.Grains;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Worker;

/// <summary>
/// A shard lease a worker holds: renews it in the background (three times per lease duration, reporting the
/// records written since the last renewal), signals <see cref="Stopped"/> when the coordinator says the lease is
/// lost or the run cancelled, and owns the shard's local download folder.
/// </summary>
internal sealed partial class HeldLease : IAsyncDisposable
{
    private readonly string _workerId;
    private readonly ILeasePort _leases;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopped = new();
    private readonly CancellationTokenSource _heartbeatStop = new();
    private readonly Task _heartbeat;
    private int _unreported;
    private bool _finished;

    public HeldLease(string workerId, ILeasePort leases, ShardLease lease, ILogger logger)
    {
        _workerId = workerId;
        _leases = leases;
        Lease = lease;
        _logger = logger;
        _heartbeat = Task.Run(HeartbeatAsync);
    }

    public ShardLease Lease { get; }

    /// <summary>Cancelled when the lease is lost or the run cancelled.</summary>
    public CancellationToken Stopped => _stopped.Token;

    public string? LocalDirectory { get; set; }

    public DownloadedShard? Shard { get; set; }

    /// <summary>Counts records written; the next renewal reports them to the coordinator (for the run's rate).</summary>
    public void Report(int records) => Interlocked.Add(ref _unreported, records);

    /// <summary>
    /// Reports the shard done, retrying while the coordinator is unreachable (it may be moving to another silo). If it
    /// stays unreachable the exception escapes; the lease then expires and the shard is redone, which is harmless
    /// because every write is idempotent.
    /// </summary>
    public async Task CompleteAsync(int done, int quarantined, int skipped)
    {
        await StopHeartbeatAsync();
        _finished = true;
        var outcome = new ShardOutcome(_workerId, Lease.ShardNo, Lease.LeaseId, done, quarantined, skipped);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _leases.CompleteAsync(Lease, outcome);
                return;
            }
            catch (Exception e) when (attempt < 5 && e is not ArgumentException)
            {
                LogReportRetry(_logger, SafeErrors.ForLog(e), _workerId, Lease.RunId, Lease.ShardNo, attempt);
                await Task.Delay(TimeSpan.FromSeconds(attempt));
            }
        }
    }

    /// <summary>Gives the lease back with an error; when the coordinator cannot be reached the lease expires instead.</summary>
    public async Task TryReleaseAsync(string error, bool permanent)
    {
        await StopHeartbeatAsync();
        _finished = true;
        try
        {
            await _leases.ReleaseAsync(_workerId, Lease, error, permanent);
        }
        catch (Exception e)
        {
            LogHandBackFailed(_logger, SafeErrors.ForLog(e), _workerId, Lease.RunId, Lease.ShardNo);
        }
    }

    /// <summary>Gives the lease back because <paramref name="service"/> is unreachable; when the coordinator cannot be reached the lease expires instead.</summary>
    public async Task InterruptAsync(string service, string error)
    {
        await StopHeartbeatAsync();
        _finished = true;
        try
        {
            await _leases.InterruptAsync(_workerId, Lease, service, error);
        }
        catch (Exception e)
        {
            LogHandBackFailed(_logger, SafeErrors.ForLog(e), _workerId, Lease.RunId, Lease.ShardNo);
        }
    }

    /// <summary>
    /// Fails the lease's run with <paramref name="reason"/> (a run-level fault: options or model that cannot work); when
    /// the coordinator cannot be reached the lease expires instead, and the next worker to take the shard reports it again.
    /// </summary>
    public async Task TryFailRunAsync(string reason)
    {
        await StopHeartbeatAsync();
        _finished = true;
        try
        {
            await _leases.FailRunAsync(_workerId, Lease, reason);
        }
        catch (Exception e)
        {
            LogHandBackFailed(_logger, SafeErrors.ForLog(e), _workerId, Lease.RunId, Lease.ShardNo);
        }
    }

    /// <summary>Gives the lease back without counting the attempt (the worker is shutting down).</summary>
    public async Task HandBackAsync()
    {
        if (_finished)
        {
            return;
        }

        await StopHeartbeatAsync();
        _finished = true;
        try
        {
            await _leases.ReleaseAsync(_workerId, Lease, null, false);
        }
        catch (Exception e)
        {
            // The lease will expire instead.
            LogHandBackFailed(_logger, SafeErrors.ForLog(e), _workerId, Lease.RunId, Lease.ShardNo);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopHeartbeatAsync();
        _stopped.Dispose();
        _heartbeatStop.Dispose();
        if (Shard is not null)
        {
            lock (Shard.Resources)
            {
                foreach (var resource in Shard.Resources)
                {
                    resource.Dispose();
                }

                Shard.Resources.Clear();
            }
        }

        if (LocalDirectory is not null && Directory.Exists(LocalDirectory))
        {
            try
            {
                Directory.Delete(LocalDirectory, recursive: true);
            }
            catch (IOException e)
            {
                LogCleanupFailed(_logger, SafeErrors.ForLog(e), _workerId, Lease.RunId, Lease.ShardNo, LocalDirectory);
            }
        }
    }

    private async Task StopHeartbeatAsync()
    {
        if (!_heartbeatStop.IsCancellationRequested)
        {
            await _heartbeatStop.CancelAsync();
        }

        await _heartbeat;
    }

    private async Task HeartbeatAsync()
    {
        var period = Lease.Duration / 3;
        if (period < TimeSpan.FromMilliseconds(100))
        {
            period = TimeSpan.FromMilliseconds(100);
        }

        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(_heartbeatStop.Token))
            {
                var records = Interlocked.Exchange(ref _unreported, 0);
                LeaseStatus status;
                try
                {
                    status = await _leases.RenewAsync(_workerId, Lease, records);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The coordinator may be moving to another silo; try again on the next tick.
                    Interlocked.Add(ref _unreported, records);
                    LogRenewFailed(_logger, SafeErrors.ForLog(e), _workerId, Lease.RunId, Lease.ShardNo);
                    continue;
                }

                if (status != LeaseStatus.Renewed)
                {
                    await _stopped.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (_heartbeatStop.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: renewing run {RunId} shard {ShardNo} failed")]
    private static partial void LogRenewFailed(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: releasing run {RunId} shard {ShardNo} failed; the lease will expire")]
    private static partial void LogHandBackFailed(ILogger logger, Exception e, string worker, Guid runId, int shardNo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: reporting run {RunId} shard {ShardNo} done failed (attempt {Attempt}); retrying")]
    private static partial void LogReportRetry(ILogger logger, Exception e, string worker, Guid runId, int shardNo, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: could not delete the download folder {Directory} of run {RunId} shard {ShardNo}")]
    private static partial void LogCleanupFailed(ILogger logger, Exception e, string worker, Guid runId, int shardNo, string directory);
}
