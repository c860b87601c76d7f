using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace HubertEcg.Client.Results;

/// <summary>How a Parquet export holds a row's probabilities.</summary>
public enum ParquetLayout
{
    /// <summary>
    /// One column <c>probabilities</c>, a list of float per row in the model's label order, the label codes in the
    /// file's key-value metadata (<see cref="ParquetExportSink.LabelCodesKey"/>, a JSON array). A row group has 8 column
    /// chunks (9 with the embedding) whatever the number of labels, so the footer, which the writer holds until the end,
    /// grows by a few kilobytes a group: the export's memory stays flat at any run size. The default.
    /// </summary>
    List,

    /// <summary>
    /// One float column per label, named by its code, as in CSV. Every row group adds a footer entry per label column
    /// (about 100 KB a group of 164 labels, held until the end): memory grows with the run, by about 1 MB per million
    /// rows without the embedding and 4 MB with it at the default row-group size.
    /// </summary>
    Wide,
}

/// <summary>
/// Writes an export's rows as Parquet in row groups of about a target size of uncompressed values: the fixed columns,
/// the probabilities (<see cref="ParquetLayout"/>), and the embedding as one list column <c>embedding</c>. It holds one
/// group's values in arrays allocated once (for a list column also its repetition and definition levels, which
/// Parquet.Net takes as arrays of int); a group is written when the arrays are full or its bytes reach the target.
/// </summary>
internal sealed class ParquetExportSink : RowSink
{
    /// <summary>Key-value metadata: the layout's name (<c>list</c> or <c>wide</c>).</summary>
    public const string LayoutKey = "hubert_ecg.layout";

    /// <summary>Key-value metadata: the model's label codes in the order of the probabilities, a JSON array of strings.</summary>
    public const string LabelCodesKey = "hubert_ecg.label_codes";

    /// <summary>Key-value metadata: the exported run's id.</summary>
    public const string RunKey = "hubert_ecg.run_id";

    public const string ProbabilitiesColumn = "probabilities";
    public const string EmbeddingColumn = "embedding";

    // Bytes a row's fixed-width values take: windows_used (4), scored_at (12 as written), run_id (36 characters).
    private const int FixedWidthBytes = 4 + 12 + 36;

    private readonly long _targetBytes;
    private readonly int _capacity;
    private readonly int _labelCount;
    private readonly int _embeddingSize;
    private readonly DataField<string> _recordField = new("record_id");
    private readonly DataField<string> _modelField = new("model_id");
    private readonly DataField<string> _runField = new("run_id");
    private readonly DataField<int> _windowsField = new("windows_used");
    private readonly DataField<string> _blobField = new("source_blob");
    private readonly DataField<string> _etagField = new("source_etag");
    private readonly DataField<DateTime> _scoredField = new("scored_at");

    // Wide: a column per label. List: the element of the probabilities list.
    private readonly DataField<float>[] _labelFields;
    private readonly DataField<float>? _probabilityElement;
    private readonly DataField<float>? _embeddingElement;
    private readonly string[] _records;
    private readonly string[] _models;
    private readonly string[] _runs;
    private readonly int[] _windows;
    private readonly string[] _blobs;
    private readonly string[] _etags;
    private readonly DateTime[] _scored;

    // Wide: [label][row]. List: one array of rows x labels.
    private readonly float[][] _probabilityColumns;
    private readonly float[] _probabilities;
    private readonly int[] _probabilityRepetitions;
    private readonly float[] _embeddings;
    private readonly int[] _embeddingRepetitions;

    // Every list is present and full, so every value has the same definition level: one array for both lists.
    private int[] _definitions = [];
    private Stream? _file;
    private ParquetWriter? _writer;
    private int _count;
    private long _bytes;
    private int _groups;
    private bool _complete;

    // The same model and run on almost every row: one string each, not one per row.
    private Guid _lastRunId;
    private string _lastRunText = "";

