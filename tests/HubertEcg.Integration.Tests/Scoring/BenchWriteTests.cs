using HubertEcg.Testing;
using Npgsql;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// <c>hubert-ecg bench write</c> against the test's Postgres: the rows it times are written and counted, the warm-up
/// says what it wrote, its scratch database is dropped afterwards, and bad options are refused before it creates one.
/// No timings are checked.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class BenchWriteTests
{
    [Fact]
    public async Task ItWritesTheTimedRowsAfterTheWarmUpReportsBothAndDropsItsScratchDatabase()
    {
        var before = await ScratchDatabasesAsync();

        // No settling on the compiler here: other test classes compile in this process meanwhile.
        var (code, output, error) = await CliHarness.RunAsync(
            LocalServices.PostgresAdmin, LocalServices.Blob,
            "bench", "write", "--rows", "3000", "--batch", "128", "--embedding", "16", "--writers", "2", "--warmup-rows", "1000", "--jit-settle", "0",
            "--embedding-precision", "fp16");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        Assert.Contains("rows: 3000 (164 probabilities + 16-float embedding each, stored fp16), batches of 128, 2 writer(s)", output, StringComparison.Ordinal);
        Assert.Contains("warm-up: 1000 rows in ", output, StringComparison.Ordinal);
        Assert.Contains("; methods compiled while measuring: ", output, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^rows_per_second=\d+\r?$", output);
        Assert.Matches(@"(?m)^client_cpu_us_per_row=[\d.]+\r?$", output);
        Assert.Equal(before, await ScratchDatabasesAsync());
    }

    [Theory]
    [InlineData("--jit-settle", "61", "error: --jit-settle must be between 0 and 60 seconds")]
    [InlineData("--jit-settle", "-1", "error: --jit-settle must be between 0 and 60 seconds")]
    [InlineData("--warmup-rows", "-5", "error: --warmup-rows must not be negative")]
    [InlineData("--rows", "0", "error: --rows, --batch, --labels, --embedding, --writers and --distinct-vectors must be positive")]
    public async Task BadOptionsAreRefusedWithTheirNamesBeforeAnyDatabaseIsMade(string option, string value, string message)
    {
        var before = await ScratchDatabasesAsync();
        var (code, _, error) = await CliHarness.RunAsync(LocalServices.PostgresAdmin, LocalServices.Blob, "bench", "write", option, value);
        Assert.Equal((1, message), (code, error.Trim()));
        Assert.Equal(before, await ScratchDatabasesAsync());
    }

    private static async Task<string[]> ScratchDatabasesAsync()
    {
        await using var db = NpgsqlDataSource.Create(LocalServices.PostgresAdmin);
        await using var command = db.CreateCommand("select datname from pg_database where datname like 'bench\\_write\\_%' order by 1");
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }

        return [.. names];
    }
}
