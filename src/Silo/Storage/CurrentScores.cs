using System.Text;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Storage;

/// <summary>
/// What incremental runs leave out: the records that already have a current score for the model, that is a
/// score read from the same version (ETag) of the same source blob, and the containers whose every record was dealt
/// with by a pass over the same version (<c>container_passes</c>). Each question is one statement per batch of blobs,
/// answered from the index on <c>scores (model_id, source_blob)</c> or the primary key of <c>container_passes</c>.
/// </summary>
public sealed class CurrentScores(NpgsqlDataSource dataSource, TransientRetry? retry = null) : IScoreIndex, IContainerPassLog
{
    private readonly TransientRetry _retry = retry ?? TransientRetry.Default;

    /// <summary>
    /// Of the records' source blobs <paramref name="blobs"/> (name and the record's version, see
    /// <c>FormatRegistry.SourceVersion</c>), those whose stored scores for <paramref name="modelId"/> all come from that
    /// version, each with how many score rows it has. A blob without scores, or with one from another version, is not
    /// returned. (Containers are answered by <see cref="PassedContainersAsync"/>.)
    /// </summary>
    public Task<IReadOnlyDictionary<string, long>> CurrentBlobsAsync(
        string modelId, IReadOnlyCollection<(string Blob, string ETag)> blobs, CancellationToken cancellationToken = default) =>
        CountsByBlobAsync(
            "select e.blob, count(*) from unnest(@blobs, @etags) as e (blob, etag) " +
            "join scores s on s.model_id = @model and s.source_blob = e.blob " +
            "group by e.blob having bool_and(s.source_etag = e.etag)",
            modelId,
            blobs,
            cancellationToken);

    /// <summary>
    /// Of the container blobs <paramref name="containers"/> (name and listed ETag), those whose last complete pass for
    /// <paramref name="modelId"/> read that ETag, each with the records that pass left with a current score.
    /// </summary>
    public Task<IReadOnlyDictionary<string, long>> PassedContainersAsync(
        string modelId, IReadOnlyCollection<(string Blob, string ETag)> containers, CancellationToken cancellationToken = default) =>
        CountsByBlobAsync(
            "select p.source_blob, p.records_scored from unnest(@blobs, @etags) as e (blob, etag) " +
            "join container_passes p on p.model_id = @model and p.source_blob = e.blob and p.source_etag = e.etag",
            modelId,
            containers,
            cancellationToken);

    /// <summary>
    /// Records that a run dealt with every record of container <paramref name="blob"/> as read at
    /// <paramref name="etag"/>, replacing the model's earlier pass over it. A blob name too long to be a key
    /// (<see cref="PostgresText.MaxKeyBytes"/>) is not recorded: such a container is downloaded by every incremental
    /// run, whose worker then leaves out its current records.
    /// </summary>
    public Task RecordContainerPassAsync(
        string modelId, string blob, string etag, Guid runId, long recordsScored, long recordsQuarantined, CancellationToken cancellationToken = default)
    {
        if (Encoding.UTF8.GetByteCount(blob) > PostgresText.MaxKeyBytes || etag.Length == 0)
        {
            return Task.CompletedTask;
        }

        return _retry.RunOrUnavailableAsync(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "insert into container_passes (model_id, source_blob, source_etag, run_id, records_scored, records_quarantined) " +
                    "values (@model, @blob, @etag, @run, @scored, @quarantined) on conflict (model_id, source_blob) do update set " +
                    "source_etag = excluded.source_etag, run_id = excluded.run_id, records_scored = excluded.records_scored, " +
                    "records_quarantined = excluded.records_quarantined, finished_at = now()");
                cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId });
                cmd.Parameters.Add(new NpgsqlParameter("blob", NpgsqlDbType.Text) { Value = blob });
                cmd.Parameters.Add(new NpgsqlParameter("etag", NpgsqlDbType.Text) { Value = etag });
                cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
                cmd.Parameters.Add(new NpgsqlParameter("scored", NpgsqlDbType.Bigint) { Value = recordsScored });
                cmd.Parameters.Add(new NpgsqlParameter("quarantined", NpgsqlDbType.Bigint) { Value = recordsQuarantined });
                return await cmd.ExecuteNonQueryAsync(ct);
            },
            "recording a container pass",
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

        return _retry.RunOrUnavailableAsync<IReadOnlyDictionary<string, ScoredSource>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(
                    "select record_id, source_blob, source_etag from scores where model_id = @model and source_blob = any (@blobs)");
                cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId });
                cmd.Parameters.Add(new NpgsqlParameter("blobs", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = blobs.ToArray() });
                var rows = await cmd.ReadAllAsync(r => (Record: r.GetString(0), Source: new ScoredSource(r.GetString(1), r.GetString(2))), ct);
                return rows.ToDictionary(r => r.Record, r => r.Source, StringComparer.Ordinal);
            },
            "reading stored scores",
            cancellationToken);
    }

    /// <summary>Runs <paramref name="sql"/> (a blob name and a count per row) over <paramref name="blobs"/> as the arrays <c>@blobs</c> and <c>@etags</c>.</summary>
    private Task<IReadOnlyDictionary<string, long>> CountsByBlobAsync(
        string sql, string modelId, IReadOnlyCollection<(string Blob, string ETag)> blobs, CancellationToken cancellationToken)
    {
        if (blobs.Count == 0)
        {
            return Task.FromResult<IReadOnlyDictionary<string, long>>(new Dictionary<string, long>(StringComparer.Ordinal));
        }

        return _retry.RunAsync<IReadOnlyDictionary<string, long>>(
            async ct =>
            {
                await using var cmd = dataSource.CreateCommand(sql);
                cmd.Parameters.Add(new NpgsqlParameter("model", NpgsqlDbType.Text) { Value = modelId });
                cmd.Parameters.Add(new NpgsqlParameter("blobs", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = blobs.Select(b => b.Blob).ToArray() });
                cmd.Parameters.Add(new NpgsqlParameter("etags", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = blobs.Select(b => b.ETag).ToArray() });
                var rows = await cmd.ReadAllAsync(r => (Blob: r.GetString(0), Rows: r.GetInt64(1)), ct);
                return rows.ToDictionary(r => r.Blob, r => r.Rows, StringComparer.Ordinal);
            },
            cancellationToken);
    }
}