    private ParquetExportSink(IReadOnlyList<string> labels, int embeddingSize, ParquetLayout layout, long targetBytes)
    {
        _labelCount = labels.Count;
        _embeddingSize = embeddingSize;
        _targetBytes = targetBytes;
        _labelFields = layout == ParquetLayout.Wide ? labels.Select(code => new DataField<float>(code)).ToArray() : [];
        _probabilityElement = layout == ParquetLayout.List ? new DataField<float>(ListField.ElementName) : null;
        _embeddingElement = embeddingSize > 0 ? new DataField<float>(ListField.ElementName) : null;

        // The most rows a group can hold: every row has at least its fixed-width values and its floats; its strings
        // only add to that, and a group is also written once its bytes reach the target.
        var minimumRowBytes = FixedWidthBytes + 4L * (_labelCount + embeddingSize);
        _capacity = (int)Math.Clamp(targetBytes / minimumRowBytes, 1, 1 << 20);
        _records = new string[_capacity];
        _models = new string[_capacity];
        _runs = new string[_capacity];
        _windows = new int[_capacity];
        _blobs = new string[_capacity];
        _etags = new string[_capacity];
        _scored = new DateTime[_capacity];
        _probabilityColumns = _labelFields.Select(_ => new float[_capacity]).ToArray();
        _probabilities = new float[_probabilityElement is null ? 0 : (long)_capacity * _labelCount];
        _probabilityRepetitions = Repetitions(_probabilities.Length, _labelCount);
        _embeddings = new float[embeddingSize > 0 ? (long)_capacity * embeddingSize : 0];
        _embeddingRepetitions = Repetitions(_embeddings.Length, embeddingSize);
    }

