using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>A stored score's source: the blob its record was read from and that blob's ETag then.</summary>
public sealed record ScoredSource(string SourceBlob, string SourceETag);

/// <summary>
/// What incremental runs leave out: the records that already have a current score for the model, that is a
/// score read from the same version (ETag) of the same source blob. Both questions are one statement per batch of
/// blobs, answered from the index on <c>scores (model_id, source_blob)</c>.
/// </summary>
public sealed class CurrentScores(NpgsqlDataSource dataSource, TransientRetry? retry = null)
{
    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    /// <summary>
    /// Of <paramref name="blobs"/> (name and listed ETag), those whose stored scores for <paramref name="modelId"/>
    /// all come from that ETag, each with how many score rows it has (one for a single-record blob, the records of
    /// a container). A blob without scores, or with one from another ETag, is not returned.
    /// </summary>
    public Task<IReadOnlyDictionary<string, long>> CurrentBlobsAsync(
        string modelId, IReadOnlyCollection<(string Blob, string ETag)> blobs, CancellationToken cancellationToken = default)
    {
        if (blobs.Count == 0)
        {
            return Task.FromResult<IReadOnlyDictionary<string, long>>(new Dictionary<string, long>(StringComparer.Ordinal));
        }

        return _retry.RunAsync<IReadOnlyDictionary<string, long>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "select e.blob, count(*) from unnest(@blobs, @etags) as e (blob, etag) " +
                    "join scores s on s.model_id = @model and s.source_blob = e.blob " +
                    "group by e.blob having bool_and(s.source_etag = e.etag)");
                cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId });
                cmd.Parameters.Add(new NpgsqlParameter("blobs", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = blobs.Select(b => b.Blob).ToArray() });
                cmd.Parameters.Add(new NpgsqlParameter("etags", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = blobs.Select(b => b.ETag).ToArray() });
                var rows = await cmd.ReadAllAsync(r => (Blob: r.GetString(0), Rows: r.GetInt64(1)), ct);
                return rows.ToDictionary(r => r.Blob, r => r.Rows, StringComparer.Ordinal);
            },
            cancellationToken);
    }

    /// <summary>The stored scores for <paramref name="modelId"/> whose source is one of <paramref name="blobs"/>: record id and source.</summary>
    public Task<IReadOnlyDictionary<string, ScoredSource>> ScoredRecordsAsync(
        string modelId, IReadOnlyCollection<string> blobs, CancellationToken cancellationToken = default)
    {
        if (blobs.Count == 0)
        {
            return Task.FromResult<IReadOnlyDictionary<string, ScoredSource>>(new Dictionary<string, ScoredSource>(StringComparer.Ordinal));
        }

        return _retry.RunAsync<IReadOnlyDictionary<string, ScoredSource>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "select record_id, source_blob, source_etag from scores where model_id = @model and source_blob = any (@blobs)");
                cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId });
                cmd.Parameters.Add(new NpgsqlParameter("blobs", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = blobs.ToArray() });
                var rows = await cmd.ReadAllAsync(r => (Record: r.GetString(0), Source: new ScoredSource(r.GetString(1), r.GetString(2))), ct);
                return rows.ToDictionary(r => r.Record, r => r.Source, StringComparer.Ordinal);
            },
            cancellationToken);
    }
}
