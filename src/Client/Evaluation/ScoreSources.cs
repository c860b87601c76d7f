using System.Text.Json;
using HubertEcg.Client.Results;
using HubertEcg.Inference.Evaluation;
using Npgsql;
using NpgsqlTypes;
using Parquet;
using Parquet.Schema;

namespace HubertEcg.Client.Evaluation;

/// <summary>
/// Where an evaluation's scores come from: a run's rows in Postgres, or a file <c>hubert-ecg results export</c>
/// wrote (CSV or Parquet; any CSV of <c>record_id</c> and one probability column per label code too).
/// </summary>
public static class ScoreSources
{
    /// <summary>
    /// The one query that reads a run's scores: the rows the run wrote, and, where the schema has
    /// <c>run_reused_scores</c> (rows of the same model another run wrote first, which the run counts as its own),
    /// those it lists. <c>@run</c> is the run id.
    /// </summary>
    public static string RunScoresQuery(bool withReusedScores) =>
        "select s.record_id, s.probabilities from scores s where s.run_id = @run" +
        (withReusedScores
            ? " union all select s.record_id, s.probabilities from run_reused_scores u " +
              "join scores s on s.model_id = u.model_id and s.record_id = u.record_id " +
              "where u.run_id = @run and s.run_id <> @run"
            : "");

    public static async Task<ScoreTable> ReadRunAsync(NpgsqlDataSource dataSource, Guid runId, CancellationToken cancellationToken)
    {
        string modelId;
        string[] codes;
        bool reused;
        await using (var cmd = dataSource.CreateCommand(
            "select r.model_id, m.label_codes, to_regclass('run_reused_scores') is not null " +
            "from runs r join models m on m.model_id = r.model_id where r.run_id = @run"))
        {
            cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                throw new ArgumentException($"run {runId} does not exist");
            }

            modelId = reader.GetString(0);
            codes = reader.GetFieldValue<string[]>(1);
            reused = reader.GetBoolean(2);
        }

        var table = new ScoreTable($"run {runId}", codes) { ModelId = modelId };
        await using (var cmd = dataSource.CreateCommand(RunScoresQuery(reused)))
        {
            cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            long row = 0;
            while (await reader.ReadAsync(cancellationToken))
            {
                row++;
                table.Add(reader.GetString(0), reader.GetFieldValue<float[]>(1), row);
            }
        }

        if (table.Count == 0)
        {
            throw new ArgumentException($"run {runId} has no scores");
        }

