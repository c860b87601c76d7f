namespace HubertEcg.Worker;

/// <summary>
/// For incremental runs: leaves out the records of a shard whose stored score for the run's model is current, so
/// that only new or changed records are scored.
/// </summary>
public interface IIncrementalFilter
{
    /// <summary>The records of <paramref name="records"/> (in their order) without a current score for <paramref name="modelId"/>.</summary>
    Task<List<RecordInput>> LeaveOutCurrentAsync(IReadOnlyList<RecordInput> records, string modelId, CancellationToken cancellationToken);
}

/// <summary>
/// A score is current when it came from the record's source blob at its present version (ETag); a record without an
/// ETag is always scored. One query to the score index per shard.
/// </summary>
public sealed class ScoreIndexIncrementalFilter(IScoreIndex index) : IIncrementalFilter
{
    public async Task<List<RecordInput>> LeaveOutCurrentAsync(IReadOnlyList<RecordInput> records, string modelId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        var sources = records.Select(r => r.SourceBlob).Distinct(StringComparer.Ordinal).ToList();
        var scored = await index.ScoredRecordsAsync(modelId, sources, cancellationToken);
        return records
            .Where(r => !(r.SourceETag.Length > 0
                && scored.TryGetValue(r.RecordId, out var stored)
                && stored.SourceBlob == r.SourceBlob
                && stored.SourceETag == r.SourceETag))
            .ToList();
    }
}
