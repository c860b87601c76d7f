using System.Globalization;
using System.Text.Json;
using HubertEcg.Client.Results;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;
using Parquet;
using Parquet.Schema;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// <c>results export</c> at scale (issue 14): the documented order (the run's own rows by scored time, then the rows it
/// reused, by record id), each record once, a query plan with no sort of the run, Parquet row groups cut by size, the
/// list layout (probabilities and embedding as list columns, the label codes in the metadata) and the wide one (a
/// column per label), each reading back bit for bit.
/// </summary>
public sealed class ResultsExportTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private const int Hidden = 16;

    [Fact]
    public async Task ListLayoutHoldsProbabilitiesAndEmbeddingAsListColumnsEqualToTheStoredFloatsWithTheCodesInTheMetadata()
    {
        var (runId, rows) = await WriteSpecialRowsAsync("export-list");
        var labels = TestModels.LabelCodes.Value.Count;
        var path = Path.Combine(Path.GetTempPath(), $"hubert-export-{Guid.NewGuid():N}.parquet");
        try
        {
            // About 5 rows of 52 + 4 x (164 + 16) bytes fit in 4 KB: the 38 rows take 8 groups.
            var summary = await ResultsExport.ExportAsync(
                database.DataSource, runId, path, new ExportOptions(WithEmbedding: true, RowGroupBytes: 4096), CancellationToken.None);
            Assert.Equal((38L, labels, Hidden), (summary.Rows, summary.LabelColumns, summary.EmbeddingColumns));

            await using var stream = File.OpenRead(path);
            await using var reader = await ParquetReader.CreateAsync(stream);
            Assert.Equal(summary.RowGroups, reader.RowGroupCount);
            Assert.True(reader.RowGroupCount >= 7, $"{reader.RowGroupCount} row groups");

            // Top level: the 7 fixed columns, then two lists of float; the codes, layout and run in the metadata.
            var top = reader.Schema.Fields;
            Assert.Equal(["record_id", "model_id", "run_id", "windows_used", "source_blob", "source_etag", "scored_at", "probabilities", "embedding"], top.Select(f => f.Name));
            var probabilityElement = ListElement(top[7]);
            var embeddingElement = ListElement(top[8]);
            Assert.Equal(TestModels.LabelCodes.Value, JsonSerializer.Deserialize<string[]>(reader.CustomMetadata["hubert_ecg.label_codes"]));
            Assert.Equal("list", reader.CustomMetadata["hubert_ecg.layout"]);
            Assert.Equal(runId.ToString(), reader.CustomMetadata["hubert_ecg.run_id"]);

            var exported = new List<(string Record, float[] Probabilities, float[] Embedding)>();
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var n = (int)group.RowCount;
                Assert.InRange(n, 1, 5);
                var ids = new string?[n];
                await group.ReadAsync((DataField)top[0], ids.AsMemory());
                var probabilities = await ReadListAsync(group, probabilityElement, n, labels);
                var embeddings = await ReadListAsync(group, embeddingElement, n, Hidden);
                exported.AddRange(Enumerable.Range(0, n).Select(r => (ids[r]!, probabilities[r], embeddings[r])));
            }

            AssertRowsEqual(rows, exported);

            // The evaluation reads the same file: the codes from the metadata, every probability as stored.
            var table = await HubertEcg.Client.Evaluation.ScoreSources.ReadParquetAsync(path, CancellationToken.None);
            Assert.Equal(38, table.Count);
            Assert.Equal(TestModels.LabelCodes.Value, table.Codes);
            AssertTableEqual(rows, table);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task WideLayoutHasAFloatColumnPerLabelCodeAndTheEmbeddingAsOneListColumnEqualToTheStoredFloats()
    {
        var (runId, rows) = await WriteSpecialRowsAsync("export-wide");
        var labels = TestModels.LabelCodes.Value.Count;
        var path = Path.Combine(Path.GetTempPath(), $"hubert-export-{Guid.NewGuid():N}.parquet");
        try
        {
            var summary = await ResultsExport.ExportAsync(
                database.DataSource, runId, path, new ExportOptions(true, ParquetLayout.Wide, 4096), CancellationToken.None);
            Assert.Equal((38L, labels, Hidden), (summary.Rows, summary.LabelColumns, summary.EmbeddingColumns));

            await using var stream = File.OpenRead(path);
            await using var reader = await ParquetReader.CreateAsync(stream);
            Assert.Equal(summary.RowGroups, reader.RowGroupCount);
            Assert.True(reader.RowGroupCount >= 7, $"{reader.RowGroupCount} row groups");

            // Top level: 7 fixed columns, a float per label, then one list column.
            var top = reader.Schema.Fields;
            Assert.Equal(7 + labels + 1, top.Count);
            Assert.Equal(TestModels.LabelCodes.Value, top.Skip(7).Take(labels).Select(f => f.Name));
            Assert.Equal("embedding", top[^1].Name);
            var element = ListElement(top[^1]);
            Assert.Equal("wide", reader.CustomMetadata["hubert_ecg.layout"]);
            Assert.Equal(TestModels.LabelCodes.Value, JsonSerializer.Deserialize<string[]>(reader.CustomMetadata["hubert_ecg.label_codes"]));
            var record = (DataField)top[0];
            var labelFields = top.Skip(7).Take(labels).Cast<DataField>().ToArray();

            var exported = new List<(string Record, float[] Probabilities, float[] Embedding)>();
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var n = (int)group.RowCount;
                Assert.InRange(n, 1, 5);
                var ids = new string?[n];
                await group.ReadAsync(record, ids.AsMemory());
                var probabilities = new float[labels][];
                for (var l = 0; l < labels; l++)
                {
                    probabilities[l] = new float[n];
                    await group.ReadAsync<float>(labelFields[l], probabilities[l].AsMemory());
                }

                var embeddings = await ReadListAsync(group, element, n, Hidden);
                exported.AddRange(Enumerable.Range(0, n).Select(r => (ids[r]!, probabilities.Select(column => column[r]).ToArray(), embeddings[r])));
            }

            AssertRowsEqual(rows, exported);

            // The evaluation reads the same file: labels only, the list column is not taken for one.
            var table = await HubertEcg.Client.Evaluation.ScoreSources.ReadParquetAsync(path, CancellationToken.None);
            Assert.Equal(38, table.Count);
            Assert.Equal(TestModels.LabelCodes.Value, table.Codes);
            AssertTableEqual(rows, table);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// 37 rows through the result writer and one as written before 0027 (embedding as real[]), with floats whose text
    /// or arithmetic could lose bits: negative zero, subnormals, extremes, values next to 0 and 1; in scored order.
    /// </summary>
    private async Task<(Guid RunId, List<ScoreRow> Rows)> WriteSpecialRowsAsync(string model)
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model, Hidden), "c", model + "/", shardSize: 10);
        var labels = TestModels.LabelCodes.Value.Count;
        float[] probabilitySpecials = [0f, float.Epsilon, 1.17549435e-38f, 0.99999994f, 1f, 0.1f, 1f / 3];
        float[] embeddingSpecials = [-0f, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue, 0.99999994f, 1.17549435e-38f, 0.1f, -1f / 3];
        var random = new Random(14);
        var start = new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
        var rows = Enumerable.Range(0, 37).Select(i => new ScoreRow(
            model, $"rec{i:D3}", runId,
            Enumerable.Range(0, labels).Select(l => (i + l) % 7 == 0 ? probabilitySpecials[(i + l) % probabilitySpecials.Length] : random.NextSingle()).ToArray(),
            Enumerable.Range(0, Hidden).Select(h => (i * Hidden + h) % 5 == 0 ? embeddingSpecials[(i + h) % embeddingSpecials.Length] : (random.NextSingle() - 0.5f) * 1e3f).ToArray(),
            1, $"{model}/rec{i:D3}.npy", "0x1", start.AddMilliseconds(i))).ToList();
        Assert.Equal(rows.Count, await new ResultWriter(database.DataSource).WriteScoresAsync(rows));

        // A row as written before 0027_packed_embeddings.sql: the embedding as real[], nothing packed.
        var legacy = rows[0] with { RecordId = "rec037", SourceBlob = $"{model}/rec037.npy", ScoredAt = start.AddMilliseconds(37), Embedding = [.. rows[1].Embedding.Reverse()] };
        await Runs.InsertPre0027RowAsync(database.DataSource, legacy);
        rows.Add(legacy);
        return (runId, rows);
    }

    private static DataField ListElement(Field field)
    {
        var list = Assert.IsType<ListField>(field);
        var element = Assert.IsType<DataField>(list.Item, exactMatch: false);
        Assert.Equal(typeof(float), element.ClrType);
        return element;
    }

    /// <summary>A list column of a group, every row's list of exactly <paramref name="length"/> values, none missing.</summary>
    private static async Task<float[][]> ReadListAsync(ParquetRowGroupReader group, DataField element, int rows, int length)
    {
        Assert.Equal(rows * length, group.GetMetadata(element)?.MetaData?.NumValues);
        var values = new float[rows * length];
        var repetitions = new int[rows * length];
        var definitions = new int[rows * length];
        await group.ReadRawAsync<float>(element, values.AsMemory(), definitions.AsMemory(), repetitions.AsMemory());
        Assert.All(definitions, d => Assert.Equal(element.MaxDefinitionLevel, d));
        Assert.Equal(rows, repetitions.Count(r => r == 0));
        return Enumerable.Range(0, rows).Select(r =>
        {
            Assert.Equal(0, repetitions[r * length]);
            return values.AsSpan(r * length, length).ToArray();
        }).ToArray();
    }

    // Own rows in scored order, which here is record order; every float bit for bit, packed or not.
    private static void AssertRowsEqual(List<ScoreRow> rows, List<(string Record, float[] Probabilities, float[] Embedding)> exported)
    {
        Assert.Equal(rows.Select(r => r.RecordId), exported.Select(e => e.Record));
        for (var i = 0; i < rows.Count; i++)
        {
            Assert.Equal(Bits(rows[i].Probabilities), Bits(exported[i].Probabilities));
            Assert.Equal(Bits(rows[i].Embedding), Bits(exported[i].Embedding));
        }
    }

    private static void AssertTableEqual(List<ScoreRow> rows, HubertEcg.Inference.Evaluation.ScoreTable table)
    {
        foreach (var row in rows)
        {
            Assert.True(table.TryGetRow(row.RecordId, out var r), row.RecordId);
            Assert.Equal(Bits(row.Probabilities), Bits(Enumerable.Range(0, row.Probabilities.Length).Select(l => table.Get(l, r)).ToArray()));
        }
    }

    [Theory]
    [InlineData(".csv")]
    [InlineData(".parquet")]
    public async Task RowsComeInTheDocumentedOrderOwnByScoredTimeThenReusedByRecordEachOnce(string extension)
    {
        var model = "export-order" + extension.TrimStart('.');
        var store = new RunStore(database.DataSource);
        var first = await Runs.SubmitAsync(store, TestModels.Descriptor(model, Hidden), "c", model + "/", shardSize: 10, name: "first");
        var second = await Runs.SubmitAsync(store, TestModels.Descriptor(model, Hidden), "c", model + "/", shardSize: 10, name: "second");
        var writer = new ResultWriter(database.DataSource);
        var start = new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
        ScoreRow Row(Guid run, string record, int minute) => new(
            model, record, run, Enumerable.Repeat(0.25f, TestModels.LabelCodes.Value.Count).ToArray(), Enumerable.Repeat(1f, Hidden).ToArray(),
            1, $"{model}/{record}.npy", "0x1", start.AddMinutes(minute));

        // The first run scores r0 .. r7, shards finishing out of record order.
        int[] firstOrder = [5, 2, 7, 0, 3, 6, 1, 4];
        foreach (var (r, minute) in firstOrder.Select((r, i) => (r, i)))
        {
            Assert.Equal(1, await writer.WriteScoresAsync([Row(first, $"r{r}", minute)]));
        }

        // The second run scores three new records (x2, x0, x1 in that time order) and finds r6, r1, r4 and r3 current
        // (written again, no new row: reused). r6 twice, as after a retried shard.
        Assert.Equal(1, await writer.WriteScoresAsync([Row(second, "x2", 100)]));
        Assert.Equal(0, await writer.WriteScoresAsync([Row(second, "r6", 101), Row(second, "r1", 101)]));
        Assert.Equal(1, await writer.WriteScoresAsync([Row(second, "x0", 102)]));
        Assert.Equal(0, await writer.WriteScoresAsync([Row(second, "r4", 103), Row(second, "r6", 103)]));
        Assert.Equal(1, await writer.WriteScoresAsync([Row(second, "x1", 104)]));
        Assert.Equal(0, await writer.WriteScoresAsync([Row(second, "r3", 105)]));
        Assert.Equal(4, await Runs.CountAsync(database.DataSource, "select count(*) from run_reused_scores where run_id = @run", second));

        var path = Path.Combine(Path.GetTempPath(), $"hubert-export-{Guid.NewGuid():N}{extension}");
        try
        {
            var summary = await ResultsExport.ExportAsync(database.DataSource, second, path);
            var exported = extension == ".csv" ? ReadCsv(path) : await ReadParquetAsync(path);
            Assert.Equal(7, summary.Rows);
            string[] expectedRecords = ["x2", "x0", "x1", "r1", "r3", "r4", "r6"];
            Assert.Equal(expectedRecords, exported.Select(e => e.Record));
            Assert.Equal(
                [second, second, second, first, first, first, first],
                exported.Select(e => e.Run));

            // The first run's own rows: scored order, not record order.
            summary = await ResultsExport.ExportAsync(database.DataSource, first, path);
            Assert.Equal(8, summary.Rows);
            Assert.Equal(firstOrder.Select(r => $"r{r}"), (extension == ".csv" ? ReadCsv(path) : await ReadParquetAsync(path)).Select(e => e.Record));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(".csv", true)]
    [InlineData(".csv", false)]
    [InlineData(".parquet", true)]
    [InlineData(".parquet", false)]
    public async Task AnExportThatFailsPartWayNamesTheRecordLeavesNoPartialFileAndKeepsAnEarlierFile(string extension, bool earlierFile)
    {
        var model = "export-fail" + extension.TrimStart('.') + (earlierFile ? "-kept" : "-new");
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model, Hidden), "c", model + "/", shardSize: 10);
        var start = new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
        var rows = Enumerable.Range(0, 40).Select(i => new ScoreRow(
            model, $"f{i:D3}", runId, Enumerable.Repeat(0.5f, TestModels.LabelCodes.Value.Count).ToArray(), Enumerable.Repeat(1f, Hidden).ToArray(),
            1, $"{model}/f{i:D3}.npy", "0x1", start.AddSeconds(i))).ToList();
        Assert.Equal(40, await new ResultWriter(database.DataSource).WriteScoresAsync(rows));

        // A row scored after the others (so it comes last) with 3 probabilities where the model has 164, as a row
        // written by hand might be: the export reads the 40 rows (several Parquet groups of 4 KB) before it.
        await using (var bad = database.DataSource.CreateCommand(
            "insert into scores (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at) " +
            "values (@model, 'f999', @run, '{0.1,0.2,0.3}', @embedding, 1, 'x/f999.npy', '0x1', @at)"))
        {
            bad.Parameters.AddWithValue("model", model);
            bad.Parameters.AddWithValue("run", runId);
            bad.Parameters.AddWithValue("embedding", Enumerable.Repeat(1f, Hidden).ToArray());
            bad.Parameters.AddWithValue("at", start.AddHours(1));
            Assert.Equal(1, await bad.ExecuteNonQueryAsync());
        }

        var directory = Path.Combine(Path.GetTempPath(), $"hubert-export-fail-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "run" + extension);
        try
        {
            if (earlierFile)
            {
                await File.WriteAllTextAsync(path, "an earlier export");
            }

            var error = await Assert.ThrowsAsync<InvalidDataException>(() => ResultsExport.ExportAsync(
                database.DataSource, runId, path, new ExportOptions(WithEmbedding: true, RowGroupBytes: 4096), CancellationToken.None));
            Assert.Contains("f999", error.Message);
            Assert.Contains("3 probabilities", error.Message);

            // Nothing of the failed export is left: no temporary file, and the path as it was before.
            var left = Directory.GetFiles(directory).Select(f => Path.GetFileName(f)!).ToArray();
            if (earlierFile)
            {
                Assert.Equal(["run" + extension], left);
                Assert.Equal("an earlier export", await File.ReadAllTextAsync(path));
            }
            else
            {
                Assert.Empty(left);
            }

            // Without the bad row the same export completes and replaces the earlier file.
            await using (var delete = database.DataSource.CreateCommand("delete from scores where model_id = @model and record_id = 'f999'"))
            {
                delete.Parameters.AddWithValue("model", model);
                Assert.Equal(1, await delete.ExecuteNonQueryAsync());
            }

            var summary = await ResultsExport.ExportAsync(
                database.DataSource, runId, path, new ExportOptions(WithEmbedding: true, RowGroupBytes: 4096), CancellationToken.None);
            Assert.Equal(40, summary.Rows);
            Assert.Equal(["run" + extension], Directory.GetFiles(directory).Select(f => Path.GetFileName(f)!).ToArray());
            var exported = extension == ".csv" ? ReadCsv(path) : await ReadParquetAsync(path);
            Assert.Equal(rows.Select(r => r.RecordId), exported.Select(e => e.Record));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task AParquetExportToANamedPipeThatFailsPartWayEndsWithoutItsFooterAndLeavesThePipe()
    {
        var model = "export-fail-pipe";
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model, Hidden), "c", model + "/", shardSize: 10);
        var start = new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
        var rows = Enumerable.Range(0, 40).Select(i => new ScoreRow(
            model, $"p{i:D3}", runId, Enumerable.Repeat(0.5f, TestModels.LabelCodes.Value.Count).ToArray(), Enumerable.Repeat(1f, Hidden).ToArray(),
            1, $"{model}/p{i:D3}.npy", "0x1", start.AddSeconds(i))).ToList();
        Assert.Equal(40, await new ResultWriter(database.DataSource).WriteScoresAsync(rows));
        var directory = Path.Combine(Path.GetTempPath(), $"hubert-export-pipe-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var pipe = Path.Combine(directory, "run.parquet");
        try
        {
            using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [pipe]))
            {
                await mkfifo.WaitForExitAsync();
                Assert.Equal(0, mkfifo.ExitCode);
            }

            // A complete export through the pipe first: the bytes read end with the footer's magic.
            var read = Task.Run(() => File.ReadAllBytesAsync(pipe));
            var summary = await ResultsExport.ExportAsync(database.DataSource, runId, pipe, new ExportOptions(RowGroupBytes: 4096), CancellationToken.None);
            var bytes = await read;
            Assert.Equal(40, summary.Rows);
            Assert.Equal("PAR1"u8.ToArray(), bytes[^4..]);

            await using (var bad = database.DataSource.CreateCommand(
                "insert into scores (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at) " +
                "values (@model, 'p999', @run, '{0.1,0.2,0.3}', @embedding, 1, 'x/p999.npy', '0x1', @at)"))
            {
                bad.Parameters.AddWithValue("model", model);
                bad.Parameters.AddWithValue("run", runId);
                bad.Parameters.AddWithValue("embedding", Enumerable.Repeat(1f, Hidden).ToArray());
                bad.Parameters.AddWithValue("at", start.AddHours(1));
                Assert.Equal(1, await bad.ExecuteNonQueryAsync());
            }

            read = Task.Run(() => File.ReadAllBytesAsync(pipe));
            var error = await Assert.ThrowsAsync<InvalidDataException>(() => ResultsExport.ExportAsync(
                database.DataSource, runId, pipe, new ExportOptions(RowGroupBytes: 4096), CancellationToken.None));
            Assert.Contains("p999", error.Message);
            bytes = await read;

            // Row groups went through the pipe, but no footer: a reader takes the stream for the broken file it is.
            Assert.Equal("PAR1"u8.ToArray(), bytes[..4]);
            Assert.True(bytes.Length > 4096, $"{bytes.Length} bytes");
            Assert.NotEqual("PAR1"u8.ToArray(), bytes[^4..]);
            Assert.Equal(["run.parquet"], Directory.GetFiles(directory).Select(f => Path.GetFileName(f)!).ToArray());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task TheExportQueriesFollowIndexesEvenWhereThePlannerWouldRatherSort()
    {
        var model = "export-plan";
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model, Hidden), "c", model + "/", shardSize: 10);
        var rows = Enumerable.Range(0, 200).Select(i => new ScoreRow(
            model, $"p{i:D4}", runId, Enumerable.Repeat(0.5f, TestModels.LabelCodes.Value.Count).ToArray(), Enumerable.Repeat(0f, Hidden).ToArray(),
            1, $"{model}/p{i:D4}.npy", "0x1", new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(-i))).ToList();
        await new ResultWriter(database.DataSource).WriteScoresAsync(rows);
        await using (var analyze = database.DataSource.CreateCommand("analyze scores; analyze run_reused_scores"))
        {
            await analyze.ExecuteNonQueryAsync();
        }

        // Random reads made very dear, as on a big table whose run is most of it: the planner's own choice is a
        // sequential scan and a sort (checked first, so the test shows the settings matter), the export's is not.
        foreach (var withEmbedding in new[] { false, true })
        {
            foreach (var sql in ResultsExport.RunRowsQueries(withEmbedding))
            {
                Assert.Contains("Sort", await PlanAsync(sql, runId, ResultsExport.PlannerSettings, exportSettings: false));
                var plan = await PlanAsync(sql, runId, ResultsExport.PlannerSettings, exportSettings: true);
                Assert.DoesNotContain("Sort", plan);
                Assert.Contains("Index", plan);
            }
        }
    }

    private async Task<string> PlanAsync(string sql, Guid runId, string settings, bool exportSettings)
    {
        await using var connection = await database.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var set = new NpgsqlCommand("set local random_page_cost = 100000; set local enable_bitmapscan = off" + (exportSettings ? "; " + settings : ""), connection, transaction))
        {
            await set.ExecuteNonQueryAsync();
        }

        await using var explain = new NpgsqlCommand("explain " + sql, connection, transaction);
        explain.Parameters.AddWithValue("run", runId);
        var lines = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                lines.Add(reader.GetString(0));
            }
        }

        return string.Join('\n', lines);
    }

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    private static List<(string Record, Guid Run)> ReadCsv(string path) =>
        File.ReadAllLines(path).Skip(1).Select(l => l.Split(',')).Select(c => (c[0], Guid.Parse(c[2]))).ToList();

    private static async Task<List<(string Record, Guid Run)>> ReadParquetAsync(string path)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        var fields = reader.Schema.Fields.OfType<DataField>().ToArray();
        var result = new List<(string, Guid)>();
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var ids = new string?[group.RowCount];
            var runs = new string?[group.RowCount];
            await group.ReadAsync(fields.Single(f => f.Name == "record_id"), ids.AsMemory());
            await group.ReadAsync(fields.Single(f => f.Name == "run_id"), runs.AsMemory());
            result.AddRange(ids.Zip(runs, (id, run) => (id!, Guid.Parse(run!, CultureInfo.InvariantCulture))));
        }

        return result;
    }
}