    public static async Task<ParquetExportSink> CreateAsync(
        FileStream file, Guid runId, IReadOnlyList<string> labels, int embeddingSize, ParquetLayout layout, long targetBytes, CancellationToken cancellationToken)
    {
        var sink = new ParquetExportSink(labels, embeddingSize, layout, targetBytes);
        var fields = new List<Field> { sink._recordField, sink._modelField, sink._runField, sink._windowsField, sink._blobField, sink._etagField, sink._scoredField };
        fields.AddRange(sink._labelFields);
        if (sink._probabilityElement is { } probability)
        {
            fields.Add(new ListField(ProbabilitiesColumn, probability));
        }

        if (sink._embeddingElement is { } element)
        {
            fields.Add(new ListField(EmbeddingColumn, element));
        }

        var schema = new ParquetSchema(fields);

        // The element's deepest definition level is known once the schema has placed it under its list; both lists
        // sit at the top level with the same element type, so they share it.
        var listed = new[] { sink._probabilityElement, sink._embeddingElement }.OfType<DataField<float>>().ToArray();
        if (listed.Length > 0)
        {
            var level = listed[0].MaxDefinitionLevel;
            if (listed.Any(f => f.MaxDefinitionLevel != level))
            {
                throw new InvalidOperationException("the export's list columns have different definition levels");
            }

            Array.Fill(sink._definitions = new int[Math.Max(sink._probabilities.Length, sink._embeddings.Length)], level);
        }

        try
        {
            sink._file = new SynchronousStream(file);
            sink._writer = await ParquetWriter.CreateAsync(schema, sink._file, cancellationToken: cancellationToken);
            sink._writer.CustomMetadata = new Dictionary<string, string>
            {
                [LayoutKey] = layout == ParquetLayout.List ? "list" : "wide",
                [LabelCodesKey] = JsonSerializer.Serialize(labels.ToArray()),
                [RunKey] = runId.ToString(),
            };
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
        _models[i] = i > 0 && string.Equals(_models[i - 1], row.ModelId, StringComparison.Ordinal) ? _models[i - 1] : row.ModelId;
        if (row.RunId != _lastRunId || _lastRunText.Length == 0)
        {
            _lastRunId = row.RunId;
            _lastRunText = row.RunId.ToString();
        }

        _runs[i] = _lastRunText;
        _windows[i] = row.WindowsUsed;
        _blobs[i] = row.SourceBlob;
        _etags[i] = row.SourceEtag;
        _scored[i] = row.ScoredAt;
        var p = row.Probabilities;
        if (_probabilityElement is null)
        {
            for (var l = 0; l < p.Length; l++)
            {
                _probabilityColumns[l][i] = p[l];
            }
        }
        else
        {
            p.CopyTo(_probabilities, (long)i * _labelCount);
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
        _complete = true;
        return _groups;
    }

    public override async ValueTask DisposeAsync()
    {
        // The writer's disposal writes the footer: only for a complete export. One that failed part-way ends without
        // it, so no reader takes the groups written for the whole run.
        if (_writer is not null && _complete)
        {
            _complete = false;
            await _writer.DisposeAsync();
        }

        if (_file is not null)
        {
            await _file.DisposeAsync();
        }
    }

    // Repetition level 0 starts a row's list, 1 continues it: the same pattern for every group.
    private static int[] Repetitions(int length, int listLength)
    {
        var levels = new int[length];
        for (var i = 0; i < length; i++)
        {
            levels[i] = i % listLength == 0 ? 0 : 1;
        }

        return levels;
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        var n = _count;
        if (n == 0)
        {
            return;
        }

        await WriteOnItsOwnThreadAsync(n, cancellationToken);
        Array.Clear(_records, 0, n);
        Array.Clear(_models, 0, n);
        Array.Clear(_runs, 0, n);
        Array.Clear(_blobs, 0, n);
        Array.Clear(_etags, 0, n);
        _count = 0;
        _bytes = 0;
        _groups++;
    }

    /// <summary>
    /// Writes the group on a thread started for it, synchronously (the file stream completes every write at once).
    /// Parquet.Net rents its biggest buffers (a list's levels, 5 bytes a value; the compressed page) from the shared
    /// array pool, which keeps a returned array in a slot of the returning thread: on the thread pool, where each group
    /// ran on whichever threads its awaits resumed on, those slots filled one thread after another and the export's
    /// memory crept up until a 256 MB heap ran out after 1.8M rows with the embedding. A thread of the group's own returns
    /// its arrays to its own slots, which go with it when it ends.
    /// </summary>
    private Task WriteOnItsOwnThreadAsync(int n, CancellationToken cancellationToken)
    {
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                WriteGroupAsync(n, cancellationToken).GetAwaiter().GetResult();
                written.SetResult();
            }
            catch (Exception e)
            {
                written.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "parquet-row-group",
        };
        thread.Start();
        return written.Task;
    }

    private async Task WriteGroupAsync(int n, CancellationToken cancellationToken)
    {
        using var group = _writer!.CreateRowGroup();
        await group.WriteAsync(_recordField, new ArraySegment<string>(_records, 0, n));
        await group.WriteAsync(_modelField, new ArraySegment<string>(_models, 0, n));
        await group.WriteAsync(_runField, new ArraySegment<string>(_runs, 0, n));
        await group.WriteAsync<int>(_windowsField, _windows.AsMemory(0, n), cancellationToken: cancellationToken);
        await group.WriteAsync(_blobField, new ArraySegment<string>(_blobs, 0, n));
        await group.WriteAsync(_etagField, new ArraySegment<string>(_etags, 0, n));
        await group.WriteAsync<DateTime>(_scoredField, _scored.AsMemory(0, n), cancellationToken: cancellationToken);
        for (var l = 0; l < _labelFields.Length; l++)
        {
            await group.WriteAsync<float>(_labelFields[l], _probabilityColumns[l].AsMemory(0, n), cancellationToken: cancellationToken);
        }

        if (_probabilityElement is not null)
        {
            await WriteListAsync(group, _probabilityElement, _probabilities, _probabilityRepetitions, n * _labelCount, cancellationToken);
        }

        if (_embeddingElement is not null)
        {
            await WriteListAsync(group, _embeddingElement, _embeddings, _embeddingRepetitions, n * _embeddingSize, cancellationToken);
        }

        group.CompleteValidate();
    }

    private Task WriteListAsync(ParquetRowGroupWriter group, DataField<float> element, float[] values, int[] repetitions, int count, CancellationToken cancellationToken) =>
        group.WriteAllPartsAsync<float>(
            element, values.AsMemory(0, count), _definitions.AsMemory(0, count), repetitions.AsMemory(0, count), cancellationToken);

    /// <summary>
    /// The output file with every asynchronous call done at once on the calling thread, so that a row group written on
    /// its own thread stays on it (<see cref="WriteOnItsOwnThreadAsync"/>). Seekable when the file is (a named pipe is
    /// not; Parquet.Net then counts the bytes written itself).
    /// </summary>
    private sealed class SynchronousStream(FileStream file) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => file.CanSeek;

        public override bool CanWrite => true;

        public override long Length => file.Length;

        public override long Position
        {
            get => file.Position;
            set => file.Position = value;
        }

        public override void Flush() => file.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            file.Flush();
            return Task.CompletedTask;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("the export's file is written, not read");

        public override long Seek(long offset, SeekOrigin origin) => file.Seek(offset, origin);

        public override void SetLength(long value) => file.SetLength(value);

        public override void Write(byte[] buffer, int offset, int count) => file.Write(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => file.Write(buffer);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            file.Write(buffer, offset, count);
            return Task.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            file.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                file.Dispose();
            }

            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync()
        {
            file.Dispose();
            return base.DisposeAsync();
        }
    }
}
