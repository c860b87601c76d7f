using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// 0028_top_findings_per_model.sql rewrites dashboard_record_top_findings to read each model's thresholds once: on a
/// database at the schema before it, with two models (one with an active threshold set of inclusive thresholds, some
/// labels left to the global ones), global thresholds changed, probabilities equal to thresholds, ties, and rows with
/// fewer and more probabilities than labels, the view returns the same rows after the migration as before, in whole
/// and as the dashboard's "latest 50 of a run".
/// </summary>
public sealed class TopFindingsMigrationTests : ScratchDatabase
{
    private static readonly float[] Grid = [0.1f, 0.2f, 0.3f, 0.35f, 0.5f, 0.7f, 0.9f];

    [Fact]
    public async Task RewrittenViewReturnsWhatTheOldOneDid()
    {
        var rewrite = await ApplyMigrationsBeforeAsync("0028_top_findings_per_model.sql");

        var store = new RunStore(DataSource);
        var withSet = await Runs.SubmitAsync(store, TestModels.Descriptor("top-set-model"), "c", "p/", shardSize: 10);
        var global = await Runs.SubmitAsync(store, TestModels.Descriptor("top-global-model"), "c", "p/", shardSize: 10);
        var second = await Runs.SubmitAsync(store, TestModels.Descriptor("top-global-model"), "c", "q/", shardSize: 10);
        var random = new Random(1428);
        var at = new DateTime(2026, 12, 6, 6, 0, 0, DateTimeKind.Utc);
        var n = 0;
        foreach (var (run, model) in new[] { (withSet, "top-set-model"), (global, "top-global-model"), (second, "top-global-model") })
        {
            for (var i = 0; i < 60; i++)
            {
                // Most rows have the 164 labels' probabilities; some fewer (the labels past them have none), one more.
                var length = i % 10 == 3 ? 100 : i == 7 ? 170 : 164;
                var probabilities = new float[length];
                for (var j = 0; j < length; j++)
                {
                    probabilities[j] = random.Next(4) == 0 ? Grid[random.Next(Grid.Length)] : (float)random.NextDouble();
                }

                await Runs.InsertPre0027RowAsync(
                    DataSource, new ScoreRow(model, $"{run:N}/rec-{i:D3}", run, probabilities, [1f], 1, $"p/rec-{i}.hea", "\"e\"", at.AddSeconds(n++)));
            }
        }

        // Global thresholds for a few labels; an active set for one model: inclusive thresholds on the grid's values,
        // every third label left out (those keep the global threshold, strictly above).
        await ExecuteAsync("insert into label_thresholds (position, threshold) values (3, 0.2), (7, 0.9), (11, 0.35), (20, 0.7)");
        var setId = Guid.NewGuid();
        await ExecuteAsync(
            "insert into threshold_sets (set_id, model_id, name, version, rule, scores_source, labels_file, labels_sha256, cohort_size) " +
            $"values ('{setId}', 'top-set-model', 'youden', 1, 'youden', 'scores.parquet', 'labels.csv', repeat('0', 64), 100)");
        await ExecuteAsync(
            $"insert into threshold_set_labels (set_id, position, threshold) select '{setId}', position, " +
            "case when position % 3 = 0 then null else (array[0.1, 0.2, 0.3, 0.35, 0.5, 0.7, 0.9])[1 + position % 7] end from labels");
        await ExecuteAsync($"select threshold_set_activate('{setId}')");

        const string whole = "select model_id, record_id, run_id, scored_at, findings, codes, names, probabilities from dashboard_record_top_findings order by model_id, record_id";
        var latest = $"select record_id, codes, probabilities from dashboard_record_top_findings where run_id = '{global}' order by scored_at desc limit 50";
        var before = await RowsAsync(whole);
        var beforeLatest = await RowsAsync(latest);

        await ExecuteAsync(rewrite.Sql);

        Assert.Equal(before, await RowsAsync(whole));
        Assert.Equal(beforeLatest, await RowsAsync(latest));

        // The data set exercises what the rewrite must keep: rows with findings of both models, inclusive thresholds met
        // exactly, ties among a row's findings, and rows without findings.
        Assert.Equal(180, before.Count);
        Assert.Contains(before, r => (string)r[0]! == "top-set-model" && (int)r[4]! > 3);
        Assert.Contains(before, r => (string)r[0]! == "top-global-model" && (int)r[4]! > 3);
        Assert.Contains(before, r => ((float[])r[7]!).GroupBy(p => p).Any(g => g.Count() > 1));
        var exact = await RowsAsync(
            "select count(*) from scores s join dashboard_model_label_thresholds t on t.model_id = s.model_id " +
            "where t.inclusive and s.probabilities[t.position + 1] = t.threshold");
        Assert.True((long)exact[0][0]! > 0);
        Assert.Equal(50, beforeLatest.Count);
    }
}
