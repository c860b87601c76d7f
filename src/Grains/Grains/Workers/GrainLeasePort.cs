using HubertEcg.Worker;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Grains.Workers;

/// <summary>
/// The workers' lease port on Orleans: the active runs come from the run directory grain, leases and reports go to
/// each run's coordinator grain. One run's coordinator failing (its silo going away, a defect) does not keep a worker
/// from the other runs.
/// </summary>
public sealed partial class GrainLeasePort(IGrainFactory grains, ILogger<GrainLeasePort> logger) : ILeasePort
{
    private int _turn;

    public async Task<ShardLease?> AcquireAsync(string workerId, CancellationToken cancellationToken)
    {
        var runs = await grains.GetGrain<IRunDirectoryGrain>(0).GetActiveRuns().WaitAsync(cancellationToken);

        // Runs take turns: each request starts one run further along the list, so that every active run gets shards
        // whatever the others do (a huge run, a run whose shards keep failing or waiting) instead of the oldest first.
        var start = runs.Count == 0 ? 0 : (int)((uint)Interlocked.Increment(ref _turn) % (uint)runs.Count);
        for (var i = 0; i < runs.Count; i++)
        {
            var runId = runs[(start + i) % runs.Count];
            try
            {
                if (await Coordinator(runId).AcquireLease(workerId) is { } lease)
                {
                    return lease;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogAcquireFailed(logger, SafeErrors.ForLog(e), workerId, runId);
            }
        }

        return null;
    }

    public Task<LeaseStatus> RenewAsync(string workerId, ShardLease lease, int recordsSinceLastReport) =>
        Coordinator(lease.RunId).Renew(workerId, lease.ShardNo, lease.LeaseId, recordsSinceLastReport);

    public Task CompleteAsync(ShardLease lease, ShardOutcome outcome) => Coordinator(lease.RunId).Complete(outcome);

    public Task ReleaseAsync(string workerId, ShardLease lease, string? error, bool permanent) =>
        Coordinator(lease.RunId).Release(workerId, lease.ShardNo, lease.LeaseId, error, permanent);

    public Task InterruptAsync(string workerId, ShardLease lease, string service, string error) =>
        Coordinator(lease.RunId).Interrupted(workerId, lease.ShardNo, lease.LeaseId, service, error);

    public Task FailRunAsync(string workerId, ShardLease lease, string reason) => Coordinator(lease.RunId).FailRun(workerId, reason);

    private IRunCoordinatorGrain Coordinator(Guid runId) => grains.GetGrain<IRunCoordinatorGrain>(runId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Worker}: asking run {RunId} for a shard failed; trying the other runs")]
    private static partial void LogAcquireFailed(ILogger logger, Exception e, string worker, Guid runId);
}
