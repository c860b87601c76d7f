using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Npgsql;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// Upgrading a database that already holds scores: the dashboard migration builds its summaries from the rows
/// present, and they match what the triggers then maintain for new rows.
/// </summary>
public sealed class DashboardMigrationTests : ScratchDatabase
{
    [Fact]
    public async Task MigrationSummarisesRowsWrittenBeforeIt()
    {
        var dashboard = await ApplyMigrationsBeforeAsync("0010_dashboard.sql");

        var store = new RunStore(DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("upgrade-model"), "c", "p/", shardSize: 10);
        // Rows written before the dashboard existed, as that schema's writer stored them (plain inserts: today's writer
        // also needs the tables of later migrations).
        var at = new DateTime(2026, 11, 20, 23, 59, 30, DateTimeKind.Utc);
        foreach (var row in Enumerable.Range(0, 6).Select(i => Row(runId, $"before-{i}", at.AddSeconds(10 * i), i % 2 == 0 ? 0.8f : 0.2f)))
        {
            await Runs.InsertPre0027RowAsync(DataSource, row);
        }

        await using (var quarantine = DataSource.CreateCommand(
            "insert into quarantine (run_id, record_id, shard_no, source_blob, reason, quarantined_at) values (@run, 'bad', 0, 'p/bad.hea', 'blob: truncated file', @at)"))
        {
            quarantine.Parameters.AddWithValue("run", runId);
            quarantine.Parameters.AddWithValue("at", at);
            await quarantine.ExecuteNonQueryAsync();
        }

        await ExecuteAsync(dashboard.Sql);
        foreach (var migration in SchemaMigrator.Migrations.Where(m => string.CompareOrdinal(m.Version, dashboard.Version) > 0))
        {
            await ExecuteAsync(migration.Sql);
        }

        await new ResultWriter(DataSource).WriteScoresAsync([Row(runId, "after", at.AddSeconds(90), 0.9f)]);

        var minutes = await RowsAsync(
            $"select minute, records_scored, records_quarantined from run_progress_minutes where run_id = '{runId}' order by minute");
        Assert.Equal(
            [
                [at.AddSeconds(-30), 3L, 1L], // 23:59:30, :40, :50 and the quarantined record
                [at.AddSeconds(30), 3L, 0L], // 00:00:00, :10, :20
                [at.AddSeconds(90), 1L, 0L], // written after the migration
            ],
            minutes);

        var workers = await RowsAsync(
            $"select worker, sum(records_scored)::bigint from worker_progress_minutes where run_id = '{runId}' group by worker order by worker");
        Assert.Equal([["(before dashboard)", 6L], ["(unattributed)", 1L]], workers);

        var prevalence = await RowsAsync(
            $"select records_scored, records_positive, prevalence from dashboard_label_prevalence where run_id = '{runId}' and position = 50");
        Assert.Equal([[7L, 4L, 4 / 7.0]], prevalence);
    }

    private static ScoreRow Row(Guid runId, string recordId, DateTime at, float af)
    {
        var probabilities = new float[164];
        probabilities[50] = af;
        return new ScoreRow("upgrade-model", recordId, runId, probabilities, [1f], 1, $"p/{recordId}.hea", "\"e\"", at);
    }
}
