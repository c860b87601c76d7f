using Orleans.Concurrency;

namespace HubertEcg.Grains;

/// <summary>
/// One per run, keyed by the run id. Plans the run's shards by listing its input in small steps, leases shards to
/// workers that ask, renews and expires leases, aggregates progress and persists all of it in Postgres, so any
/// activation (after any silo restart) resumes where the last one stopped. Every call is short: scoring happens
/// in workers, outside grain turns.
/// </summary>
[Alias("HubertEcg.IRunCoordinatorGrain")]
public interface IRunCoordinatorGrain : IGrainWithGuidKey
{
    /// <summary>Activates the coordinator, which starts planning the run at once (without waiting for a worker to ask).</summary>
    [Alias("Start"), OneWay]
    Task Start();

    /// <summary>The next shard for <paramref name="workerId"/>, or null when none is available now (or the run is over).</summary>
    [Alias("AcquireLease")]
    Task<ShardLease?> AcquireLease(string workerId);

    /// <summary>Extends a lease; <paramref name="recordsSinceLastReport"/> feeds the run's rate.</summary>
    [Alias("Renew")]
    Task<LeaseStatus> Renew(string workerId, int shardNo, int leaseId, int recordsSinceLastReport);

    /// <summary>Marks a shard done once all its results are written. Repeated or late reports are harmless.</summary>
    [Alias("Complete")]
    Task Complete(ShardOutcome outcome);

    /// <summary>
    /// Gives a lease back. Without <paramref name="error"/> (a worker shutting down) the attempt does not count;
    /// with one, the shard is retried until its attempts are spent, or failed at once when <paramref name="permanent"/>.
    /// </summary>
    [Alias("Release")]
    Task Release(string workerId, int shardNo, int leaseId, string? error, bool permanent);

    /// <summary>
    /// Gives a lease back because <paramref name="service"/> (<c>storage</c>, <c>database</c>) could not be reached: a
    /// fault of the infrastructure, so the attempt does not count while the run's outage budget lasts (the run shows
    /// what it waits for meanwhile); past the budget it counts as an ordinary failure with <paramref name="error"/>.
    /// </summary>
    [Alias("Interrupted")]
    Task Interrupted(string workerId, int shardNo, int leaseId, string service, string error);

    /// <summary>
    /// A worker found that the run itself cannot work (its options or its model, whichever shard it tries): the run
    /// fails once with <paramref name="reason"/>, nothing more is leased, and its other workers stop at their next
    /// renewal. Ignored once the run has ended.
    /// </summary>
    [Alias("FailRun")]
    Task FailRun(string workerId, string reason);

    [Alias("GetProgress")]
    Task<RunProgress> GetProgress();

    /// <summary>Cancels the run: no more leases; workers stop at their next renewal.</summary>
    [Alias("Cancel")]
    Task Cancel();
}
