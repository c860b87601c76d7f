using HubertEcg.Grains;
using Npgsql;

namespace HubertEcg.Storage;

/// <summary>A model as registered in <c>models</c>.</summary>
public sealed record ModelRecord(
    string ModelId,
    string Name,
    string SourceHash,
    string ArchitectureJson,
    int HiddenSize,
    IReadOnlyList<string> LabelCodes,
    bool Untrained,
    string PreprocessingProfile,
    string Precision = "fp32");

/// <summary>
/// What a new run is: input, model and options. The input is <see cref="InputContainer"/> with either
/// <see cref="InputPrefix"/> (every blob under it) or <see cref="InputManifest"/> (a blob of that container listing
/// record paths, one per line). An <see cref="Incremental"/> run scores only records without a current score for
/// the model (none yet, or one from a source blob whose ETag has changed since). A run a schedule started names
/// the schedule and, unless it was started by hand, the cron due time it was started for.
/// </summary>
public sealed record NewRun(
    Guid RunId,
    string Name,
    string InputContainer,
    string InputPrefix,
    string ModelId,
    string ModelPath,
    string PreprocessingProfile,
    Aggregation Aggregation,
    int MaxWindows,
    int BatchSize,
    int ShardSize,
    int MaxAttempts,
    int LeaseSeconds,
    string? InputManifest = null,
    bool Incremental = false,
    Guid? ScheduleId = null,
    DateTime? ScheduledFor = null,
    int OutageBudgetSeconds = NewRun.DefaultOutageBudgetSeconds)
{
    /// <summary>30 minutes: one continuous outage of storage or the database that a run waits out without spending attempts.</summary>
    public const int DefaultOutageBudgetSeconds = 1800;
}

/// <summary>
/// A row of <c>runs</c>, read by column name. Its definition (input, model, scoring options), the planning position its
/// coordinator resumes from, the counters the coordinator keeps, and when it started and ended.
/// </summary>
public sealed class RunRecord
{
    public required Guid RunId { get; init; }

    public required string Name { get; init; }

    public required string InputContainer { get; init; }

    public required string InputPrefix { get; init; }

    public string? InputManifest { get; init; }

    public required string ModelId { get; init; }

    public required string ModelPath { get; init; }

    /// <summary>The model's precision (fp32 or fp16), copied from <c>models</c> when the run was created.</summary>
    public string ModelPrecision { get; init; } = "fp32";

    public required string PreprocessingProfile { get; init; }

    public required Aggregation Aggregation { get; init; }

    public required int MaxWindows { get; init; }

    public required int BatchSize { get; init; }

    public required int ShardSize { get; init; }

    public required int MaxAttempts { get; init; }

    public required int LeaseSeconds { get; init; }

    public bool Incremental { get; init; }

    public Guid? ScheduleId { get; init; }

    public DateTime? ScheduledFor { get; init; }

    public required RunState State { get; init; }

    public bool CancelRequested { get; init; }

    public bool PlanningComplete { get; init; }

    /// <summary>Where listing (a continuation token) or a manifest (<c>offset:etag</c>) resumes; null at the start.</summary>
    public string? PlanningToken { get; init; }

    /// <summary>Blobs listed but not planned yet (a record that may straddle two pages, an unfinished shard).</summary>
    public IReadOnlyList<string> PlanningCarry { get; init; } = [];

    /// <summary>The carried blobs' ETags, in order (incremental runs).</summary>
    public IReadOnlyList<string> PlanningCarryETags { get; init; } = [];

    /// <summary>Records planning left out because their scores are current (incremental runs).</summary>
    public long PlanningSkipped { get; init; }

    public long ManifestDuplicates { get; init; }

    public int ShardsPlanned { get; init; }

    public int ShardsDone { get; init; }

    public int ShardsFailed { get; init; }

    public long RecordsPlanned { get; init; }

    public long RecordsDone { get; init; }

    public long RecordsQuarantined { get; init; }

    public long RecordsFailed { get; init; }

    public long RecordsSkipped { get; init; }

    public double RatePerSecond { get; init; }

    public double? EtaSeconds { get; init; }

