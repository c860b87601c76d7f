namespace HubertEcg.Grains;

/// <summary>
/// How a run scores: the model, preprocessing and window policy every shard of the run uses. <see cref="ModelPath"/> is
/// where a silo gets the model: <c>blob:&lt;container&gt;/&lt;model id&gt;/&lt;sha256&gt;.onnx</c> for a model kept in
/// blob storage (fetched and checked by the silo's model cache), or a file path every silo reads (older runs).
/// </summary>
[GenerateSerializer, Immutable, Alias("HubertEcg.RunScoringSettings")]
public sealed record class RunScoringSettings(
    string ModelId,
    string ModelPath,
    string PreprocessingProfile,
    Aggregation Aggregation,
    int MaxWindows,
    int BatchSize);

/// <summary>
/// A shard handed to one worker until <see cref="Deadline"/>; the worker renews it while working.
/// <see cref="LeaseId"/> is the shard's attempt number: a later lease of the same shard has a larger one.
/// <see cref="FromManifest"/> is true when the run's input is a manifest: a listed blob may then be missing (a
/// quarantine row, not a failed shard), and a WFDB header's signal files are found from the header.
/// <see cref="Incremental"/> is true when the run scores only records without a current score: the worker leaves
/// out the shard's records whose stored score came from the same source blob and ETag.
/// </summary>
[GenerateSerializer, Immutable, Alias("HubertEcg.ShardLease")]
public sealed record class ShardLease(
    Guid RunId,
    int ShardNo,
    int LeaseId,
    ShardKind Kind,
    string Container,
    IReadOnlyList<string> Blobs,
    DateTime Deadline,
    TimeSpan Duration,
    RunScoringSettings Settings,
    bool FromManifest,
    bool Incremental = false);

/// <summary>
/// What a worker reports when it has written every result of a shard; <see cref="RecordsSkipped"/> are records of an
/// incremental run it left out because their stored score is current.
/// </summary>
[GenerateSerializer, Immutable, Alias("HubertEcg.ShardOutcome")]
public sealed record class ShardOutcome(string WorkerId, int ShardNo, int LeaseId, int RecordsDone, int RecordsQuarantined, int RecordsSkipped = 0);

/// <summary>The answer to a lease renewal.</summary>
[GenerateSerializer, Alias("HubertEcg.LeaseStatus")]
public enum LeaseStatus
{
    /// <summary>The lease is extended; keep working.</summary>
    Renewed = 0,

    /// <summary>The lease expired and went to another worker, or the shard is finished: stop working on it.</summary>
    Lost = 1,

    /// <summary>The run was cancelled: stop working on it.</summary>
    Cancelled = 2,
}

/// <summary>A run's progress as its coordinator sees it.</summary>
[GenerateSerializer, Immutable, Alias("HubertEcg.RunProgress")]
public sealed record class RunProgress(
    Guid RunId,
    RunState State,
    bool PlanningComplete,
    int ShardsPlanned,
    int ShardsDone,
    int ShardsFailed,
    int ShardsLeased,
    long RecordsPlanned,
    long RecordsDone,
    long RecordsQuarantined,
    long RecordsFailed,
    double RatePerSecond,
    double? EtaSeconds,
    long RecordsSkipped = 0,
    string? WaitingFor = null);
