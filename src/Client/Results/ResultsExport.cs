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
/// Exports a run's score rows to CSV or Parquet: one row per record the run scored, fixed columns (record, model, the
/// run that wrote the row, windows, source blob and ETag, scored time), then one column per label named by its code
/// in the model's label order, then optionally the embedding: in CSV one column per dimension (<c>embedding_0</c>
/// ...), in Parquet one list column <c>embedding</c> (list of float).
/// <para>
/// Order: first the rows the run wrote itself, in the order of their scored time (rows scored at the same instant in
/// no particular order), then the rows it reused from earlier runs (<c>run_reused_scores</c>), by record id. Both
/// orders are those of an index (<c>scores_run</c>, and <c>run_reused_scores</c>' primary key), so rows stream from
/// the first one: Postgres never sorts the run, however large. Consumers that need record order sort the file.
/// </para>
/// <para>
/// Memory stays flat: CSV is written a row at a time, Parquet in row groups of about
/// <see cref="DefaultRowGroupBytes"/> of uncompressed values each.
/// </para>
/// </summary>
public static class ResultsExport
{
    /// <summary>
    /// Target uncompressed size of a Parquet row group: about 78,000 rows without the embedding and 22,000 with a
    /// 512-float one. The export holds one row group's values at a time, and the file's footer one entry per group.
    /// </summary>
    public const long DefaultRowGroupBytes = 64L << 20;

    /// <summary>
    /// What the export's transaction sets before its queries: a sort only where no index gives the order (the planner
    /// would otherwise sort a run that is most of a big table rather than read it through <c>scores_run</c>), and no
    /// JIT compilation, which Postgres plans for a big table's estimates (with inlining and optimisation) and does
    /// before the first row, for scans that gain nothing from it.
    /// </summary>
    internal const string PlannerSettings = "set local enable_sort = off; set local jit = off";

    private static readonly string[] FixedColumns = ["record_id", "model_id", "run_id", "windows_used", "source_blob", "source_etag", "scored_at"];

    public static Task<ExportSummary> ExportAsync(
        NpgsqlDataSource dataSource, Guid runId, string path, bool withEmbedding = false, CancellationToken cancellationToken = default) =>
        ExportAsync(dataSource, runId, path, withEmbedding, DefaultRowGroupBytes, cancellationToken);

