using HubertEcg.Client.Commands;
using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// <c>hubert-ecg bench pipeline</c> against the test's Postgres and Azurite: the worker's real stages with a null
/// scorer count every record of the input, report every stage, and leave one row per record in Postgres. No timings
/// are checked.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class BenchPipelineTests(BlobContainerFixture blobs) : IClassFixture<BlobContainerFixture>
{
    private static readonly string[] StageNames = ["download", "decode", "preprocess", "batch", "score(null)", "aggregate", "write"];

    [Fact]
    public async Task ASyntheticCohortIsUploadedScoredAndWrittenOneRowPerRecord()
    {
        var (code, output, error) = await CliHarness.RunAsync(
            LocalServices.PostgresAdmin, blobs.ConnectionString,
            "bench", "pipeline", "--records", "12", "--shard-size", "5", "--preprocess-threads", "2", "--writers", "2", "--batch", "4", "--keep-database");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        var report = Report(output);
        Assert.Contains("records: 12 (12 scored, 0 quarantined), 24 windows; rows in Postgres: 12 scores, 0 quarantine;", output, StringComparison.Ordinal);
        Assert.Contains("12 single records and 0 container blob(s) in 3 shards", output, StringComparison.Ordinal);
        AssertStages(output, records: 12);

        await using var db = NpgsqlDataSource.Create(LocalServices.ForDatabase(report["database"]));
        try
        {
            await using var command = db.CreateCommand("select count(*), count(distinct record_id) from scores where run_id = $1");
            command.Parameters.AddWithValue(Guid.Parse(report["run_id"]));
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal((12L, 12L), (reader.GetInt64(0), reader.GetInt64(1)));
        }
        finally
        {
            await DropAsync(report["database"]);
        }
    }

    [Fact]
    public async Task AMixedPrefixAlreadyThereCountsItsContainerAndQuarantinesItsCorruptRecords()
    {
        var cohort = await CohortCommands.UploadAsync(blobs.Container, "mixed/", 60, 10, 7, CancellationToken.None);
        var records = cohort.Good + cohort.Corrupt.Count;

        var (code, output, error) = await CliHarness.RunAsync(
            LocalServices.PostgresAdmin, blobs.ConnectionString,
            "bench", "pipeline", "--input", $"{blobs.ContainerName}/mixed/", "--shard-size", "16", "--keep-database");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        var report = Report(output);
        Assert.Contains($"records: {records} ({cohort.Good} scored, {cohort.Corrupt.Count} quarantined)", output, StringComparison.Ordinal);
        Assert.Contains($"rows in Postgres: {cohort.Good} scores, {cohort.Corrupt.Count} quarantine;", output, StringComparison.Ordinal);
        Assert.Contains("and 1 container blob(s)", output, StringComparison.Ordinal);
        AssertStages(output, records);

        await using var db = NpgsqlDataSource.Create(LocalServices.ForDatabase(report["database"]));
        try
        {
            await using var command = db.CreateCommand("select (select count(*) from scores where run_id = $1), (select count(*) from quarantine where run_id = $1)");
            command.Parameters.AddWithValue(Guid.Parse(report["run_id"]));
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal(((long)cohort.Good, (long)cohort.Corrupt.Count), (reader.GetInt64(0), reader.GetInt64(1)));
        }
        finally
        {
            await DropAsync(report["database"]);
        }
    }

    [Fact]
    public async Task BadOptionsAreRefusedWithTheirNames()
    {
        var (code, _, error) = await CliHarness.RunAsync(LocalServices.PostgresAdmin, blobs.ConnectionString, "bench", "pipeline", "--preprocess-threads", "0");
        Assert.Equal((1, "error: --preprocess-threads and --writers must be positive"), (code, error.Trim()));

        (code, _, error) = await CliHarness.RunAsync(LocalServices.PostgresAdmin, blobs.ConnectionString, "bench", "pipeline", "--input", $"{blobs.ContainerName}/nothing-here/");
        Assert.Equal((1, $"error: no records under {blobs.ContainerName}/nothing-here/"), (code, error.Trim()));
    }

    // The stage table: every stage has a line whose calls and items are counted; the ones timed per thread have CPU time.
    private static void AssertStages(string output, long records)
    {
        var lines = output.Split('\n', StringSplitOptions.TrimEntries);
        foreach (var name in StageNames)
        {
            var line = Assert.Single(lines, l => l.StartsWith(name + " ", StringComparison.Ordinal));
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(6, fields.Length);
            Assert.True(long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) > 0, line);
            Assert.Equal(name is "download" or "write", fields[4] == "-");
        }

        var preprocess = Assert.Single(lines, l => l.StartsWith("preprocess ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(long.Parse(preprocess[2], System.Globalization.CultureInfo.InvariantCulture) <= records);
        Assert.Contains(lines, l => l.StartsWith("records_per_second=", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("windows waiting for the model: ", StringComparison.Ordinal));
    }

    private static Dictionary<string, string> Report(string output) =>
        output.Split('\n', StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("database=", StringComparison.Ordinal) || l.StartsWith("run_id=", StringComparison.Ordinal))
            .ToDictionary(l => l[..l.IndexOf('=', StringComparison.Ordinal)], l => l[(l.IndexOf('=', StringComparison.Ordinal) + 1)..]);

    private static async Task DropAsync(string database)
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(LocalServices.PostgresAdmin);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"drop database if exists \"{database}\" with (force)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
