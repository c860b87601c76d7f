namespace HubertEcg.Storage;

/// <summary>A record quarantined while planning (a manifest entry that names no blob of the run's container): its shard, id, source blob and reason.</summary>
public sealed record QuarantinedEntry(int ShardNo, string RecordId, string SourceBlob, string Reason);
