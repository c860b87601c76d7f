using System.Text.Json;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;
using Parquet;
using Parquet.Schema;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>The CLI's run and results commands, each runs alone because they write to the process console.</summary>
[CollectionDefinition(nameof(ConsoleBound), DisableParallelization = true)]
public sealed class ConsoleBound;

[Collection(nameof(ConsoleBound))]
public sealed class ClientCommandsTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task ErrorsAreOneLineWithTheReasonNotAStackTrace()
    {
        // Postgres on a port nobody listens on: the socket's refusal reaches the user, the command exits 1.
        var (code, output, error) = await CliHarness.RunAsync("Host=127.0.0.1;Port=1;Username=nobody;Timeout=3", blobs.ConnectionString, "run", "list");
        Assert.Equal((1, ""), (code, output));
        Assert.StartsWith("error: Failed to connect to 127.0.0.1:1", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);

        (code, _, error) = await CliHarness.RunAsync(database.ConnectionString, blobs.ConnectionString, "run", "submit", "--input", "c/p", "--model", "/no/such/model.onnx");
        Assert.Equal(1, code);
        Assert.Equal("error: model file /no/such/model.onnx does not exist", error.Trim());
    }

    [Fact]
    public async Task DbMigrateAppliesEveryPendingMigrationOnceAndSaysWhat()
    {
        // An empty database, as infra/local/up.sh leaves it: the built tool gives it the schema.
        var name = "migrate_" + Guid.NewGuid().ToString("N");
        await using (var admin = new NpgsqlConnection(LocalServices.PostgresAdmin))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"create database \"{name}\"", admin);
            await create.ExecuteNonQueryAsync();
        }

        try
        {
            var target = LocalServices.ForDatabase(name);
            var known = SchemaMigrator.Migrations;
            var (code, output, error) = await CliHarness.RunAsync(target, blobs.ConnectionString, "db", "migrate");
            Assert.Equal((0, ""), (code, error));
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal(known.Select(m => $"applied {m.Name}").Append($"schema up to date: {known.Count} migrations, {known.Count} applied now, latest {known[^1].Name}"), lines);

            (code, output, error) = await CliHarness.RunAsync(target, blobs.ConnectionString, "db", "migrate");
            Assert.Equal((0, "", $"schema up to date: {known.Count} migrations, 0 applied now, latest {known[^1].Name}"), (code, error, output.Trim()));

            await using var db = NpgsqlDataSource.Create(target);
            await using var count = db.CreateCommand("select count(*) from schema_migrations");
            Assert.Equal((long)known.Count, await count.ExecuteScalarAsync());
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(LocalServices.PostgresAdmin);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"drop database if exists \"{name}\" with (force)", admin);
            await drop.ExecuteNonQueryAsync();
        }
    }

    [Fact]
    public async Task SubmitWatchStatusListAndExportARun()
    {
        using var model = new TinyModel(seed: 21);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "cli/", 40);
        await using var cluster = await ScoringCluster.StartAsync(
            2, database.ConnectionString, blobs.ConnectionString,
            settings: new Dictionary<string, string?> { ["Workers:IntraOpThreads"] = "1" });

        var (code, output) = await CliAsync("run", "submit", "--input", $"{blobs.ContainerName}/cli/", "--model", model.Path, "--name", "cli test", "--shard-size", "7", "--batch", "4");
        Assert.Equal(0, code);
        var runId = Guid.Parse(output.Trim());

        (code, output) = await CliAsync("run", "watch", runId.ToString(), "--interval", "0.2");
        Assert.Equal(0, code);
        Assert.Contains($"scored={cohort.GoodRecords.Count} quarantined={cohort.CorruptRecords.Count} seconds=", output, StringComparison.Ordinal);

        (code, output) = await CliAsync("run", "status", runId.ToString(), "--json");
        Assert.Equal(0, code);
        using (var status = JsonDocument.Parse(output))
        {
            var root = status.RootElement;
            Assert.Equal("completed", root.GetProperty("state").GetString());
            Assert.Equal("cli test", root.GetProperty("name").GetString());
            Assert.Equal(cohort.GoodRecords.Count, root.GetProperty("records").GetProperty("done").GetInt64());
            Assert.Equal(cohort.CorruptRecords.Count, root.GetProperty("records").GetProperty("quarantined").GetInt64());
            Assert.Equal(7, root.GetProperty("shards").GetProperty("done").GetInt32());
        }

        (code, output) = await CliAsync("run", "status", runId.ToString());
        Assert.Equal(0, code);
        Assert.Contains("state: completed", output, StringComparison.Ordinal);

        (code, output) = await CliAsync("run", "list", "--json");
        Assert.Equal(0, code);
        using (var list = JsonDocument.Parse(output))
        {
            Assert.Contains(list.RootElement.EnumerateArray(), r => r.GetProperty("runId").GetGuid() == runId);
        }

        // A finished run cannot be cancelled; an unknown one does not exist.
        (code, _) = await CliAsync("run", "cancel", runId.ToString());
        Assert.Equal(1, code);
        (code, _) = await CliAsync("run", "status", Guid.NewGuid().ToString());
        Assert.Equal(1, code);

        var dir = Path.Combine(Path.GetTempPath(), "hubert-export-" + Guid.NewGuid().ToString("N"));
        try
        {
            var csv = Path.Combine(dir, "scores.csv");
            (code, _) = await CliAsync("results", "export", "--run", runId.ToString(), "--out", csv);
            Assert.Equal(0, code);
            var lines = await File.ReadAllLinesAsync(csv);
            var header = lines[0].Split(',');
            var codes = TestModels.LabelCodes.Value;
            Assert.Equal(["record_id", "model_id", "run_id", "windows_used", "source_blob", "source_etag", "scored_at", .. codes], header);
            Assert.Equal(cohort.GoodRecords.Count, lines.Length - 1);
            // The run's own rows in the order it scored them (docs/queries.md, "Results export"): every record once.
            Assert.Equal(cohort.GoodRecords.Order(StringComparer.Ordinal), lines.Skip(1).Select(l => l.Split(',')[0]).Order(StringComparer.Ordinal));
            var scoredAt = lines.Skip(1).Select(l => l.Split(',')[6]).ToList();
            Assert.Equal(scoredAt.Order(StringComparer.Ordinal), scoredAt);

            // The stored first probability of every record, which both Parquet layouts must hold.
            await using var cmd = database.DataSource.CreateCommand("select record_id, probabilities[1] from scores where run_id = @run");
            cmd.Parameters.AddWithValue("run", runId);
            var stored = new Dictionary<string, float>();
            await using (var rows = await cmd.ExecuteReaderAsync())
            {
                while (await rows.ReadAsync())
                {
                    stored.Add(rows.GetString(0), rows.GetFloat(1));
                }
            }

            // Parquet, the default list layout: fixed columns, the probabilities and the embedding as list columns, the
            // label codes in the file's metadata.
            var parquet = Path.Combine(dir, "scores.parquet");
            (code, _) = await CliAsync("results", "export", "--run", runId.ToString(), "--out", parquet, "--with-embedding");
            Assert.Equal(0, code);
            await using (var stream = File.OpenRead(parquet))
            await using (var reader = await ParquetReader.CreateAsync(stream))
            {
                var fields = reader.Schema.Fields;
                Assert.Equal(["record_id", "model_id", "run_id", "windows_used", "source_blob", "source_etag", "scored_at", "probabilities", "embedding"], fields.Select(f => f.Name));
                Assert.Equal(codes, System.Text.Json.JsonSerializer.Deserialize<string[]>(reader.CustomMetadata["hubert_ecg.label_codes"]));
                using var group = reader.OpenRowGroupReader(0);
                Assert.Equal(cohort.GoodRecords.Count, group.RowCount);
                var ids = new string?[group.RowCount];
                await group.ReadAsync((DataField)fields[0], ids.AsMemory());
                var element = (DataField)Assert.IsType<ListField>(fields[7]).Item;
                var values = new float[group.RowCount * codes.Count];
                await group.ReadRawAsync<float>(element, values.AsMemory(), new int[values.Length], new int[values.Length]);
                Assert.All(values, p => Assert.InRange(p, 0f, 1f));
                Assert.Equal(stored.Count, ids.Length);
                Assert.Equal(ids.Select(id => stored[id!]), Enumerable.Range(0, ids.Length).Select(r => values[r * codes.Count]));
            }

            // --layout wide: one float column per label code, as CSV.
            (code, _) = await CliAsync("results", "export", "--run", runId.ToString(), "--out", parquet, "--layout", "wide");
            Assert.Equal(0, code);
            await using (var stream = File.OpenRead(parquet))
            await using (var reader = await ParquetReader.CreateAsync(stream))
            {
                var fields = reader.Schema.Fields;
                Assert.Equal(7 + codes.Count, fields.Count);
                Assert.Equal(codes, fields.Skip(7).Select(f => f.Name));
                using var group = reader.OpenRowGroupReader(0);
                var ids = new string?[group.RowCount];
                await group.ReadAsync((DataField)fields[0], ids.AsMemory());
                var first = new float[group.RowCount];
                await group.ReadAsync<float>((DataField)fields[7], first.AsMemory());
                Assert.Equal(ids.Select(id => stored[id!]), first);
            }
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    [Fact]
    public async Task CancelStopsARunThatCannotProgress()
    {
        using var model = new TinyModel(seed: 22);
        await SyntheticCohort.UploadAsync(blobs.Container, "cancel/", 5);

        // No silo is running: the run stays pending until cancelled, and the coordinator records it on activation.
        var (code, output) = await CliAsync("run", "submit", "--input", $"{blobs.ContainerName}/cancel/", "--model", model.Path);
        Assert.Equal(0, code);
        var runId = Guid.Parse(output.Trim());
        (code, output) = await CliAsync("run", "cancel", runId.ToString());
        Assert.Equal(0, code);
        Assert.Contains("cancel requested", output, StringComparison.Ordinal);

        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString);
        var run = await Runs.WaitFinishedAsync(new RunStore(database.DataSource), runId, TimeSpan.FromMinutes(1));
        Assert.Equal(RunState.Cancelled, run.State);
        Assert.Equal("cancelled by request", run.Error);
    }

    [Fact]
    public async Task SubmitTakesAManifestInsteadOfAnInput()
    {
        using var model = new TinyModel(seed: 23);
        var (code, output) = await CliAsync("run", "submit", "--manifest", $"{blobs.ContainerName}/lists/cohort.txt", "--model", model.Path);
        Assert.Equal(0, code);
        var runId = Guid.Parse(output.Trim());
        var run = (await new RunStore(database.DataSource).GetRunAsync(runId))!;
        Assert.Equal((blobs.ContainerName, "", "lists/cohort.txt"), (run.InputContainer, run.InputPrefix, run.InputManifest));

        (code, output) = await CliAsync("run", "status", runId.ToString(), "--json");
        Assert.Equal(0, code);
        using (var status = JsonDocument.Parse(output))
        {
            Assert.Equal($"manifest {blobs.ContainerName}/lists/cohort.txt", status.RootElement.GetProperty("input").GetString());
        }

        // Both, or neither, is an error; nothing is submitted.
        (code, _) = await CliAsync("run", "submit", "--manifest", $"{blobs.ContainerName}/lists/cohort.txt", "--input", $"{blobs.ContainerName}/x/", "--model", model.Path);
        Assert.NotEqual(0, code);
        (code, _) = await CliAsync("run", "submit", "--model", model.Path);
        Assert.NotEqual(0, code);
        await new RunStore(database.DataSource).RequestCancelAsync(runId);
    }

    private async Task<(int Code, string Output)> CliAsync(params string[] args)
    {
        var (code, output, _) = await CliHarness.RunAsync(database.ConnectionString, blobs.ConnectionString, args);
        return (code, output);
    }
}
