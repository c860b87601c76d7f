using System.Globalization;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Silo.Dashboard;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The flagged-records page served from a run's list of its highest rows per label (0033_run_label_top.sql) equals the
/// page read from the run's rows (<see cref="DashboardQueries.FlaggedRecordsScanAsync"/>, the query of before), row for
/// row and page by page through keyset paging: for a plain run, after threshold changes up and down, after rows replaced
/// from another source, for reused records, for rows written by plain SQL (which the list does not see: the page falls
/// back to the rows), on pages below the cut (read from the rows), for many rows tied on one probability (the cut a
/// position in page order, raised from the list as entries come), and for a run whose list is made while two writers
/// write it (the pass in the background, no writer held). Each case also says which way the page came.
/// </summary>
public sealed class RunLabelTopTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly DateTime At = new(2026, 12, 6, 8, 0, 0, DateTimeKind.Utc);

    // Labels of the test model: position 0 common (about half flagged at 0.5), 5 rare, 9 in between.
    private static readonly int[] Labels = [0, 5, 9];

    private static string Code(int position) => TestModels.LabelCodes.Value[position];

    [Fact]
    public async Task PlainRunPagesEqualTheScanAndDeepPagesFallBack()
    {
        var model = NewModel();
        var run = await SubmitAsync(model);
        var writer = new ResultWriter(database.DataSource) { FoldEvery = 2, TopListFrom = 1000 };
        await using var queries = new DashboardQueries(NpgsqlDataSource.Create(database.ConnectionString));

        // A new run has no list until a fold finds it with enough rows: its pages read the rows.
        Assert.Equal("pending", await StateAsync(run));
        await WriteAsync(writer, Rows(model, run, 0, 500, "\"v1\""));
        Assert.Equal("pending", await StateAsync(run));
        Assert.All(await AssertPagesEqualAsync(queries, run, Code(Labels[0]), 100), Assert.False);
        await WriteAsync(writer, Rows(model, run, 500, 2500, "\"v1\""));
        Assert.Equal("complete", await StateAsync(run));

        foreach (var label in Labels)
        {
            var listed = await AssertPagesEqualAsync(queries, run, Code(label), 100);
            Assert.True(listed[0], $"page 1 of label {label} came from the rows");
        }

        // At a threshold of 0.05 label 0 has about 2,850 flagged rows, more than its list holds: page 1 and the next
        // come from the list, the pages below its cut from the rows.
        try
        {
            await ExecuteAsync("insert into label_thresholds (position, threshold) values (0, 0.05)");
            var common = await AssertPagesEqualAsync(queries, run, Code(0), 100);
            Assert.Contains(false, common);
            Assert.True(common.Take(5).All(l => l));
        }
        finally
        {
            await ExecuteAsync("delete from label_thresholds");
        }

        // The fold moved the writer's batch rows into the indexed list and kept only entries at or above the cuts.
        Assert.Equal(0, await CountAsync("select count(*) from run_label_top_batches where run_id = @run", run));
        Assert.True(await CountAsync("select count(*) from run_label_top where run_id = @run", run) >= 1000 * Labels.Length);
        Assert.Equal(0, await CountAsync(
            "select count(*) from run_label_top e join run_label_top_cuts k using (run_id) where e.run_id = @run " +
            "and not run_label_top_at_or_above(e.probability, e.record_id, k.cuts[e.position + 1], k.cut_records[e.position + 1])",
            run));
        Assert.Equal(0, await MissingEntriesAsync(run));
    }

    [Fact]
    public async Task ThresholdChangesUpAndDownKeepThePagesEqual()
    {
        var model = NewModel();
        var run = await SubmitAsync(model);
        var writer = new ResultWriter(database.DataSource) { FoldEvery = 2, TopListFrom = 1000 };
        await WriteAsync(writer, Rows(model, run, 0, 2500, "\"v1\""));
        await using var queries = new DashboardQueries(NpgsqlDataSource.Create(database.ConnectionString));

        try
        {
            // Up: every flagged row is above the cut, so every page comes from the list.
            await ExecuteAsync($"insert into label_thresholds (position, threshold) values ({Labels[0]}, 0.97), ({Labels[2]}, 0.9)");
            Assert.All(await AssertPagesEqualAsync(queries, run, Code(Labels[0]), 50), Assert.True);
            await AssertPagesEqualAsync(queries, run, Code(Labels[2]), 50);

            // Down, below the cut: page 1 still from the list, the deep pages from the rows.
            await ExecuteAsync($"update label_thresholds set threshold = 0.01 where position in ({Labels[0]}, {Labels[2]})");
            var listed = await AssertPagesEqualAsync(queries, run, Code(Labels[0]), 100);
            Assert.True(listed[0]);
            Assert.Contains(false, listed);
            await AssertPagesEqualAsync(queries, run, Code(Labels[2]), 100);

            // An inclusive threshold set of the model (activated as `thresholds activate` does), its threshold for the
            // rare label a probability 40 rows have at or above it: every page from the list.
            var set = Guid.NewGuid();
            await ExecuteAsync(
                "insert into threshold_sets (set_id, model_id, name, version, rule, scores_source, labels_file, labels_sha256, cohort_size) " +
                $"values ('{set}', '{model}', 'review', 1, 'youden', 'test', 'labels.csv', repeat('a', 64), 10); " +
                $"insert into threshold_set_labels (set_id, position, threshold) select '{set}', {Labels[1]}, probabilities[{Labels[1] + 1}] " +
                $"from scores where run_id = '{run}' order by probabilities[{Labels[1] + 1}] desc offset 40 limit 1; " +
                $"select threshold_set_activate('{set}')");
            var flagged = await AssertPagesEqualAsync(queries, run, Code(Labels[1]), 10);
            Assert.All(flagged, Assert.True);
            Assert.True(flagged.Count >= 5);
        }
        finally
        {
            await ExecuteAsync("delete from label_thresholds");
        }
    }

    [Fact]
    public async Task ReplacedAndReusedRowsKeepEveryRunsPagesEqual()
    {
        var model = NewModel();
        var first = await SubmitAsync(model);
        var second = await SubmitAsync(model);
        var third = await SubmitAsync(model);
        var writer = new ResultWriter(database.DataSource) { FoldEvery = 3, TopListFrom = 1000 };
        await WriteAsync(writer, Rows(model, first, 0, 2500, "\"v1\""));

        // The third run reuses 300 records of the first (same source version): it counts their stored rows. Its
        // writes go through staging only (no fold of its own), so its list is made by a rebuild, as is the second's
        // before its first write; from then on the writer keeps both.
        await WriteAsync(writer, Rows(model, third, 0, 300, "\"v1\""));
        Assert.Equal(300, await CountAsync("select count(*) from run_reused_scores where run_id = @run", third));
        Assert.Equal("pending", await StateAsync(third));
        await ExecuteAsync($"select run_label_top_rebuild('{third}'); select run_label_top_rebuild('{second}')");
        Assert.Equal("complete", await StateAsync(second));

        // The second run scores 200 of them again from a changed blob, all near the top: their rows move to it with
        // new probabilities, which the third run (reusing them) now counts too, and the first no longer does.
        var replaced = Rows(model, second, 100, 200, "\"v2\"", high: true);
        await WriteAsync(writer, replaced);
        Assert.Equal(200, await CountAsync("select count(*) from scores where run_id = @run", second));

        await using var queries = new DashboardQueries(NpgsqlDataSource.Create(database.ConnectionString));
        foreach (var run in new[] { first, second, third })
        {
            foreach (var label in Labels)
            {
                var listed = await AssertPagesEqualAsync(queries, run, Code(label), 50);
                Assert.True(listed[0], $"page 1 of label {label} of run {run} came from the rows");
            }

            Assert.Equal(0, await MissingEntriesAsync(run));
        }

        // Rows deleted leave stale entries, which the page leaves out.
        await ExecuteAsync($"delete from scores where model_id = '{model}' and record_id in ('{model}-rec-00150', '{model}-rec-00151', '{model}-rec-02000')");
        foreach (var run in new[] { first, second, third })
        {
            Assert.True((await AssertPagesEqualAsync(queries, run, Code(Labels[0]), 50))[0]);
        }
    }

    [Fact]
    public async Task RowsWrittenByPlainSqlFallBackUntilTheListIsRebuilt()
    {
        var model = NewModel();
        var run = await SubmitAsync(model);
        var writer = new ResultWriter(database.DataSource) { FoldEvery = 2, TopListFrom = 1000 };
        await WriteAsync(writer, Rows(model, run, 0, 1500, "\"v1\""));
        await using var queries = new DashboardQueries(NpgsqlDataSource.Create(database.ConnectionString));
        Assert.True((await AssertPagesEqualAsync(queries, run, Code(Labels[0]), 50))[0]);

        // A row stored by plain SQL (no entries): the run's list is no longer complete and every page reads the rows.
        var row = Rows(model, run, 5000, 1, "\"v1\"", high: true)[0];
        await Runs.InsertPre0027RowAsync(database.DataSource, row);
        Assert.Equal("invalid", await StateAsync(run));
        Assert.All(await AssertPagesEqualAsync(queries, run, Code(Labels[0]), 50), Assert.False);

        // Writers keep no entries for it meanwhile; a rebuild makes it complete again, and the pages come from it.
        await WriteAsync(writer, Rows(model, run, 1500, 500, "\"v1\""));
        Assert.Equal(0, await CountAsync(
            $"select (select count(*) from run_label_top_batches b cross join lateral unnest(b.record_ids) r where b.run_id = @run and r >= '{model}-rec-01500') " +
            $"+ (select count(*) from run_label_top where run_id = @run and record_id >= '{model}-rec-01500')",
            run));
        await ExecuteAsync($"select run_label_top_rebuild('{run}')");
        Assert.Equal("complete", await StateAsync(run));
        Assert.Equal(0, await MissingEntriesAsync(run));
        foreach (var label in Labels)
        {
            Assert.True((await AssertPagesEqualAsync(queries, run, Code(label), 50))[0]);
        }

        // And a reuse row inserted by plain SQL marks the reusing run.
        var other = await SubmitAsync(model);
        await ExecuteAsync($"insert into run_reused_scores (run_id, model_id, record_id) values ('{other}', '{model}', '{row.RecordId}')");
        Assert.Equal("invalid", await StateAsync(other));
        Assert.Equal("complete", await StateAsync(run));
        await AssertPagesEqualAsync(queries, other, Code(Labels[0]), 50);
    }

    [Fact]
    public async Task RetriedBatchesThroughStagingKeepTheListComplete()
    {
        var model = NewModel();
        var run = await SubmitAsync(model);
        var writer = new ResultWriter(database.DataSource) { FoldEvery = 2, TopListFrom = 1000 };
        var rows = Rows(model, run, 0, 2000, "\"v1\"");
        await WriteAsync(writer, rows);

        // The same batches again (a retry after a crash, a rerun of its shards): the staging path, nothing new.
        await WriteAsync(writer, rows);
        Assert.Equal(2000, await CountAsync("select count(*) from scores where run_id = @run", run));
        await using var queries = new DashboardQueries(NpgsqlDataSource.Create(database.ConnectionString));
        foreach (var label in Labels)
        {
            Assert.True((await AssertPagesEqualAsync(queries, run, Code(label), 50))[0]);
        }

        Assert.Equal(0, await MissingEntriesAsync(run));
    }

    [Fact]
    public async Task TiedProbabilitiesPageThroughTheListAsTheScanDoes()
    {
        var model = NewModel();
        var run = await SubmitAsync(model);
        var writer = new ResultWriter(database.DataSource) { FoldEvery = 2, TopListFrom = 1000 };
        await using var queries = new DashboardQueries(NpgsqlDataSource.Create(database.ConnectionString));

        // Every probability one of three values per label: each label's top value is shared by about a third of the
        // rows. Record ids rise and page order puts the lowest first within a tie: once a cut is in the top value's
        // tie, no later row is above it.
        await WriteAsync(writer, Tied(model, run, 0, 2000));
        Assert.Equal("complete", await StateAsync(run));
        var cutsBefore = await CutsAsync(run);
        await WriteAsync(writer, Tied(model, run, 2000, 7000));

        // The list was made with the cut in the middle value's tie (about 670 rows at the top value); the entries added
        // since raised each label's cut into the top value's tie: no label keeps the whole tie (about 3,000 rows) nor
        // more than 3 x 1,000 entries.
        var cutsAfter = await CutsAsync(run);
        foreach (var label in Labels)
        {
            Assert.Equal(0.5f, cutsBefore[label].Probability);
            Assert.Equal(0.9f, cutsAfter[label].Probability);
            Assert.NotEqual("", cutsAfter[label].Record);
            Assert.InRange(await CountAsync($"select count(*) from run_label_top where run_id = @run and position = {label}", run), 1000, 3000);
        }

        Assert.Equal(0, await MissingEntriesAsync(run));

        // 3,000 more rows, about 1,000 of them in each label's top tie, all past the cut's record: no entry is sent.
        const string Entries = "select (select count(*) from run_label_top where run_id = @run) + " +
            "(select coalesce(sum(cardinality(positions)), 0) from run_label_top_batches where run_id = @run)";
        var entries = await CountAsync(Entries, run);
        await WriteAsync(writer, Tied(model, run, 9000, 3000));
        Assert.Equal(entries, await CountAsync(Entries, run));
        Assert.Equal(cutsAfter, await CutsAsync(run));
        Assert.Equal(0, await MissingEntriesAsync(run));
        try
        {
            // The global threshold at the middle value (exclusive): the flagged rows are the tie at the top value, more
            // than the list holds. Then the model's own set (inclusive) at the top value: the same rows, the threshold at
            // the cut's probability and the cut within the tie.
            await ExecuteAsync($"insert into label_thresholds (position, threshold) select p, 0.5 from unnest(array[{string.Join(", ", Labels)}]) p");
            for (var round = 0; round < 2; round++)
            {
                if (round == 1)
                {
                    var set = Guid.NewGuid();
                    await ExecuteAsync(
                        "insert into threshold_sets (set_id, model_id, name, version, rule, scores_source, labels_file, labels_sha256, cohort_size) " +
                        $"values ('{set}', '{model}', 'review', 1, 'youden', 'test', 'labels.csv', repeat('a', 64), 10); " +
                        $"insert into threshold_set_labels (set_id, position, threshold) select '{set}', p, 0.9 from unnest(array[{string.Join(", ", Labels)}]) p; " +
                        $"select threshold_set_activate('{set}')");
                }

                foreach (var label in Labels)
                {
                    var listed = await AssertPagesEqualAsync(queries, run, Code(label), 100);
                    Assert.True(listed[0], $"page 1 of label {label} came from the rows");
                    Assert.Contains(false, listed);
                }
            }
        }
        finally
        {
            await ExecuteAsync("delete from label_thresholds");
        }
    }

    [Fact]
    public async Task ListMadeWhileTwoWritersWriteMissesNoRow()
    {
        var model = NewModel();
        var run = await SubmitAsync(model);
        var first = new ResultWriter(database.DataSource) { FoldEvery = 2, TopListFrom = 1500 };
        var second = new ResultWriter(database.DataSource) { FoldEvery = 3, TopListFrom = 1500 };

        // Two writers, one run, their batches interleaved; the run passes 1,500 rows early on, and its list is made
        // (the pass in a writer's background task) while both go on writing.
        var rows = Rows(model, run, 0, 12000, "\"v1\"");
        await Task.WhenAll(
            WriteAsync(first, [.. rows.Where((_, i) => i / 256 % 2 == 0)]),
            WriteAsync(second, [.. rows.Where((_, i) => i / 256 % 2 == 1)]));
        await first.TopListPassesDoneAsync();
        await second.TopListPassesDoneAsync();
        Assert.Equal(12000, await CountAsync("select count(*) from scores where run_id = @run", run));
        Assert.Equal("complete", await StateAsync(run));
        Assert.Equal(0, await MissingEntriesAsync(run));

        await using var queries = new DashboardQueries(NpgsqlDataSource.Create(database.ConnectionString));
        try
        {
            // Every page at two thresholds, one with more flagged rows than the list holds.
            foreach (var threshold in new[] { 0.5f, 0.05f })
            {
                await ExecuteAsync("delete from label_thresholds");
                await ExecuteAsync(string.Create(
                    CultureInfo.InvariantCulture,
                    $"insert into label_thresholds (position, threshold) select p, {threshold}::real from unnest(array[{string.Join(", ", Labels)}]) p"));
                foreach (var label in Labels)
                {
                    Assert.True((await AssertPagesEqualAsync(queries, run, Code(label), 100))[0], $"page 1 of label {label} came from the rows");
                }
            }
        }
        finally
        {
            await ExecuteAsync("delete from label_thresholds");
        }
    }

    // Rows [start, start + count) whose probabilities take three values per label, 0.9, 0.5 and 0.1, in turn by record.
    private static List<ScoreRow> Tied(string model, Guid run, int start, int count) =>
    [
        .. Enumerable.Range(start, count).Select(i =>
        {
            var probabilities = Enumerable.Range(0, 164).Select(label => ((i * 7 + label) % 3) switch { 0 => 0.9f, 1 => 0.5f, _ => 0.1f }).ToArray();
            return new ScoreRow(model, $"{model}-rec-{i:D5}", run, probabilities, new float[16], 1, $"top/rec-{i}.npy", "\"v1\"", At.AddSeconds(i));
        }),
    ];

    // Per label position the run's cut: its probability and record ('' for the lowest).
    private async Task<Dictionary<int, (float Probability, string Record)>> CutsAsync(Guid run)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select g.i - 1, k.cuts[g.i], coalesce(k.cut_records[g.i], '') from run_label_top_cuts k " +
            "cross join generate_series(1, cardinality(k.cuts)) g (i) where k.run_id = @run and k.cuts[g.i] is not null");
        cmd.Parameters.AddWithValue("run", run);
        var cuts = new Dictionary<int, (float, string)>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            cuts[reader.GetInt32(0)] = (reader.GetFloat(1), reader.GetString(2));
        }

        return cuts;
    }

    // Walks every page of the label through keyset paging both ways; asserts they are equal and returns, per page,
    // whether it came from the list.
    private static async Task<List<bool>> AssertPagesEqualAsync(DashboardQueries queries, Guid run, string code, int pageSize)
    {
        var listed = new List<bool>();
        (float, string)? after = null;
        while (true)
        {
            var fromList = await queries.FlaggedRecordsFromListAsync(run, code, pageSize, after, CancellationToken.None);
            var scanned = await queries.FlaggedRecordsScanAsync(run, code, pageSize, after, CancellationToken.None);
            var served = await queries.FlaggedRecordsAsync(run, code, pageSize, after, CancellationToken.None);
            listed.Add(fromList is not null);
            Assert.Equal(Describe(scanned), Describe(served));
            if (fromList is not null)
            {
                Assert.Equal(Describe(scanned), Describe(fromList));
            }

            if (scanned.Count < pageSize)
            {
                return listed;
            }

            var last = scanned[^1];
            after = ((float)last["probability"]!, (string)last["record_id"]!);
        }
    }

    private static List<string> Describe(IReadOnlyList<Row> rows) =>
        [.. rows.Select(r => string.Join("|", r.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => c.Key + "=" + c.Value switch
        {
            float f => f.ToString("R", CultureInfo.InvariantCulture),
            DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
            _ => Convert.ToString(c.Value, CultureInfo.InvariantCulture),
        })))];

    // Rows the run counts with a probability at or above their label's cut that have no entry (batch rows or indexed).
    private Task<long> MissingEntriesAsync(Guid run) => CountAsync(
        "select count(*) from (" +
        "select (u.ord - 1)::smallint, u.p, x.record_id " +
        "from (select s.record_id, s.probabilities from scores s where s.run_id = @run " +
        "union all select s.record_id, s.probabilities from run_reused_scores r join scores s using (model_id, record_id) where r.run_id = @run) x " +
        "cross join lateral unnest(x.probabilities) with ordinality u (p, ord) " +
        "join run_label_top_cuts k on k.run_id = @run and k.state = 'complete' " +
        "where run_label_top_at_or_above(u.p, x.record_id, k.cuts[u.ord], k.cut_records[u.ord]) " +
        "except " +
        "select e.position, e.probability, e.record_id from run_label_top e where e.run_id = @run " +
        "except " +
        "select v.position, v.p, v.record_id from run_label_top_batches b " +
        "cross join lateral unnest(b.positions, b.record_ids, b.probabilities) v (position, record_id, p) where b.run_id = @run) missing",
        run);

    private static string NewModel() => "top-" + Guid.NewGuid().ToString("N")[..12];

    private async Task<Guid> SubmitAsync(string model) =>
        await Runs.SubmitAsync(new RunStore(database.DataSource), TestModels.Descriptor(model), "c", "top/", shardSize: 100);

    // Rows [start, start + count) of the model: per label a spread whose share above 0.5 falls with the label, with ties
    // (values on the grid, and repeated ones); high: every probability in the top percent.
    private static List<ScoreRow> Rows(string model, Guid run, int start, int count, string etag, bool high = false) =>
    [
        .. Enumerable.Range(start, count).Select(i =>
        {
            var random = new Random(i * 7919 + etag.Length * 31 + (high ? 1 : 0));
            var probabilities = Enumerable.Range(0, 164).Select(label =>
            {
                var u = random.NextSingle();
                var p = high ? 0.99f + u / 100f : MathF.Pow(u, 1 + label / 4f);
                return random.Next(10) == 0 ? MathF.Round(p * 1000) / 1000 : random.Next(10) == 0 ? MathF.Round(p * 20) / 20 : p;
            }).ToArray();
            return new ScoreRow(model, $"{model}-rec-{i:D5}", run, probabilities, new float[16], 1, $"top/rec-{i}.npy", etag, At.AddSeconds(i));
        }),
    ];

    // Writes the rows in batches of 512, then waits for the passes the writer started in the background (a run's list
    // made meanwhile).
    private static async Task WriteAsync(ResultWriter writer, List<ScoreRow> rows)
    {
        foreach (var batch in rows.Chunk(512))
        {
            await writer.WriteScoresAsync(batch);
        }

        await writer.TopListPassesDoneAsync();
    }

    private async Task<string?> StateAsync(Guid run)
    {
        await using var cmd = database.DataSource.CreateCommand("select state from run_label_top_cuts where run_id = @run");
        cmd.Parameters.AddWithValue("run", run);
        return (string?)await cmd.ExecuteScalarAsync();
    }

    private Task<long> CountAsync(string sql, Guid run) => Runs.CountAsync(database.DataSource, sql, run);

    private async Task ExecuteAsync(string sql)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
