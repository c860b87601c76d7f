using System.Data;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using HubertEcg.Storage;
using Npgsql;
using NpgsqlTypes;
using Parquet;
using Parquet.Schema;

namespace HubertEcg.Client.Results;

/// <summary>What an export wrote; <paramref name="FirstRow"/> is the time from the start to the first row read back from Postgres.</summary>
public sealed record ExportSummary(
    string Path, string Format, long Rows, int LabelColumns, int EmbeddingColumns, int RowGroups, TimeSpan FirstRow, TimeSpan Elapsed);

/// <summary>
/// How an export is written: with the embedding or not; for Parquet the layout of the probabilities
/// (<see cref="ParquetLayout"/>) and the target size of a row group in bytes of uncompressed values (null: the
/// layout's default, <see cref="ResultsExport.DefaultRowGroupBytes"/>).
/// </summary>
public sealed record ExportOptions(bool WithEmbedding = false, ParquetLayout Layout = ParquetLayout.List, long? RowGroupBytes = null);

/// <summary>
/// Exports a run's score rows to CSV or Parquet: one row per record the run scored, fixed columns (record, model, the
/// run that wrote the row, windows, source blob and ETag, scored time), then the probabilities in the model's label
/// order, then optionally the embedding. CSV: one column per label named by its code, and one column per embedding
/// dimension (<c>embedding_0</c> ...). Parquet: see <see cref="ParquetLayout"/>; the embedding is one list column
/// <c>embedding</c> (list of float) in both layouts.
/// <para>
/// Order: first the rows the run wrote itself, in the order of their scored time (rows scored at the same instant in
/// no particular order), then the rows it reused from earlier runs (<c>run_reused_scores</c>), by record id. Both
/// orders are those of an index (<c>scores_run</c>, and <c>run_reused_scores</c>' primary key), so rows stream from
/// the first one: Postgres never sorts the run, however large. Consumers that need record order sort the file.
/// </para>
/// <para>
/// Memory stays flat: CSV is written a row at a time, Parquet in row groups of about
/// <see cref="DefaultRowGroupBytes"/> of uncompressed values each (<see cref="ParquetExportSink"/>), with a footer
/// that grows by a few kilobytes a group in the default list layout.
/// </para>
/// </summary>
public static class ResultsExport
{
    /// <summary>
    /// Target uncompressed size of a Parquet row group by layout. The writer holds one group's values, and Parquet.Net
    /// several times its biggest column chunk while it writes it (a copy of the values, their compressed form, and
    /// buffers for a list's levels), so the group's size sets the export's memory; the footer, held until the end, adds
    /// about 6 KB a group in the list layout (16 MB: 5,800 rows with a 512-float embedding, 20,000 without) and 100 KB
    /// in the wide one, whose groups are bigger for that (64 MB: 23,000 and 77,000 rows).
    /// </summary>
    public static long DefaultRowGroupBytes(ParquetLayout layout) => layout == ParquetLayout.List ? 16L << 20 : 64L << 20;

    /// <summary>
    /// What the export's transaction sets before its queries: a sort only where no index gives the order (the planner
    /// would otherwise sort a run that is most of a big table rather than read it through <c>scores_run</c>), and no
    /// JIT compilation, which Postgres plans for a big table's estimates (with inlining and optimisation) and does
    /// before the first row, for scans that gain nothing from it.
    /// </summary>
    internal const string PlannerSettings = "set local enable_sort = off; set local jit = off";

    internal static readonly string[] FixedColumns = ["record_id", "model_id", "run_id", "windows_used", "source_blob", "source_etag", "scored_at"];

    /// <summary>Exports with the default layout and row groups; <paramref name="withEmbedding"/> adds the embedding.</summary>
    public static Task<ExportSummary> ExportAsync(
        NpgsqlDataSource dataSource, Guid runId, string path, bool withEmbedding = false, CancellationToken cancellationToken = default) =>
        ExportAsync(dataSource, runId, path, new ExportOptions(withEmbedding), cancellationToken);

