using HubertEcg.Storage;

namespace HubertEcg.Grains.Coordination;

/// <summary>
/// The coordinator's memory of one shard (its blob names stay in Postgres until it is leased). Changed only through
/// <see cref="ShardBook.UpdateAsync{T}"/>, which puts it back as it was when the change cannot be stored.
/// </summary>
public sealed class ShardEntry
{
    public ShardEntry(ShardRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        RunId = record.RunId;
        ShardNo = record.ShardNo;
        Kind = record.Kind;
        RecordsPlanned = record.RecordsPlanned;
        Restore((record, 0));
    }

    public Guid RunId { get; }

    public int ShardNo { get; }

    public ShardKind Kind { get; }

    public int RecordsPlanned { get; }

    public ShardState State { get; set; }

    public int Attempts { get; set; }

    public string? LeaseOwner { get; set; }

    public DateTime? LeaseDeadline { get; set; }

    public int RecordsDone { get; set; }

    public int RecordsQuarantined { get; set; }

    public int RecordsSkipped { get; set; }

    public string? LastError { get; set; }

    /// <summary>Records the current lease holder reported before completing (for the rate; never persisted).</summary>
    public int ReportedInFlight { get; set; }

    public bool IsHeldBy(string workerId, int leaseId) =>
        State == ShardState.Leased && Attempts == leaseId && string.Equals(LeaseOwner, workerId, StringComparison.Ordinal);

    /// <summary>The shard's row as the store writes it (lease and outcome columns; no blob names).</summary>
    public ShardRecord ToRecord() =>
        new(RunId, ShardNo, Kind, [], RecordsPlanned, State, Attempts, LeaseOwner, LeaseDeadline, RecordsDone, RecordsQuarantined, LastError, RecordsSkipped);

    internal (ShardRecord Row, int InFlight) Snapshot() => (ToRecord(), ReportedInFlight);

    /// <summary>Sets the lease and outcome fields from a row (at construction, and to undo a change that could not be stored).</summary>
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
