using HubertEcg.Storage;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// The coordinator's memory of one shard (its blob names stay in Postgres until it is leased). Changed only through
/// <see cref="ShardBook.UpdateAsync{T}"/>, which puts it back as it was when the change cannot be stored.
/// </summary>
public sealed class ShardEntry(ShardRecord record)
{
    public Guid RunId { get; } = record.RunId;

    public int ShardNo { get; } = record.ShardNo;

    public ShardKind Kind { get; } = record.Kind;

    public int RecordsPlanned { get; } = record.RecordsPlanned;

    public ShardState State { get; set; } = record.State;

    public int Attempts { get; set; } = record.Attempts;

    public string? LeaseOwner { get; set; } = record.LeaseOwner;

    public DateTime? LeaseDeadline { get; set; } = record.LeaseDeadline;

    public int RecordsDone { get; set; } = record.RecordsDone;

    public int RecordsQuarantined { get; set; } = record.RecordsQuarantined;

    public int RecordsSkipped { get; set; } = record.RecordsSkipped;

    public string? LastError { get; set; } = record.LastError;

    /// <summary>Records the current lease holder reported before completing (for the rate; never persisted).</summary>
    public int ReportedInFlight { get; set; }

    public bool IsHeldBy(string workerId, int leaseId) =>
        State == ShardState.Leased && Attempts == leaseId && string.Equals(LeaseOwner, workerId, StringComparison.Ordinal);

    /// <summary>The shard's row as the store writes it (lease and outcome columns; no blob names).</summary>
    public ShardRecord ToRecord() =>
        new(RunId, ShardNo, Kind, [], RecordsPlanned, State, Attempts, LeaseOwner, LeaseDeadline, RecordsDone, RecordsQuarantined, LastError, RecordsSkipped);

    internal (ShardRecord Row, int InFlight) Snapshot() => (ToRecord(), ReportedInFlight);

    internal void Restore((ShardRecord Row, int InFlight) snapshot)
    {
        var row = snapshot.Row;
        State = row.State;
        Attempts = row.Attempts;
        LeaseOwner = row.LeaseOwner;
        LeaseDeadline = row.LeaseDeadline;
        RecordsDone = row.RecordsDone;
        RecordsQuarantined = row.RecordsQuarantined;
        RecordsSkipped = row.RecordsSkipped;
        LastError = row.LastError;
        ReportedInFlight = snapshot.InFlight;
    }
}