    public static async Task<ExportSummary> ExportAsync(
        NpgsqlDataSource dataSource, Guid runId, string path, ExportOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var rowGroupBytes = options.RowGroupBytes ?? DefaultRowGroupBytes(options.Layout);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowGroupBytes, 1);
        var format = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => "csv",
            ".parquet" => "parquet",
            var other => throw new ArgumentException($"{path}: the export format is chosen by the extension, .csv or .parquet, not '{other}'", nameof(path)),
        };
        var stopwatch = Stopwatch.StartNew();
        var (labels, hiddenSize) = await RunModelAsync(dataSource, runId, cancellationToken);
        var embeddingSize = options.WithEmbedding ? hiddenSize : 0;
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        // Written under a temporary name and moved into place once complete (ExportFile): a failed export leaves no
        // file that looks whole, and an earlier file of the name stays.
        await using var file = ExportFile.Open(path, 1 << 16);
        await using var sink = format == "csv"
            ? (RowSink)new CsvSink(file.Stream, labels, embeddingSize)
            : await ParquetExportSink.CreateAsync(file.Stream, runId, labels, embeddingSize, options.Layout, rowGroupBytes, cancellationToken);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);

        // One snapshot for both parts, so a row cannot move from one to the other between them. The settings steer the
        // planner to the indexes' order (no sort of the run, no JIT compilation before the first row); the order by
        // clauses, not the settings, decide the order.
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        await using (var settings = new NpgsqlCommand(PlannerSettings, connection, transaction))
        {
            await settings.ExecuteNonQueryAsync(cancellationToken);
        }

        TimeSpan? firstRow = null;
        long rows = 0;
        foreach (var sql in RunRowsQueries(options.WithEmbedding))
        {
            // No command timeout: the rows stream for as long as the file takes to write.
            await using var cmd = new NpgsqlCommand(sql, connection, transaction) { CommandTimeout = 0 };
            cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
            await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                firstRow ??= stopwatch.Elapsed;
                await sink.AddAsync(ExportRow.Read(reader, labels.Count, embeddingSize), cancellationToken);
                rows++;
            }
        }

        await transaction.CommitAsync(cancellationToken);
        var groups = await sink.CompleteAsync(cancellationToken);
        await sink.DisposeAsync();
        await file.CommitAsync();
        return new ExportSummary(path, format, rows, labels.Count, embeddingSize, groups, firstRow ?? stopwatch.Elapsed, stopwatch.Elapsed);
    }

    /// <summary>
    /// The two queries of an export, in this order: the rows the run wrote, by scored time (index <c>scores_run</c>),
    /// then the rows another run wrote from the same source version that this run found current
    /// (<c>run_reused_scores</c>, by its primary key, each joined to its row by the primary key of <c>scores</c>);
    /// <c>run_id</c> names the run that wrote each row.
    /// </summary>
    internal static IReadOnlyList<string> RunRowsQueries(bool withEmbedding)
    {
        var columns = "s.record_id, s.model_id, s.run_id, s.windows_used, s.source_blob, s.source_etag, s.scored_at, s.probabilities" +
            (withEmbedding ? ", s.embedding, s.embedding_packed" : "");
        return
        [
            $"select {columns} from scores s where s.run_id = @run order by s.scored_at",
            $"select {columns} from run_reused_scores u join scores s on s.model_id = u.model_id and s.record_id = u.record_id " +
            "where u.run_id = @run and s.run_id <> @run order by u.model_id, u.record_id",
        ];
    }

    private static async Task<(IReadOnlyList<string> Labels, int HiddenSize)> RunModelAsync(NpgsqlDataSource dataSource, Guid runId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("select m.label_codes, m.hidden_size from runs r join models m on m.model_id = r.model_id where r.run_id = @run");
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new KeyNotFoundException($"run {runId} does not exist");
        }

        return (reader.GetFieldValue<string[]>(0), reader.GetInt32(1));
    }

    private sealed class CsvSink : RowSink
    {
        private readonly StreamWriter _writer;
        private readonly StringBuilder _line = new();
        private bool _headerWritten;
        private readonly string _header;

        public CsvSink(Stream file, IReadOnlyList<string> labels, int embeddingSize)
        {
            _writer = new StreamWriter(file, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 1 << 16)
            {
                AutoFlush = false,
            };
            var header = FixedColumns.Concat(labels).Concat(Enumerable.Range(0, embeddingSize).Select(i => $"embedding_{i}"));
            _header = string.Join(',', header.Select(Quote));
        }

        public override async ValueTask AddAsync(ExportRow row, CancellationToken cancellationToken)
        {
            await WriteHeaderAsync();
            var line = _line.Clear();
            line.Append(Quote(row.RecordId)).Append(',')
                .Append(Quote(row.ModelId)).Append(',')
                .Append(row.RunId.ToString()).Append(',')
                .Append(row.WindowsUsed.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(Quote(row.SourceBlob)).Append(',')
                .Append(Quote(row.SourceEtag)).Append(',')
                .Append(row.ScoredAt.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture));
            AppendFloats(line, row.Probabilities);
            if (row.Embedding is { } embedding)
            {
                AppendFloats(line, embedding);
            }

            await _writer.WriteLineAsync(line, cancellationToken);
        }

        public override async ValueTask<int> CompleteAsync(CancellationToken cancellationToken)
        {
            await WriteHeaderAsync();
            await _writer.FlushAsync(cancellationToken);
            return 1;
        }

        public override ValueTask DisposeAsync() => _writer.DisposeAsync();

        private async ValueTask WriteHeaderAsync()
        {
            if (!_headerWritten)
            {
                await _writer.WriteLineAsync(_header);
                _headerWritten = true;
            }
        }

        private static void AppendFloats(StringBuilder line, float[] values)
        {
            foreach (var v in values)
            {
                // Formatted straight into the line, no string per value; "R": the shortest text that reads back the same float.
                line.Append(CultureInfo.InvariantCulture, $",{v:R}");
            }
        }

        private static string Quote(string value) =>
            value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }
}