        return table;
    }

    /// <summary>Reads a scores file by its extension: <c>.csv</c> or <c>.parquet</c>.</summary>
    public static async Task<ScoreTable> ReadFileAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no such file", path);
        }

        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => ScoreCsvReader.Read(path),
            ".parquet" => await ReadParquetAsync(path, cancellationToken),
            var other => throw new ArgumentException($"{path}: scores are read from .csv or .parquet files, not '{other}'"),
        };
    }

    /// <summary>
    /// A Parquet export: column <c>record_id</c> and the probabilities, either as a list column <c>probabilities</c>
    /// with the label codes in the file's key-value metadata (<c>hubert_ecg.label_codes</c>, the export's default
    /// layout) or as one float column per label code (<c>--layout wide</c>, and files written before the list layout);
    /// the export's other columns and its embedding (one nested list column, or an <c>embedding_N</c> column per
    /// dimension in older files) are skipped (<c>model_id</c> names the model). "Line" in messages is the row number
    /// (1-based) in the file.
    /// </summary>
    public static async Task<ScoreTable> ReadParquetAsync(string path, CancellationToken cancellationToken)
    {
        var name = Path.GetFileName(path);
        await using var stream = File.OpenRead(path);
        ParquetReader reader;
        try
        {
            reader = await ParquetReader.CreateAsync(stream, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException or NotSupportedException)
        {
            throw EvaluationInputException.In(name, $"is not a readable Parquet file: {e.Message}");
        }

        await using (reader)
        {
            // Top-level columns only: an export's embedding list (embedding.list.element) is nested and not a label.
            var fields = reader.Schema.Fields.OfType<DataField>().ToArray();
            var record = fields.FirstOrDefault(f => f.Name == "record_id")
                ?? throw EvaluationInputException.In(name, "has no record_id column");
            var model = fields.FirstOrDefault(f => f.Name == "model_id");
            if (reader.Schema.Fields.OfType<ListField>().FirstOrDefault(f => f.Name == ParquetExportSink.ProbabilitiesColumn) is { } list)
            {
                return await ReadProbabilityListAsync(name, reader, record, model, list, cancellationToken);
            }

            var labelFields = fields
                .Where(f => f.Name != "record_id" && !ScoreCsvReader.ExportColumns.Contains(f.Name) && !ScoreCsvReader.IsEmbeddingColumn(f.Name))
                .ToArray();
            if (labelFields.Length == 0)
            {
                throw EvaluationInputException.In(name, "has no label columns: expected record_id and one probability column per label code");
            }

            foreach (var f in labelFields)
            {
                if (f.ClrType != typeof(float) && f.ClrType != typeof(double))
                {
                    throw EvaluationInputException.In(name, $"column {f.Name} holds {f.ClrType.Name} values, not probabilities");
                }
            }

            var table = new ScoreTable(name, [.. labelFields.Select(f => f.Name)]);
            var agreement = new ModelAgreement();
            long line = 0;
            var probabilities = new float[labelFields.Length];
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var rows = (int)group.RowCount;
                var (ids, models) = await ReadIdsAsync(group, record, model, rows, cancellationToken);

                var columns = new float?[labelFields.Length][];
                for (var l = 0; l < labelFields.Length; l++)
                {
                    columns[l] = await ReadProbabilitiesAsync(group, labelFields[l], rows, cancellationToken);
                }

                for (var r = 0; r < rows; r++)
                {
                    line++;
                    var id = ids[r] is { Length: > 0 } i ? i : throw EvaluationInputException.At(name, line, "record_id is empty or null");
                    for (var l = 0; l < columns.Length; l++)
                    {
                        var value = columns[l][r];
                        if (value is not { } p || !(p >= 0f && p <= 1f))
                        {
                            throw EvaluationInputException.At(
                                name, line, $"record {id}: probability {(value is { } v ? v.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "null")} in column {labelFields[l].Name} is outside [0, 1]");
                        }

                        probabilities[l] = p;
                    }

                    agreement.Note(models?[r], table.Count);

                    table.Add(id, probabilities, line);
                }
            }

            if (table.Count == 0)
            {
                throw EvaluationInputException.In(name, "has no records");
            }

            table.ModelId = agreement.Agreed;
            return table;
        }
    }

    /// <summary>
    /// The list layout: each row's probabilities are one list of as many floats as the label codes the file's metadata
    /// names, in their order.
    /// </summary>
    private static async Task<ScoreTable> ReadProbabilityListAsync(
        string name, ParquetReader reader, DataField record, DataField? model, ListField list, CancellationToken cancellationToken)
    {
        if (!reader.CustomMetadata.TryGetValue(ParquetExportSink.LabelCodesKey, out var codesJson))
        {
            throw EvaluationInputException.In(name, $"has a {ParquetExportSink.ProbabilitiesColumn} list column but no {ParquetExportSink.LabelCodesKey} in its metadata");
        }

        string[] codes;
        try
        {
            codes = JsonSerializer.Deserialize<string[]>(codesJson) ?? [];
        }
        catch (JsonException e)
        {
            throw EvaluationInputException.In(name, $"its {ParquetExportSink.LabelCodesKey} metadata is not a JSON array of strings: {e.Message}");
        }

        if (codes.Length == 0 || codes.Any(string.IsNullOrEmpty) || codes.Distinct(StringComparer.Ordinal).Count() != codes.Length)
        {
            throw EvaluationInputException.In(name, $"its {ParquetExportSink.LabelCodesKey} metadata must name each label once, none empty");
        }

        if (list.Item is not DataField { } element || (element.ClrType != typeof(float) && element.ClrType != typeof(double)))
        {
            throw EvaluationInputException.In(name, $"column {ParquetExportSink.ProbabilitiesColumn} is not a list of floats");
        }

        var labels = codes.Length;
        var table = new ScoreTable(name, codes);
        var agreement = new ModelAgreement();
        long line = 0;
        var probabilities = new float[labels];
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var rows = (int)group.RowCount;
            var (ids, models) = await ReadIdsAsync(group, record, model, rows, cancellationToken);

            // Every value with its levels: a row's list starts at repetition level 0; a value below the element's
            // deepest definition level is a null list, an empty one, or a null element.
            var count = checked((int)(group.GetMetadata(element)?.MetaData?.NumValues ?? 0));
            var values = new double[count];
            var definitions = new int[count];
            var repetitions = new int[count];
            if (element.ClrType == typeof(float))
            {
                var floats = new float[count];
                await group.ReadRawAsync<float>(element, floats.AsMemory(), definitions.AsMemory(), repetitions.AsMemory(), cancellationToken);
                for (var i = 0; i < count; i++)
                {
                    values[i] = floats[i];
                }
            }
            else
            {
                await group.ReadRawAsync<double>(element, values.AsMemory(), definitions.AsMemory(), repetitions.AsMemory(), cancellationToken);
            }

            var i0 = 0;
            for (var r = 0; r < rows; r++)
            {
                line++;
                var id = ids[r] is { Length: > 0 } found ? found : throw EvaluationInputException.At(name, line, "record_id is empty or null");
                var n = 0;
                for (var i = i0; i < count && (i == i0 || repetitions[i] != 0); i++, n++)
                {
                    if (definitions[i] != element.MaxDefinitionLevel)
                    {
                        throw EvaluationInputException.At(name, line, $"record {id}: its {ParquetExportSink.ProbabilitiesColumn} list is null or empty or holds a null");
                    }

                    if (n < labels)
                    {
                        var p = values[i];
                        if (!(p >= 0 && p <= 1))
                        {
                            throw EvaluationInputException.At(
                                name, line, $"record {id}: probability {p.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} of label {codes[n]} is outside [0, 1]");
                        }

                        probabilities[n] = (float)p;
                    }
                }

                if (n != labels)
                {
                    throw EvaluationInputException.At(name, line, $"record {id}: {n} probabilities where the file names {labels} labels");
                }

                i0 += n;
                agreement.Note(models?[r], table.Count);

                table.Add(id, probabilities, line);
            }

            if (i0 != count)
            {
                throw EvaluationInputException.In(name, $"row group {g} has {count - i0} probability values past its {rows} rows");
            }
        }

        if (table.Count == 0)
        {
            throw EvaluationInputException.In(name, "has no records");
        }

        table.ModelId = agreement.Agreed;
        return table;
    }

    private static async Task<float?[]> ReadProbabilitiesAsync(ParquetRowGroupReader group, DataField field, int rows, CancellationToken cancellationToken)
    {
        var result = new float?[rows];
        if (field.ClrType == typeof(float) && !field.IsNullable)
        {
            var values = new float[rows];
            await group.ReadAsync<float>(field, values.AsMemory(), cancellationToken: cancellationToken);
            for (var r = 0; r < rows; r++)
            {
                result[r] = values[r];
            }
        }
        else if (field.ClrType == typeof(float))
        {
            await group.ReadAsync<float>(field, result.AsMemory(), cancellationToken: cancellationToken);
        }
        else if (!field.IsNullable)
        {
            var values = new double[rows];
            await group.ReadAsync<double>(field, values.AsMemory(), cancellationToken: cancellationToken);
            for (var r = 0; r < rows; r++)
            {
                result[r] = (float)values[r];
            }
        }
        else
        {
            var values = new double?[rows];
            await group.ReadAsync<double>(field, values.AsMemory(), cancellationToken: cancellationToken);
            for (var r = 0; r < rows; r++)
            {
                result[r] = (float?)values[r];
            }
        }

        return result;
    }

    /// <summary>Writes a scores table as Parquet, the layout of an export without its provenance columns (for benchmarks and tests).</summary>
    public static async Task WriteParquetAsync(string path, IReadOnlyList<string> codes, IReadOnlyList<string> recordIds, Func<int, int, float> probability, CancellationToken cancellationToken)
    {
        const int groupRows = 65536;
        var record = new DataField<string>("record_id");
        var labelFields = codes.Select(c => new DataField<float>(c)).ToArray();
        var schema = new ParquetSchema(new Field[] { record }.Concat(labelFields));
        await using var file = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, file, cancellationToken: cancellationToken);
        var values = new float[groupRows];
        for (var start = 0; start < recordIds.Count; start += groupRows)
        {
            var n = Math.Min(groupRows, recordIds.Count - start);
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(record, recordIds.Skip(start).Take(n).ToList());
            for (var l = 0; l < labelFields.Length; l++)
            {
                for (var r = 0; r < n; r++)
                {
                    values[r] = probability(start + r, l);
                }

                await group.WriteAsync<float>(labelFields[l], values.AsMemory(0, n), cancellationToken: cancellationToken);
            }
        }
    }

    // A row group's record ids, and its model ids where the file has the column.
    private static async Task<(string?[] Ids, string?[]? Models)> ReadIdsAsync(
        ParquetRowGroupReader group, DataField record, DataField? model, int rows, CancellationToken cancellationToken)
    {
        var ids = new string?[rows];
        await group.ReadAsync(record, ids.AsMemory(), cancellationToken: cancellationToken);
        string?[]? models = null;
        if (model is not null)
        {
            models = new string?[rows];
            await group.ReadAsync(model, models.AsMemory(), cancellationToken: cancellationToken);
        }

        return (ids, models);
    }

    // The model the rows name: the one of the first row, unless another row names another (rows naming none count
    // for nothing); then none.
    private sealed class ModelAgreement
    {
        private string? _model;
        private bool _agree = true;

        public string? Agreed => _agree ? _model : null;

        public void Note(string? model, int rowsBefore)
        {
            if (model is not { Length: > 0 })
            {
                return;
            }

            if (_model is null && rowsBefore == 0)
            {
                _model = model;
            }
            else if (model != _model)
            {
                _agree = false;
            }
        }
    }
}