    /// <summary>As the public overload, with the Parquet row groups' target size in bytes (tests set it small).</summary>
    internal static async Task<ExportSummary> ExportAsync(
        NpgsqlDataSource dataSource, Guid runId, string path, bool withEmbedding, long rowGroupBytes, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowGroupBytes, 1);
        var format = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => "csv",
            ".parquet" => "parquet",
            var other => throw new ArgumentException($"{path}: the export format is chosen by the extension, .csv or .parquet, not '{other}'", nameof(path)),
        };
        var stopwatch = Stopwatch.StartNew();
        var (labels, hiddenSize) = await RunModelAsync(dataSource, runId, cancellationToken);
        var embeddingSize = withEmbedding ? hiddenSize : 0;
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        await using var sink = format == "csv"
            ? (RowSink)new CsvSink(path, labels, embeddingSize)
            : await ParquetSink.CreateAsync(path, labels, embeddingSize, rowGroupBytes, cancellationToken);
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
        foreach (var sql in RunRowsQueries(withEmbedding))
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

    /// <summary>One score row as read, its arrays checked against the model's sizes.</summary>
    private readonly record struct ExportRow(
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

    private abstract class RowSink : IAsyncDisposable
    {
        public abstract ValueTask AddAsync(ExportRow row, CancellationToken cancellationToken);

        /// <summary>Writes what is buffered and the file's end; returns the number of row groups (1 for CSV).</summary>
        public abstract ValueTask<int> CompleteAsync(CancellationToken cancellationToken);

        public abstract ValueTask DisposeAsync();
    }

    private sealed class CsvSink : RowSink
    {
        private readonly StreamWriter _writer;
        private readonly StringBuilder _line = new();
        private bool _headerWritten;
        private readonly string _header;

        public CsvSink(string path, IReadOnlyList<string> labels, int embeddingSize)
        {
            _writer = new StreamWriter(path, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, BufferSize = 1 << 16 })
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

    /// <summary>
    /// Parquet in row groups of about a target size of uncompressed values: the fixed columns, one float column per label,
    /// and the embedding as one column <c>embedding</c>, a list of float per row (one value column with repetition
    /// levels, instead of one column per dimension: the footer's metadata per row group stays a few columns wide).
    /// </summary>
    private sealed class ParquetSink : RowSink
    {
        // Bytes a row's fixed-width values take: windows_used (4), scored_at (12 as written), run_id (36 characters).
        private const int FixedWidthBytes = 4 + 12 + 36;

        private readonly long _targetBytes;
        private readonly int _capacity;
        private readonly int _embeddingSize;
        private readonly DataField<string> _recordField = new("record_id");
        private readonly DataField<string> _modelField = new("model_id");
        private readonly DataField<string> _runField = new("run_id");
        private readonly DataField<int> _windowsField = new("windows_used");
        private readonly DataField<string> _blobField = new("source_blob");
        private readonly DataField<string> _etagField = new("source_etag");
        private readonly DataField<DateTime> _scoredField = new("scored_at");
        private readonly DataField<float>[] _labelFields;
        private readonly DataField<float>? _embeddingField;
        private readonly string[] _records;
        private readonly string[] _models;
        private readonly string[] _runs;
        private readonly int[] _windows;
        private readonly string[] _blobs;
        private readonly string[] _etags;
        private readonly DateTime[] _scored;
        private readonly float[][] _probabilities;
        private readonly float[] _embeddings;
        private readonly int[] _embeddingRepetitions;
        private int[] _embeddingDefinitions = [];
        private Stream? _file;
        private ParquetWriter? _writer;
        private int _count;
        private long _bytes;
        private int _groups;

        private ParquetSink(IReadOnlyList<string> labels, int embeddingSize, long targetBytes)
        {
            _labelFields = labels.Select(code => new DataField<float>(code)).ToArray();
            _embeddingField = embeddingSize > 0 ? new DataField<float>(ListField.ElementName) : null;
            _embeddingSize = embeddingSize;
            _targetBytes = targetBytes;

            // The most rows a group can hold: every row has at least its fixed-width values and its floats; its strings
            // only add to that, and a group is also written once its bytes reach the target.
            var minimumRowBytes = FixedWidthBytes + 4L * (_labelFields.Length + embeddingSize);
            _capacity = (int)Math.Clamp(targetBytes / minimumRowBytes, 1, 1 << 20);
            _records = new string[_capacity];
            _models = new string[_capacity];
            _runs = new string[_capacity];
            _windows = new int[_capacity];
            _blobs = new string[_capacity];
            _etags = new string[_capacity];
            _scored = new DateTime[_capacity];
            _probabilities = _labelFields.Select(_ => new float[_capacity]).ToArray();
            _embeddings = new float[embeddingSize > 0 ? _capacity * embeddingSize : 0];

            // Repetition level 0 starts a row's list, 1 continues it: the same pattern for every group.
            _embeddingRepetitions = new int[_embeddings.Length];
            for (var i = 0; i < _embeddingRepetitions.Length; i++)
            {
                _embeddingRepetitions[i] = i % embeddingSize == 0 ? 0 : 1;
            }
        }

        public static async Task<ParquetSink> CreateAsync(string path, IReadOnlyList<string> labels, int embeddingSize, long targetBytes, CancellationToken cancellationToken)
        {
            var sink = new ParquetSink(labels, embeddingSize, targetBytes);
            var fields = new List<Field> { sink._recordField, sink._modelField, sink._runField, sink._windowsField, sink._blobField, sink._etagField, sink._scoredField };
            fields.AddRange(sink._labelFields);
            if (sink._embeddingField is { } element)
            {
                fields.Add(new ListField("embedding", element));
            }

            var schema = new ParquetSchema(fields);
            if (sink._embeddingField is { } listed)
            {
                // Every list is present and every value in it: each value at the element's deepest definition level,
                // known once the schema has placed the element under its list.
                Array.Fill(sink._embeddingDefinitions = new int[sink._embeddings.Length], listed.MaxDefinitionLevel);
            }

            try
            {
                sink._file = File.Create(path);
                sink._writer = await ParquetWriter.CreateAsync(schema, sink._file, cancellationToken: cancellationToken);
                return sink;
            }
            catch
            {
                await sink.DisposeAsync();
                throw;
            }
        }

        public override async ValueTask AddAsync(ExportRow row, CancellationToken cancellationToken)
        {
            var i = _count;
            _records[i] = row.RecordId;
            _models[i] = row.ModelId;
            _runs[i] = row.RunId.ToString();
            _windows[i] = row.WindowsUsed;
            _blobs[i] = row.SourceBlob;
            _etags[i] = row.SourceEtag;
            _scored[i] = row.ScoredAt;
            var p = row.Probabilities;
            for (var l = 0; l < p.Length; l++)
            {
                _probabilities[l][i] = p[l];
            }

            if (row.Embedding is { } embedding)
            {
                embedding.CopyTo(_embeddings, (long)i * _embeddingSize);
            }

            _count++;
            _bytes += FixedWidthBytes + 4L * (p.Length + _embeddingSize) +
                Encoding.UTF8.GetByteCount(row.RecordId) + Encoding.UTF8.GetByteCount(row.ModelId) +
                Encoding.UTF8.GetByteCount(row.SourceBlob) + Encoding.UTF8.GetByteCount(row.SourceEtag);
            if (_count == _capacity || _bytes >= _targetBytes)
            {
                await FlushAsync(cancellationToken);
            }
        }

        public override async ValueTask<int> CompleteAsync(CancellationToken cancellationToken)
        {
            await FlushAsync(cancellationToken);
            return _groups;
        }

        public override async ValueTask DisposeAsync()
        {
            if (_writer is not null)
            {
                await _writer.DisposeAsync();
            }

            if (_file is not null)
            {
                await _file.DisposeAsync();
            }
        }

        private async Task FlushAsync(CancellationToken cancellationToken)
        {
            var n = _count;
            if (n == 0)
            {
                return;
            }

            using (var group = _writer!.CreateRowGroup())
            {
                await group.WriteAsync(_recordField, new ArraySegment<string>(_records, 0, n));
                await group.WriteAsync(_modelField, new ArraySegment<string>(_models, 0, n));
                await group.WriteAsync(_runField, new ArraySegment<string>(_runs, 0, n));
                await group.WriteAsync<int>(_windowsField, _windows.AsMemory(0, n), cancellationToken: cancellationToken);
                await group.WriteAsync(_blobField, new ArraySegment<string>(_blobs, 0, n));
                await group.WriteAsync(_etagField, new ArraySegment<string>(_etags, 0, n));
                await group.WriteAsync<DateTime>(_scoredField, _scored.AsMemory(0, n), cancellationToken: cancellationToken);
                for (var l = 0; l < _labelFields.Length; l++)
                {
                    await group.WriteAsync<float>(_labelFields[l], _probabilities[l].AsMemory(0, n), cancellationToken: cancellationToken);
                }

                if (_embeddingField is not null)
                {
                    var values = n * _embeddingSize;
                    await group.WriteAllPartsAsync<float>(
                        _embeddingField,
                        _embeddings.AsMemory(0, values),
                        _embeddingDefinitions.AsMemory(0, values),
                        _embeddingRepetitions.AsMemory(0, values),
                        cancellationToken);
                }

                group.CompleteValidate();
            }

            Array.Clear(_records, 0, n);
            Array.Clear(_models, 0, n);
            Array.Clear(_runs, 0, n);
            Array.Clear(_blobs, 0, n);
            Array.Clear(_etags, 0, n);
            _count = 0;
            _bytes = 0;
            _groups++;
        }
    }
}
