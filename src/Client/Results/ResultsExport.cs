using System.Globalization;
using System.Text;
using Npgsql;
using NpgsqlTypes;
using Parquet;
using Parquet.Schema;
using HubertEcg.Storage;

namespace HubertEcg.Client.Results;

/// <summary>What an export wrote.</summary>
public sealed record ExportSummary(string Path, string Format, long Rows, int LabelColumns, int EmbeddingColumns);

/// <summary>
/// Exports a run's score rows to CSV or Parquet: one row per record the run scored, fixed columns (record, model, the
/// run that wrote the row, windows, source blob and ETag, scored time), then one column per label named by its code in the model's label order,
/// then optionally the embedding (<c>embedding_0</c> ...). Rows stream from Postgres in record order; Parquet is
/// written in row groups so memory stays bounded.
/// </summary>
public static class ResultsExport
{
    private const int RowGroupSize = 8192;

    private static readonly string[] FixedColumns = ["record_id", "model_id", "run_id", "windows_used", "source_blob", "source_etag", "scored_at"];

    public static async Task<ExportSummary> ExportAsync(
        NpgsqlDataSource dataSource, Guid runId, string path, bool withEmbedding = false, CancellationToken cancellationToken = default)
    {
        var format = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => "csv",
            ".parquet" => "parquet",
            var other => throw new ArgumentException($"{path}: the export format is chosen by the extension, .csv or .parquet, not '{other}'", nameof(path)),
        };
        var labels = await RunLabelsAsync(dataSource, runId, cancellationToken);
        var embeddingSize = withEmbedding ? await EmbeddingSizeAsync(dataSource, runId, cancellationToken) : 0;
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(
            RunRowsQuery(withEmbedding),
            connection);
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        var rows = format == "csv"
            ? await WriteCsvAsync(reader, path, labels, embeddingSize, cancellationToken)
            : await WriteParquetAsync(reader, path, labels, embeddingSize, cancellationToken);
        return new ExportSummary(path, format, rows, labels.Count, embeddingSize);
    }

    /// <summary>
    /// The score rows of a run in record order: those it wrote, and those another run wrote from the same source version
    /// that it found current (<c>run_reused_scores</c>); <c>run_id</c> names the run that wrote each row.
    /// </summary>
    private static string RunRowsQuery(bool withEmbedding)
    {
        var columns = "s.record_id, s.model_id, s.run_id, s.windows_used, s.source_blob, s.source_etag, s.scored_at, s.probabilities" +
            (withEmbedding ? ", s.embedding, s.embedding_packed" : "");
        return $"select {columns} from scores s where s.run_id = @run " +
            $"union all select {columns} from run_reused_scores u join scores s on s.model_id = u.model_id and s.record_id = u.record_id " +
            "where u.run_id = @run and s.run_id <> @run order by 1";
    }

    private static async Task<IReadOnlyList<string>> RunLabelsAsync(NpgsqlDataSource dataSource, Guid runId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("select m.label_codes from runs r join models m on m.model_id = r.model_id where r.run_id = @run");
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        return await cmd.ExecuteScalarAsync(cancellationToken) as string[] ?? throw new KeyNotFoundException($"run {runId} does not exist");
    }

    private static async Task<int> EmbeddingSizeAsync(NpgsqlDataSource dataSource, Guid runId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("select m.hidden_size from runs r join models m on m.model_id = r.model_id where r.run_id = @run");
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        return (int)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<long> WriteCsvAsync(
        NpgsqlDataReader reader, string path, IReadOnlyList<string> labels, int embeddingSize, CancellationToken cancellationToken)
    {
        await using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        var header = FixedColumns.Concat(labels).Concat(Enumerable.Range(0, embeddingSize).Select(i => $"embedding_{i}"));
        await writer.WriteLineAsync(string.Join(',', header.Select(Quote)));
        long rows = 0;
        var line = new StringBuilder();
        while (await reader.ReadAsync(cancellationToken))
        {
            line.Clear();
            line.Append(Quote(reader.GetString(0))).Append(',')
                .Append(Quote(reader.GetString(1))).Append(',')
                .Append(reader.GetGuid(2).ToString()).Append(',')
                .Append(reader.GetInt32(3).ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(Quote(reader.GetString(4))).Append(',')
                .Append(Quote(reader.GetString(5))).Append(',')
                .Append(reader.GetFieldValue<DateTime>(6).ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture));
            AppendFloats(line, reader.GetFieldValue<float[]>(7), labels.Count, reader.GetString(0));
            if (embeddingSize > 0)
            {
                AppendFloats(line, ReadEmbedding(reader, 8, reader.GetString(0)), embeddingSize, reader.GetString(0));
            }

            await writer.WriteLineAsync(line, cancellationToken);
            rows++;
        }

        return rows;
    }

    // A row's embedding: packed (0027) or, for rows written before, the real[] at the ordinal before it.
    private static float[] ReadEmbedding(NpgsqlDataReader reader, int arrayOrdinal, string recordId) =>
        reader.IsDBNull(arrayOrdinal + 1)
            ? reader.GetFieldValue<float[]>(arrayOrdinal)
            : PackedEmbeddings.Unpack(reader.GetFieldValue<byte[]>(arrayOrdinal + 1), recordId);

    private static void AppendFloats(StringBuilder line, float[] values, int expected, string recordId)
    {
        if (values.Length != expected)
        {
            throw new InvalidDataException($"record {recordId} has {values.Length} values where the model has {expected}");
        }

        foreach (var v in values)
        {
            line.Append(',').Append(v.ToString("R", CultureInfo.InvariantCulture));
        }
    }

    private static string Quote(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private static async Task<long> WriteParquetAsync(
        NpgsqlDataReader reader, string path, IReadOnlyList<string> labels, int embeddingSize, CancellationToken cancellationToken)
    {
        var recordField = new DataField<string>("record_id");
        var modelField = new DataField<string>("model_id");
        var runField = new DataField<string>("run_id");
        var windowsField = new DataField<int>("windows_used");
        var blobField = new DataField<string>("source_blob");
        var etagField = new DataField<string>("source_etag");
        var scoredField = new DataField<DateTime>("scored_at");
        var labelFields = labels.Select(code => new DataField<float>(code)).ToArray();
        var embeddingFields = Enumerable.Range(0, embeddingSize).Select(i => new DataField<float>($"embedding_{i}")).ToArray();
        var schema = new ParquetSchema(
            new Field[] { recordField, modelField, runField, windowsField, blobField, etagField, scoredField }.Concat(labelFields).Concat(embeddingFields));

        await using var file = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, file, cancellationToken: cancellationToken);
        var records = new List<string>(RowGroupSize);
        var models = new List<string>(RowGroupSize);
        var runs = new List<string>(RowGroupSize);
        var windows = new List<int>(RowGroupSize);
        var blobs = new List<string>(RowGroupSize);
        var etags = new List<string>(RowGroupSize);
        var scored = new List<DateTime>(RowGroupSize);
        var probabilities = labels.Select(_ => new float[RowGroupSize]).ToArray();
        var embeddings = embeddingFields.Select(_ => new float[RowGroupSize]).ToArray();
        long rows = 0;

        async Task FlushAsync()
        {
            if (records.Count == 0)
            {
                return;
            }

            var n = records.Count;
            using (var group = writer.CreateRowGroup())
            {
                await group.WriteAsync(recordField, records);
                await group.WriteAsync(modelField, models);
                await group.WriteAsync(runField, runs);
                await group.WriteAsync<int>(windowsField, windows.ToArray(), cancellationToken: cancellationToken);
                await group.WriteAsync(blobField, blobs);
                await group.WriteAsync(etagField, etags);
                await group.WriteAsync<DateTime>(scoredField, scored.ToArray(), cancellationToken: cancellationToken);
                for (var l = 0; l < labelFields.Length; l++)
                {
                    await group.WriteAsync<float>(labelFields[l], probabilities[l].AsMemory(0, n), cancellationToken: cancellationToken);
                }

                for (var e = 0; e < embeddingFields.Length; e++)
                {
                    await group.WriteAsync<float>(embeddingFields[e], embeddings[e].AsMemory(0, n), cancellationToken: cancellationToken);
                }
            }

            records.Clear();
            models.Clear();
            runs.Clear();
            windows.Clear();
            blobs.Clear();
            etags.Clear();
            scored.Clear();
        }

        while (await reader.ReadAsync(cancellationToken))
        {
            var i = records.Count;
            var recordId = reader.GetString(0);
            records.Add(recordId);
            models.Add(reader.GetString(1));
            runs.Add(reader.GetGuid(2).ToString());
            windows.Add(reader.GetInt32(3));
            blobs.Add(reader.GetString(4));
            etags.Add(reader.GetString(5));
            scored.Add(reader.GetFieldValue<DateTime>(6));
            var p = reader.GetFieldValue<float[]>(7);
            if (p.Length != labels.Count)
            {
                throw new InvalidDataException($"record {recordId} has {p.Length} probabilities where the model has {labels.Count} labels");
            }

            for (var l = 0; l < p.Length; l++)
            {
                probabilities[l][i] = p[l];
            }

            if (embeddingSize > 0)
            {
                var e = ReadEmbedding(reader, 8, recordId);
                if (e.Length != embeddingSize)
                {
                    throw new InvalidDataException($"record {recordId} has an embedding of {e.Length} values where the model has {embeddingSize}");
                }

                for (var h = 0; h < e.Length; h++)
                {
                    embeddings[h][i] = e[h];
                }
            }

            rows++;
            if (records.Count == RowGroupSize)
            {
                await FlushAsync();
            }
        }

        await FlushAsync();
        return rows;
    }
}
