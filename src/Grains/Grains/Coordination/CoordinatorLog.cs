using Microsoft.Extensions.Logging;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// The log lines of a run's coordinator and its planner (both write to the coordinator's logger). Every line names
/// the run, and the shard where there is one; none carries record content.
/// </summary>
internal static partial class CoordinatorLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: no such run")]
    public static partial void LogUnknownRun(ILogger logger, Guid runId);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {RunId}: coordinator active in state {State} with {Shards} shards ({Pending} pending, {Leased} leased)")]
    public static partial void LogResumed(ILogger logger, Guid runId, string state, int shards, int pending, int leased);

    [LoggerMessage(Level = LogLevel.Debug, Message = "run {RunId}: shard {ShardNo} attempt {Attempt} leased to {Worker}")]
    public static partial void LogLeased(ILogger logger, Guid runId, int shardNo, int attempt, string worker);

    [LoggerMessage(Level = LogLevel.Debug, Message = "run {RunId}: shard {ShardNo} done ({Done} scored, {Quarantined} quarantined) by {Worker}; was failed: {WasFailed}")]
    public static partial void LogCompleted(ILogger logger, Guid runId, int shardNo, int done, int quarantined, string worker, bool wasFailed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: shard {ShardNo} released by {Worker}: {Reason}; now {State}")]
    public static partial void LogReleased(ILogger logger, Guid runId, int shardNo, string worker, string reason, string state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: shard {ShardNo} taken back from {Worker}, whose silo the cluster declared dead; pending again, attempt not counted")]
    public static partial void LogReclaimed(ILogger logger, Guid runId, int shardNo, string worker);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: shard {ShardNo} handed back by {Worker}: {Service} unreachable; pending again, attempt not counted")]
    public static partial void LogInterrupted(ILogger logger, Guid runId, int shardNo, string worker, string service);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: lease of shard {ShardNo} (attempt {Attempt}) expired; now {State}")]
    public static partial void LogExpired(ILogger logger, Guid runId, int shardNo, int attempt, string state);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {RunId}: planned {New} shards ({Total} in all); listing complete: {Complete}; left out {Skipped} records with current scores")]
    public static partial void LogPlanned(ILogger logger, Guid runId, int @new, int total, bool complete, long skipped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: left out {Count} duplicate manifest entries, naming records already planned (such as {Examples})")]
    public static partial void LogManifestDuplicates(ILogger logger, Guid runId, int count, string examples);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: quarantined {Count} manifest entries that name no blob of the run's container (such as: {Example})")]
    public static partial void LogManifestEntriesQuarantined(ILogger logger, Guid runId, int count, string example);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: listing failed (attempt {Attempt}); retrying on the next tick")]
    public static partial void LogPlanningRetry(ILogger logger, Exception e, Guid runId, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {RunId}: coordinator tick failed; retrying on the next tick")]
    public static partial void LogTickFailed(ILogger logger, Exception e, Guid runId);

    [LoggerMessage(Level = LogLevel.Error, Message = "run {RunId}: worker {Worker} reports that the run cannot work: {Reason}")]
    public static partial void LogRunFault(ILogger logger, Guid runId, string worker, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {RunId}: finished {State} {Error}")]
    public static partial void LogFinished(ILogger logger, Guid runId, string state, string error);
}