    public string? Error { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? StartedAt { get; init; }

    public DateTime? FinishedAt { get; init; }

    public DateTime UpdatedAt { get; init; }

    /// <summary>While the run's workers cannot reach a service it needs: which (<c>storage</c>, <c>database</c>); else null.</summary>
    public string? WaitingFor { get; init; }

    /// <summary>Since when the run has been waiting for <see cref="WaitingFor"/>.</summary>
    public DateTime? WaitingSince { get; init; }

    /// <summary>How long one continuous outage may last before failures count as the shards' attempts again.</summary>
    public int OutageBudgetSeconds { get; init; } = 1800;

    /// <summary>Reads the current row of <paramref name="r"/> (any query over <c>runs</c> selecting its columns).</summary>
    internal static RunRecord Read(NpgsqlDataReader r) => new()
    {
        RunId = r.Field<Guid>("run_id"),
        Name = r.Field<string>("name"),
        InputContainer = r.Field<string>("input_container"),
        InputPrefix = r.Field<string>("input_prefix"),
        InputManifest = r.Field<string?>("input_manifest"),
        ModelId = r.Field<string>("model_id"),
        ModelPath = r.Field<string>("model_path"),
        ModelPrecision = r.Field<string>("model_precision"),
        PreprocessingProfile = r.Field<string>("preprocessing_profile"),
        Aggregation = ContractText.ParseAggregation(r.Field<string>("aggregation")),
        MaxWindows = r.Field<int>("max_windows"),
        BatchSize = r.Field<int>("batch_size"),
        ShardSize = r.Field<int>("shard_size"),
        MaxAttempts = r.Field<int>("max_attempts"),
        LeaseSeconds = r.Field<int>("lease_seconds"),
        Incremental = r.Field<bool>("incremental"),
        ScheduleId = r.Field<Guid?>("schedule_id"),
        ScheduledFor = r.Field<DateTime?>("scheduled_for"),
        State = ContractText.ParseRunState(r.Field<string>("state")),
        CancelRequested = r.Field<bool>("cancel_requested"),
        PlanningComplete = r.Field<bool>("planning_complete"),
        PlanningToken = r.Field<string?>("planning_token"),
        PlanningCarry = r.Field<string[]?>("planning_carry") ?? [],
        PlanningCarryETags = r.Field<string[]?>("planning_carry_etags") ?? [],
        PlanningSkipped = r.Field<long>("planning_skipped"),
        ManifestDuplicates = r.Field<long>("manifest_duplicates"),
        ShardsPlanned = r.Field<int>("shards_planned"),
        ShardsDone = r.Field<int>("shards_done"),
        ShardsFailed = r.Field<int>("shards_failed"),
        RecordsPlanned = r.Field<long>("records_planned"),
        RecordsDone = r.Field<long>("records_done"),
        RecordsQuarantined = r.Field<long>("records_quarantined"),
        RecordsFailed = r.Field<long>("records_failed"),
        RecordsSkipped = r.Field<long>("records_skipped"),
        RatePerSecond = r.Field<float>("rate_per_second"),
        EtaSeconds = r.Field<float?>("eta_seconds"),
        Error = r.Field<string?>("error"),
        CreatedAt = r.Field<DateTime>("created_at"),
        StartedAt = r.Field<DateTime?>("started_at"),
        FinishedAt = r.Field<DateTime?>("finished_at"),
        UpdatedAt = r.Field<DateTime>("updated_at"),
        WaitingFor = r.Field<string?>("waiting_for"),
        WaitingSince = r.Field<DateTime?>("waiting_since"),
        OutageBudgetSeconds = r.Field<int>("outage_budget_seconds"),
    };
}

/// <summary>A row of <c>run_shards</c>.</summary>
public sealed record ShardRecord(
    Guid RunId,
    int ShardNo,
    ShardKind Kind,
    IReadOnlyList<string> Blobs,
    int RecordsPlanned,
    ShardState State,
    int Attempts,
    string? LeaseOwner,
    DateTime? LeaseDeadline,
    int RecordsDone,
    int RecordsQuarantined,
    string? LastError,
    int RecordsSkipped = 0)
{
    /// <summary>Reads the current row of <paramref name="r"/>; <c>blobs</c> may be left out of the query (an empty list then).</summary>
    internal static ShardRecord Read(NpgsqlDataReader r) => new(
        r.Field<Guid>("run_id"),
        r.Field<int>("shard_no"),
        ContractText.ParseShardKind(r.Field<string>("kind")),
        r.HasColumn("blobs") ? r.Field<string[]>("blobs") : [],
        r.Field<int>("records_planned"),
        ContractText.ParseShardState(r.Field<string>("state")),
        r.Field<int>("attempts"),
        r.Field<string?>("lease_owner"),
        r.Field<DateTime?>("lease_deadline"),
        r.Field<int>("records_done"),
        r.Field<int>("records_quarantined"),
        r.Field<string?>("last_error"),
        r.Field<int>("records_skipped"));
}

/// <summary>The progress columns of a run that its coordinator maintains.</summary>
public sealed record RunProgressUpdate(
    Guid RunId,
    RunState State,
    long RecordsPlanned,
    long RecordsDone,
    long RecordsQuarantined,
    long RecordsFailed,
    int ShardsDone,
    int ShardsFailed,
    double RatePerSecond,
    double? EtaSeconds,
    string? Error,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    long RecordsSkipped = 0,
    string? WaitingFor = null,
    DateTime? WaitingSince = null);
