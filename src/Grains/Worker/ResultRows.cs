namespace HubertEcg.Worker;

/// <summary>One scored record: the row of <c>scores</c>, keyed by (model, record).</summary>
public sealed record ScoreRow(
    string ModelId,
    string RecordId,
    Guid RunId,
    float[] Probabilities,
    float[] Embedding,
    int WindowsUsed,
    string SourceBlob,
    string SourceETag,
    DateTime ScoredAt);

/// <summary>A record that could not be read or preprocessed: the row of <c>quarantine</c>, keyed by (run, record).</summary>
public sealed record QuarantineRow(Guid RunId, string RecordId, int ShardNo, string SourceBlob, string Reason, DateTime QuarantinedAt);
