using HubertEcg.Grains;

namespace HubertEcg.Worker;

/// <summary>
/// The worker's one link to the cluster: where it gets shard leases and reports on them. The grains implement it
/// with the run directory and the runs' coordinator grains; the engine itself knows nothing of Orleans.
/// </summary>
public interface ILeasePort
{
    /// <summary>The next shard of any active run for <paramref name="workerId"/>, or null when there is none now.</summary>
    Task<ShardLease?> AcquireAsync(string workerId, CancellationToken cancellationToken);

    /// <summary>Extends a lease; <paramref name="recordsSinceLastReport"/> feeds the run's rate.</summary>
    Task<LeaseStatus> RenewAsync(string workerId, ShardLease lease, int recordsSinceLastReport);

    /// <summary>Reports every result of the shard written.</summary>
    Task CompleteAsync(ShardLease lease, ShardOutcome outcome);

    /// <summary>Gives a lease back: without <paramref name="error"/> the attempt does not count.</summary>
    Task ReleaseAsync(string workerId, ShardLease lease, string? error, bool permanent);

    /// <summary>Gives a lease back because <paramref name="service"/> could not be reached (an outage: the attempt does not count within the run's budget).</summary>
    Task InterruptAsync(string workerId, ShardLease lease, string service, string error);

    /// <summary>
    /// Reports that the lease's run cannot work at all (its options or its model, whichever shard is tried): the run
    /// fails once with <paramref name="reason"/> and its leases end, instead of every shard failing or being handed back.
    /// </summary>
    Task FailRunAsync(string workerId, ShardLease lease, string reason);
}

/// <summary>Where shards' blobs are downloaded from.</summary>
public interface IBlobSource
{
    /// <summary>
    /// Streams a blob into <paramref name="path"/>; returns its ETag. Throws <see cref="BlobNotFoundException"/> when it
    /// is missing and <see cref="BlobTooLargeException"/> when it is larger than <paramref name="maxBytes"/>.
    /// </summary>
    Task<string> DownloadToFileAsync(string container, string blobName, string path, long maxBytes, CancellationToken cancellationToken = default);
}

/// <summary>Where results go: idempotent writes of score rows (keyed by model and record) and quarantine rows (keyed by run and record).</summary>
public interface IResultSink
{
    /// <summary>Writes score rows; returns how many were new or replaced a changed record's row. <paramref name="writerId"/> names the worker.</summary>
    Task<int> WriteScoresAsync(IReadOnlyList<ScoreRow> rows, string? writerId, CancellationToken cancellationToken = default);

    /// <summary>Writes quarantine rows; returns how many were new.</summary>
    Task<int> WriteQuarantineAsync(IReadOnlyList<QuarantineRow> rows, string? writerId, CancellationToken cancellationToken = default);
}

/// <summary>A stored score's source: the blob its record was read from and that blob's version then.</summary>
public sealed record ScoredSource(string SourceBlob, string SourceETag);

/// <summary>What is stored already, for incremental runs.</summary>
public interface IScoreIndex
{
    /// <summary>The stored scores for <paramref name="modelId"/> whose source is one of <paramref name="blobs"/>: record id and source.</summary>
    Task<IReadOnlyDictionary<string, ScoredSource>> ScoredRecordsAsync(string modelId, IReadOnlyCollection<string> blobs, CancellationToken cancellationToken = default);
}

/// <summary>Remembers that a run dealt with every record of one version of a container, so incremental runs may leave it out whole.</summary>
public interface IContainerPassLog
{
    Task RecordContainerPassAsync(
        string modelId, string blob, string etag, Guid runId, long recordsScored, long recordsQuarantined, CancellationToken cancellationToken = default);
}

/// <summary>
/// Everything outside a worker that it uses, as ports; the silo wires the real adapters, tests may wire fakes.
/// <see cref="Stages"/>, when set, receives the CPU and wall-clock time of the worker's own stages (batching and
/// aggregation); a silo leaves it null. <see cref="Models"/> is the silo's model cache, which runs whose model is kept
/// in blob storage need.
/// </summary>
public sealed record WorkerPorts(
    ILeasePort Leases,
    IBlobSource Blobs,
    IResultSink Results,
    IScoreIndex ScoreIndex,
    IContainerPassLog ContainerPasses,
    IRecordDecoder Decoder,
    IWindowPreparer Preparer,
    IScorerProvider Scorers,
    ScoringMetrics Metrics,
    StageClock? Stages = null,
    ModelCache? Models = null);
