using System.Globalization;
using HubertEcg.Inference.Evaluation;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Integration.Tests.Evaluation;

/// <summary>
/// <c>hubert-ecg evaluate</c> and <c>hubert-ecg thresholds</c> on real Postgres: the shared metrics cohort written as a
/// run's scores (through the workers' result writer), evaluated from the run and from its exports, and threshold sets
/// fitted, activated and seen by the dashboard's prevalence and findings views.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class EvaluationCommandsTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>, IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("hubert-evaluate-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private Task<(int Code, string Output, string Error)> CliAsync(params string[] args) =>
        CliHarness.RunAsync(database.ConnectionString, "UseDevelopmentStorage=true", args);

    /// <summary>A run of its own model holding the golden cohort's scores; returns the run and the scores as read from the file.</summary>
    private async Task<(Guid RunId, ScoreTable Scores)> GoldenRunAsync(string modelId)
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(modelId), "c", "p/", shardSize: 100);
        var scores = ScoreCsvReader.Read(MetricsGolden.File("scores.csv"));
        Assert.Equal(TestModels.LabelCodes.Value, scores.Codes);
        var writer = new ResultWriter(database.DataSource);
        var at = new DateTime(2026, 12, 1, 8, 0, 0, DateTimeKind.Utc);
        var batch = new List<ScoreRow>();
        for (var r = 0; r < scores.Count; r++)
        {
            var p = new float[scores.Codes.Count];
            for (var l = 0; l < p.Length; l++)
            {
                p[l] = scores.Get(l, r);
            }

            batch.Add(new ScoreRow(modelId, scores.RecordIds[r], runId, p, [0.25f], 1, scores.RecordIds[r] + ".hea", "\"e\"", at));
            if (batch.Count == 500)
            {
                await writer.WriteScoresAsync(batch);
                batch.Clear();
            }
        }

        await writer.WriteScoresAsync(batch);
        return (runId, scores);
    }

    private static void AssertMetricsFileMatchesExpected(string path)
    {
        var written = MetricsGolden.ReadCsv(path);
        var expected = MetricsGolden.ReadCsv(MetricsGolden.File("expected.csv"));
        Assert.Equal(expected[0], written[0]);
        Assert.Equal(expected.Count, written.Count);
        for (var r = 1; r < expected.Count; r++)
        {
            Assert.Equal(expected[r][0], written[r][0]);
            for (var c = 1; c < expected[r].Length; c++)
            {
                MetricsGolden.AssertCell(expected[r][c], written[r][c], $"{expected[r][0]} {expected[0][c]}");
            }
        }
    }

    [Fact]
    public async Task RunScoresAndTheirExportsMatchScikitLearnAndAreStored()
    {
        var (runId, _) = await GoldenRunAsync("evaluate-model");
        var fromRun = Path.Combine(dir, "from-run.csv");
        var (code, output, error) = await CliAsync("evaluate", "--run", runId.ToString(), "--labels", MetricsGolden.File("labels_long.csv"), "--out", fromRun);
        Assert.True(code == 0, error);
        Assert.Contains("cohort: 3000 records with scores and diagnoses; 0 scored records without diagnoses; 0 labelled records without a score", output, StringComparison.Ordinal);
        AssertMetricsFileMatchesExpected(fromRun);

        var evaluationId = Guid.Parse(output.Split("evaluation ")[1].Split(' ')[0], CultureInfo.InvariantCulture);
        await using (var cmd = database.DataSource.CreateCommand(
            "select e.model_id, e.run_id, e.labels_sha256, e.label_layout, e.cohort_size, count(l.*), " +
            "max(l.auroc) filter (where l.label_code = 'AVCR'), max(l.youden_threshold) filter (where l.label_code = 'LMI') " +
            "from evaluations e join evaluation_labels l using (evaluation_id) where e.evaluation_id = @id group by 1, 2, 3, 4, 5"))
        {
            cmd.Parameters.AddWithValue("id", evaluationId);
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal("evaluate-model", reader.GetString(0));
            Assert.Equal(runId, reader.GetGuid(1));
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(MetricsGolden.File("labels_long.csv")))), reader.GetString(2));
            Assert.Equal("long", reader.GetString(3));
            Assert.Equal(3000, reader.GetInt32(4));
            Assert.Equal(164L, reader.GetInt64(5));
            Assert.Equal(0.9824603069, reader.GetDouble(6), 1e-6);
            Assert.Equal(0.443f, reader.GetFloat(7));
        }

        foreach (var format in new[] { "csv", "parquet" })
        {
            var export = Path.Combine(dir, $"export.{format}");
            (code, _, error) = await CliAsync("results", "export", "--run", runId.ToString(), "--out", export);
            Assert.True(code == 0, error);
            var fromExport = Path.Combine(dir, $"from-{format}.csv");
            (code, _, error) = await CliAsync(
                "evaluate", "--scores", export, "--labels", MetricsGolden.File("labels_wide.csv"), "--out", fromExport, "--bootstrap", "20");
            Assert.True(code == 0, error);
            var written = MetricsGolden.ReadCsv(fromExport);
            Assert.Equal(["auroc_lo", "auroc_hi", "auprc_lo", "auprc_hi"], written[0][^4..]);
            var stripped = Path.Combine(dir, $"stripped-{format}.csv");
            File.WriteAllLines(stripped, written.Select(row => string.Join(',', row[..^4].Select(Quote))));
            AssertMetricsFileMatchesExpected(stripped);
        }

        // A labelled record the run has no score for is refused, naming its line.
        var extra = Path.Combine(dir, "extra.csv");
        File.WriteAllLines(extra, [.. File.ReadAllLines(MetricsGolden.File("labels_long.csv")), "cohort/missing/1,AF"]);
        (code, _, error) = await CliAsync("evaluate", "--run", runId.ToString(), "--labels", extra, "--out", Path.Combine(dir, "x.csv"), "--no-store");
        Assert.Equal(1, code);
        Assert.StartsWith($"error: extra.csv line 3002: record cohort/missing/1 has no score in run {runId}", error, StringComparison.Ordinal);
    }

    private static string Quote(string value) => value.Contains(',', StringComparison.Ordinal) ? $"\"{value}\"" : value;

    [Fact]
    public async Task ThresholdSetsRoundTripThroughFitActivateAndThePrevalenceView()
    {
        const string model = "threshold-model";
        var (runId, scores) = await GoldenRunAsync(model);
        var expected = MetricsGolden.ReadCsv(MetricsGolden.File("expected.csv"));
        var youden = expected.Skip(1).ToDictionary(
            r => r[0], r => r[10].Length == 0 ? (float?)null : float.Parse(r[10], CultureInfo.InvariantCulture));

        var (code, output, error) = await CliAsync(
            "thresholds", "fit", "--run", runId.ToString(), "--labels", MetricsGolden.File("labels_long.csv"), "--rule", "youden", "--name", "screening", "--exact");
        Assert.True(code == 0, error);
        Assert.Contains("threshold set 'screening' version 1", output, StringComparison.Ordinal);
        Assert.Contains("no threshold (rule not met; the label keeps the global one): SAB, ANMI", output, StringComparison.Ordinal);

        // Not active yet: the default 0.5, strictly above.
        var before = await PrevalenceAsync(runId);
        Assert.All(before, p => Assert.Equal((0.5f, true, false), (p.Threshold, p.IsDefault, p.Inclusive)));
        Assert.Equal(Count(scores, "AF", 0.5f, inclusive: false), before.Single(p => p.Code == "AF").Positive);

        (code, output, error) = await CliAsync("thresholds", "activate", "screening");
        Assert.True(code == 0, error);
        Assert.Contains("threshold set 'screening' version 1 is active for model threshold-model", output, StringComparison.Ordinal);

        var after = await PrevalenceAsync(runId);
        Assert.Equal(164, after.Count);
        foreach (var p in after)
        {
            if (youden[p.Code] is { } t)
            {
                Assert.Equal((t, false, true, "screening", 1), (p.Threshold, p.IsDefault, p.Inclusive, p.SetName, p.SetVersion));
                Assert.Equal(Count(scores, p.Code, t, inclusive: true), p.Positive);
            }
            else
            {
                Assert.Equal((0.5f, true, false, (string?)null), (p.Threshold, p.IsDefault, p.Inclusive, p.SetName));
                Assert.Equal(Count(scores, p.Code, 0.5f, inclusive: false), p.Positive);
            }

            Assert.Equal(3000L, p.Scored);
        }

        // A record written after activation counts against the set, at or above: AF exactly at its threshold.
        var af = scores.LabelIndex("AF");
        var afThreshold = youden["AF"]!.Value;
        var probabilities = new float[164];
        probabilities[af] = afThreshold;
        await new ResultWriter(database.DataSource).WriteScoresAsync(
            [new ScoreRow(model, "late/1", runId, probabilities, [0f], 1, "late/1.hea", "\"e\"", DateTime.UtcNow)]);
        Assert.Equal(Count(scores, "AF", afThreshold, inclusive: true) + 1, (await PrevalenceAsync(runId)).Single(p => p.Code == "AF").Positive);
        await using (var cmd = database.DataSource.CreateCommand("select code, threshold from dashboard_record_findings where model_id = @m and record_id = 'late/1'"))
        {
            cmd.Parameters.AddWithValue("m", model);
            await using var reader = await cmd.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(("AF", afThreshold), (reader.GetString(0), reader.GetFloat(1)));
            Assert.False(await reader.ReadAsync());
        }

        // A second version with another rule, activated by name and version; list shows which is active; export writes it.
        (code, output, error) = await CliAsync(
            "thresholds", "fit", "--run", runId.ToString(), "--labels", MetricsGolden.File("labels_wide.csv"), "--rule", "sensitivity=0.9", "--name", "screening", "--exact");
        Assert.True(code == 0, error);
        Assert.Contains("threshold set 'screening' version 2", output, StringComparison.Ordinal);
        (code, output, error) = await CliAsync("thresholds", "activate", "screening", "--version", "2", "--model", model);
        Assert.True(code == 0, error);
        (code, output, _) = await CliAsync("thresholds", "list", "--model", model);
        Assert.Equal(0, code);
        var listed = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split('\t')).ToList();
        Assert.Equal([("1", "-", "youden"), ("2", "active", "sensitivity=0.9")], listed.Select(l => (l[2], l[3], l[4])));

        var exported = Path.Combine(dir, "set.csv");
        (code, _, error) = await CliAsync("thresholds", "export", "screening", "--out", exported);
        Assert.True(code == 0, error);
        var rows = MetricsGolden.ReadCsv(exported);
        Assert.Equal(["label_code", "position", "threshold"], rows[0]);
        Assert.Equal(165, rows.Count);
        var afRow = rows.Single(r => r[0] == "AF");
        var afSensitive = float.Parse(afRow[2], CultureInfo.InvariantCulture);
        Assert.True(afSensitive <= afThreshold);
        var v2 = await PrevalenceAsync(runId);
        Assert.Equal(afSensitive, v2.Single(p => p.Code == "AF").Threshold);
        Assert.Equal(Count(scores, "AF", afSensitive, inclusive: true) + (afThreshold >= afSensitive ? 1 : 0), v2.Single(p => p.Code == "AF").Positive);
        Assert.Equal(2, v2.Single(p => p.Code == "AF").SetVersion);

        // Without --exact the thresholds are on the 1/1000 grid: the set activates from the bucket counts (no note) and
        // the dashboard counts at or above each of them exactly.
        (code, output, error) = await CliAsync(
            "thresholds", "fit", "--run", runId.ToString(), "--labels", MetricsGolden.File("labels_long.csv"), "--rule", "youden", "--name", "grid", "--activate");
        Assert.True(code == 0, error);
        Assert.Contains("on the 1/1000 grid", output, StringComparison.Ordinal);
        Assert.DoesNotContain("off the 1/1000 grid", output, StringComparison.Ordinal);
        var onGrid = await PrevalenceAsync(runId);
        var gridThresholds = onGrid.Where(p => p.SetName == "grid").ToList();
        Assert.NotEmpty(gridThresholds);
        foreach (var p in gridThresholds)
        {
            Assert.Equal(p.Threshold, ThresholdGrid.Threshold((int)Math.Round(p.Threshold * 1000.0)));
            // The golden rows, and the record written after the first activation (AF at its exact threshold, 0 elsewhere).
            Assert.Equal(Count(scores, p.Code, p.Threshold, inclusive: true) + (probabilities[scores.LabelIndex(p.Code)] >= p.Threshold ? 1 : 0), p.Positive);
        }
    }

    private static long Count(ScoreTable scores, string code, float threshold, bool inclusive)
    {
        var label = scores.LabelIndex(code);
        long n = 0;
        for (var r = 0; r < scores.Count; r++)
        {
            var p = scores.Get(label, r);
            if (inclusive ? p >= threshold : p > threshold)
            {
                n++;
            }
        }

        return n;
    }

    private sealed record Prevalence(string Code, float Threshold, bool IsDefault, bool Inclusive, string? SetName, int? SetVersion, long Scored, long Positive);

    private async Task<List<Prevalence>> PrevalenceAsync(Guid runId)
    {
        await using var cmd = database.DataSource.CreateCommand(
            "select code, threshold, threshold_is_default, threshold_inclusive, threshold_set_name, threshold_set_version, records_scored, records_positive " +
            "from dashboard_label_prevalence where run_id = @run order by position");
        cmd.Parameters.Add(new NpgsqlParameter("run", NpgsqlDbType.Uuid) { Value = runId });
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<Prevalence>();
        while (await reader.ReadAsync())
        {
            rows.Add(new Prevalence(
                reader.GetString(0), reader.GetFloat(1), reader.GetBoolean(2), reader.GetBoolean(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetInt32(5), reader.GetInt64(6), reader.GetInt64(7)));
        }

        return rows;
    }
}
