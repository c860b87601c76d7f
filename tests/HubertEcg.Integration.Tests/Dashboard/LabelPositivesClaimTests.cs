using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;
using NpgsqlTypes;

namespace HubertEcg.Integration.Tests.Dashboard;

/// <summary>
/// The scores insert trigger takes a writer's own label-positive counts (hubert.label_positives,
/// 0018_fast_score_writes.sql) only when they were counted against the thresholds in force and for exactly the rows
/// the statement added; otherwise it counts from the rows. The claims here are deliberately wrong in their counts, so
/// the summary shows which way was taken.
/// </summary>
public sealed class LabelPositivesClaimTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    [Theory]
    [InlineData("claim-taken", 0.5f, 1, 164 * 1000L)] // positions, thresholds and rows match: the claimed 1000 per label is taken
    [InlineData("claim-stale-threshold", 0.25f, 1, 164L)] // counted against another threshold: recounted from the row
    [InlineData("claim-wrong-rows", 0.5f, 2, 164L)] // claims two rows for one added: recounted from the row
    public async Task TheTriggerTakesAWritersCountsOnlyWhenTheyMatchTheThresholdsAndTheRows(
        string model, float claimedThreshold, int claimedRows, long expectedPositives)
    {
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor(model), "c", model + "/", shardSize: 10);
        var positions = Enumerable.Range(0, 164).ToArray();
        var claim =
            "{\"positions\":[" + string.Join(',', positions) + "],\"thresholds\":[" + string.Join(',', positions.Select(_ => claimedThreshold.ToString(System.Globalization.CultureInfo.InvariantCulture))) +
            "],\"runs\":[{\"run\":\"" + runId + "\",\"rows\":" + claimedRows + ",\"positives\":[" + string.Join(',', positions.Select(_ => 1000)) + "]}]}";

        await using (var connection = await database.DataSource.OpenConnectionAsync())
        await using (var tx = await connection.BeginTransactionAsync())
        {
            await using (var set = new NpgsqlCommand("select set_config('hubert.label_positives', @claim, true)", connection, tx))
            {
                set.Parameters.Add(new NpgsqlParameter("claim", NpgsqlDbType.Text) { Value = claim });
                await set.ExecuteNonQueryAsync();
            }

            // One row positive for every label at the default threshold 0.5.
            await using (var insert = new NpgsqlCommand(
                "insert into scores values (@model, 'r1', @run, array_fill(0.75::real, array[164]), array_fill(0::real, array[16]), 1, 'p/r1.npy', 'e', now())",
                connection,
                tx))
            {
                insert.Parameters.AddWithValue("model", model);
                insert.Parameters.AddWithValue("run", runId);
                await insert.ExecuteNonQueryAsync();
            }

            // The claim served one statement: a second insert in the transaction is counted from its row.
            await using (var second = new NpgsqlCommand(
                "insert into scores values (@model, 'r2', @run, array_fill(0.75::real, array[164]), array_fill(0::real, array[16]), 1, 'p/r2.npy', 'e', now())",
                connection,
                tx))
            {
                second.Parameters.AddWithValue("model", model);
                second.Parameters.AddWithValue("run", runId);
                await second.ExecuteNonQueryAsync();
            }

            await tx.CommitAsync();
        }

        Assert.Equal(expectedPositives + 164, await Runs.CountAsync(
            database.DataSource, "select sum(positives) from run_label_positives where run_id = @run", runId));
        Assert.Equal(2, await Runs.CountAsync(
            database.DataSource, "select sum(records_scored) from run_progress_minutes where run_id = @run", runId));
    }
}