/// <summary>One score row as read, its arrays checked against the model's sizes.</summary>
internal readonly record struct ExportRow(
    string RecordId, string ModelId, Guid RunId, int WindowsUsed, string SourceBlob, string SourceEtag, DateTime ScoredAt, float[] Probabilities, float[]? Embedding)
{
    public static ExportRow Read(NpgsqlDataReader reader, int labelCount, int embeddingSize)
    {
        // Sequential access: columns in order, each once.
        var recordId = reader.GetString(0);
        var row = new ExportRow(
            recordId,
            reader.GetString(1),
            reader.GetGuid(2),
            reader.GetInt32(3),
            reader.GetString(4),
            reader.GetString(5),
            reader.GetFieldValue<DateTime>(6),
            reader.GetFieldValue<float[]>(7),
            embeddingSize > 0 ? ReadEmbedding(reader, recordId) : null);
        if (row.Probabilities.Length != labelCount)
        {
            throw new InvalidDataException($"record {recordId} has {row.Probabilities.Length} probabilities where the model has {labelCount} labels");
        }

        if (row.Embedding is { } e && e.Length != embeddingSize)
        {
            throw new InvalidDataException($"record {recordId} has an embedding of {e.Length} values where the model has {embeddingSize}");
        }

        return row;
    }

    // The embedding: packed (0027_packed_embeddings.sql) or, in rows written before, the real[] before it. Read in
    // column order, as sequential access requires.
    private static float[] ReadEmbedding(NpgsqlDataReader reader, string recordId)
    {
        var array = reader.IsDBNull(8) ? null : reader.GetFieldValue<float[]>(8);
        return reader.IsDBNull(9)
            ? array ?? throw new InvalidDataException($"record {recordId} has no embedding stored")
            : PackedEmbeddings.Unpack(reader.GetFieldValue<byte[]>(9), recordId);
    }
}

internal abstract class RowSink : IAsyncDisposable
{
    public abstract ValueTask AddAsync(ExportRow row, CancellationToken cancellationToken);

    /// <summary>Writes what is buffered and the file's end; returns the number of row groups (1 for CSV).</summary>
    public abstract ValueTask<int> CompleteAsync(CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();
}
