using System.Text;
using System.Text.Json;
using HubertEcg.Client.Commands;
using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Parquet;

namespace HubertEcg.Integration.Tests.Security;

/// <summary>
/// Hostile text (<see cref="HostileStrings"/>) through every input path: run names given to <c>run submit</c>, blob
/// names that become record ids in a prefix run, manifest lines and the manifest's own name, the quarantine reasons
/// that quote them, and what <c>run status</c>, <c>run list</c> and <c>results export</c> give back. Everything is
/// stored and shown verbatim and executed nowhere (the tables are all still there); what Postgres cannot store is
/// refused with an error that says why.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class HostileInputTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private const string PrefixRunInput = "in '); DROP TABLE run_shards; --/";
    private const string ManifestRunInput = "listed \"$1\" %s/";
    private const string ManifestBlob = "lists/'); DROP TABLE scores; --.txt";
    private const string CorruptName = "corrupt '); DELETE FROM quarantine; --";
    private const string MissingName = "missing \"'); TRUNCATE scores; --";

    private static readonly string[] Tables = ["models", "labels", "runs", "run_shards", "scores", "quarantine", "schedules", "schema_migrations"];

    [Fact]
    public async Task RunNamesAreStoredAndShownVerbatim()
    {
        using var model = new TinyModel(seed: 81);
        var store = new RunStore(database.DataSource);
        var names = new Dictionary<Guid, string>();
        foreach (var name in HostileStrings.Storable)
        {
            var (code, output, error) = await CliAsync("run", "submit", "--input", $"{blobs.ContainerName}/nothing-here/", "--model", model.Path, "--name", name);
            Assert.True(code == 0, error);
            names.Add(Guid.Parse(output.Trim()), name);
        }

        foreach (var (runId, name) in names)
        {
            Assert.Equal(name, (await store.GetRunAsync(runId))!.Name);
            var (code, output, _) = await CliAsync("run", "status", runId.ToString(), "--json");
            Assert.Equal(0, code);
            using (var status = JsonDocument.Parse(output))
            {
                Assert.Equal(name, status.RootElement.GetProperty("name").GetString());
            }

            (code, output, _) = await CliAsync("run", "status", runId.ToString());
            Assert.Equal(0, code);
            Assert.Contains($"run {runId}  {TerminalText.Escape(name)}", output, StringComparison.Ordinal); // verbatim, escaped for the terminal
        }

        var (listCode, listed, _) = await CliAsync("run", "list", "--json", "--limit", "1000");
        Assert.Equal(0, listCode);
        using (var list = JsonDocument.Parse(listed))
        {
            var shown = list.RootElement.EnumerateArray().ToDictionary(r => r.GetProperty("runId").GetGuid(), r => r.GetProperty("name").GetString());
            Assert.All(names, n => Assert.Equal(n.Value, shown[n.Key]));
        }

        // What Postgres cannot store is refused before anything is written, with the reason.
        foreach (var (value, problem) in HostileStrings.Unstorable)
        {
            var before = await CountAsync("select count(*) from runs");
            var (code, _, error) = await CliAsync("run", "submit", "--input", $"{blobs.ContainerName}/nothing-here/", "--model", model.Path, "--name", value);
            Assert.NotEqual(0, code);
            Assert.Contains("run name contains", error, StringComparison.Ordinal);
            Assert.Contains(problem, error, StringComparison.Ordinal);
            Assert.Equal(before, await CountAsync("select count(*) from runs"));
        }

        await AssertTablesIntactAsync();
        foreach (var runId in names.Keys)
        {
            await store.RequestCancelAsync(runId);
        }
    }

    [Fact]
    public async Task ScheduleNamesAreStoredShownAndMatchedVerbatim()
    {
        using var model = new TinyModel(seed: 82);
        var store = new RunStore(database.DataSource);
        string[] Add(string name) =>
            ["schedule", "add", "--name", name, "--input", $"{blobs.ContainerName}/{PrefixRunInput}", "--model", model.Path, "--cron", "0 2 * * *", "--time-zone", "Europe/Amsterdam"];

        var names = HostileStrings.Storable.Where(n => !string.IsNullOrWhiteSpace(n)).ToList();
        var ids = new Dictionary<string, Guid>();
        foreach (var name in names)
        {
            var (code, output, error) = await CliAsync(Add(name));
            Assert.True(code == 0, error);
            ids.Add(name, Guid.Parse(output.Split('\n')[0].Trim()));
        }

        var (listCode, listed, _) = await CliAsync("schedule", "list", "--json");
        Assert.Equal(0, listCode);
        using (var list = JsonDocument.Parse(listed))
        {
            var shown = list.RootElement.EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!, r => r.GetProperty("input").GetString());
            Assert.Equal(names.Order(StringComparer.Ordinal), shown.Keys.Order(StringComparer.Ordinal));
            Assert.All(shown.Values, input => Assert.Equal($"{blobs.ContainerName}/{PrefixRunInput}", input));
        }

        // Each schedule is found by its exact name: run-now starts a run named after it, remove takes it away.
        foreach (var name in names)
        {
            var (code, output, error) = await CliAsync("schedule", "run-now", name);
            Assert.True(code == 0, error);
            var run = (await store.GetRunAsync(Guid.Parse(output.Trim())))!;
            Assert.Equal(ids[name], run.ScheduleId);
            Assert.StartsWith(name + " run-now ", run.Name, StringComparison.Ordinal);
            Assert.Equal(PrefixRunInput, run.InputPrefix);
            await store.RequestCancelAsync(run.RunId);

            (code, _, error) = await CliAsync("schedule", "remove", name);
            Assert.True(code == 0, error);
        }

        Assert.Equal(0, await CountAsync("select count(*) from schedules"));
        foreach (var (value, problem) in HostileStrings.Unstorable)
        {
            var (code, _, error) = await CliAsync(Add(value));
            Assert.Equal(1, code);
            Assert.Contains("schedule name contains", error, StringComparison.Ordinal);
            Assert.Contains(problem, error, StringComparison.Ordinal);
        }

        Assert.Equal(0, await CountAsync("select count(*) from schedules"));
        await AssertTablesIntactAsync();
    }

    [Fact]
    public async Task RecordIdsManifestLinesAndReasonsRoundTripVerbatim()
    {
        using var model = new TinyModel(seed: 82);
        var uploads = new List<Task>();
        foreach (var name in HostileStrings.BlobNames)
        {
            uploads.Add(UploadRecordAsync($"{PrefixRunInput}{name}.npy", valid: true));
            uploads.Add(UploadRecordAsync($"{ManifestRunInput}{name}.npy", valid: true));
        }

        uploads.Add(UploadRecordAsync($"{PrefixRunInput}{CorruptName}.npy", valid: false));
        var manifest = new StringBuilder("# a hostile cohort\n");
        foreach (var name in HostileStrings.BlobNames)
        {
            manifest.Append(ManifestRunInput).Append(name).Append(".npy\n");
        }

        manifest.Append(MissingName).Append(".npy\n");
        uploads.Add(blobs.Container.GetBlobClient(ManifestBlob).UploadAsync(new BinaryData(Encoding.UTF8.GetBytes(manifest.ToString())), overwrite: true));
        await Task.WhenAll(uploads);

        // The blob store itself keeps the names as they are (otherwise this test would prove nothing about ours).
        var listed = await new BlobStore(blobs.ConnectionString).ListPageAsync(blobs.ContainerName, PrefixRunInput, null, 1000);
        Assert.Equal(
            HostileStrings.BlobNames.Select(n => $"{PrefixRunInput}{n}.npy").Append($"{PrefixRunInput}{CorruptName}.npy").ToHashSet(),
            listed.Items.Select(b => b.Name).ToHashSet());

        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);
        var (code, output, error) = await CliAsync(
            "run", "submit", "--input", $"{blobs.ContainerName}/{PrefixRunInput}", "--model", model.Path, "--name", HostileStrings.BlobNames[0], "--shard-size", "5");
        Assert.True(code == 0, error);
        var prefixRun = Guid.Parse(output.Trim());
        (code, output, error) = await CliAsync(
            "run", "submit", "--manifest", $"{blobs.ContainerName}/{ManifestBlob}", "--model", model.Path, "--name", HostileStrings.BlobNames[1], "--shard-size", "5");
        Assert.True(code == 0, error);
        var manifestRun = Guid.Parse(output.Trim());

        var store = new RunStore(database.DataSource);
        foreach (var runId in new[] { prefixRun, manifestRun })
        {
            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
            Assert.Equal((RunState.Completed, 0), (run.State, run.ShardsFailed));
        }

        var prefixRecord = (await store.GetRunAsync(prefixRun))!;
        Assert.Equal((blobs.ContainerName, PrefixRunInput, (string?)null), (prefixRecord.InputContainer, prefixRecord.InputPrefix, prefixRecord.InputManifest));
        var manifestRecord = (await store.GetRunAsync(manifestRun))!;
        Assert.Equal((blobs.ContainerName, "", ManifestBlob), (manifestRecord.InputContainer, manifestRecord.InputPrefix, manifestRecord.InputManifest));

        // Record ids (blob names without the extension) and source blobs, exactly.
        Assert.Equal(
            HostileStrings.BlobNames.Select(n => ($"{PrefixRunInput}{n}", $"{PrefixRunInput}{n}.npy")).ToHashSet(),
            await PairsAsync("select record_id, source_blob from scores where run_id = @run", prefixRun));
        Assert.Equal(
            HostileStrings.BlobNames.Select(n => ($"{ManifestRunInput}{n}", $"{ManifestRunInput}{n}.npy")).ToHashSet(),
            await PairsAsync("select record_id, source_blob from scores where run_id = @run", manifestRun));

        // Quarantine rows keep the hostile record id, and a reason that quotes a hostile name quotes it exactly.
        Assert.Equal(
            [($"{PrefixRunInput}{CorruptName}", "not a NumPy .npy file (bad magic)")],
            await PairsAsync("select record_id, reason from quarantine where run_id = @run", prefixRun));
        Assert.Equal(
            [($"{MissingName}.npy", $"listed in the run's manifest, but blob '{blobs.ContainerName}/{MissingName}.npy' does not exist")],
            await PairsAsync("select record_id, reason from quarantine where run_id = @run", manifestRun));

        // What the client shows: status JSON, and the exports.
        (code, output, _) = await CliAsync("run", "status", manifestRun.ToString(), "--json");
        Assert.Equal(0, code);
        using (var status = JsonDocument.Parse(output))
        {
            Assert.Equal($"manifest {blobs.ContainerName}/{ManifestBlob}", status.RootElement.GetProperty("input").GetString());
            Assert.Equal(HostileStrings.BlobNames[1], status.RootElement.GetProperty("name").GetString());
        }

        var dir = Path.Combine(Path.GetTempPath(), "hubert-hostile-" + Guid.NewGuid().ToString("N"));
        try
        {
            var csv = Path.Combine(dir, "scores.csv");
            (code, _, error) = await CliAsync("results", "export", "--run", prefixRun.ToString(), "--out", csv);
            Assert.True(code == 0, error);
            var rows = ParseCsv(await File.ReadAllTextAsync(csv));
            Assert.Equal(["record_id", "model_id", "run_id", "windows_used", "source_blob"], rows[0].Take(5));
            Assert.Equal(
                HostileStrings.BlobNames.Select(n => ($"{PrefixRunInput}{n}", $"{PrefixRunInput}{n}.npy")).ToHashSet(),
                rows.Skip(1).Select(r => (r[0], r[4])).ToHashSet());
            Assert.All(rows, r => Assert.Equal(rows[0].Count, r.Count));

            var parquet = Path.Combine(dir, "scores.parquet");
            (code, _, error) = await CliAsync("results", "export", "--run", prefixRun.ToString(), "--out", parquet);
            Assert.True(code == 0, error);
            await using var stream = File.OpenRead(parquet);
            await using var reader = await ParquetReader.CreateAsync(stream);
            using var group = reader.OpenRowGroupReader(0);
            var ids = new string?[group.RowCount];
            await group.ReadAsync(reader.Schema.GetDataFields()[0], ids.AsMemory());
            Assert.Equal(HostileStrings.BlobNames.Select(n => $"{PrefixRunInput}{n}").ToHashSet(), ids.Select(id => id!).ToHashSet());
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        await AssertTablesIntactAsync();
    }

    [Fact]
    public async Task AManifestLineWithANulIsQuarantinedWithTheReasonAndTheRunGoesOn()
    {
        using var model = new TinyModel(seed: 83);
        await UploadRecordAsync("nul/ok.npy", valid: true);
        await blobs.Container.GetBlobClient("lists/nul.txt").UploadAsync(new BinaryData("nul/ok.npy\nnul/bad\0'); DROP TABLE scores; --.npy\n"u8.ToArray()), overwrite: true);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "", shardSize: 5, modelPath: model.Path, manifest: "lists/nul.txt");
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(2));

        Assert.Equal((RunState.Completed, (string?)null, 1L, 1L, 0), (run.State, run.Error, run.RecordsDone, run.RecordsQuarantined, run.ShardsFailed));
        Assert.Equal([("nul/ok", "nul/ok.npy")], await PairsAsync("select record_id, source_blob from scores where run_id = @run", runId));
        var printable = "nul/bad\\0'); DROP TABLE scores; --.npy";
        Assert.Equal(
            [(printable, $"manifest {blobs.ContainerName}/lists/nul.txt: entry '{printable}' contains a NUL character (U+0000) at position 7, which PostgreSQL text cannot store")],
            await PairsAsync("select record_id, reason from quarantine where run_id = @run", runId));
        Assert.Equal([(printable, "lists/nul.txt")], await PairsAsync("select record_id, source_blob from quarantine where run_id = @run", runId));
        await AssertTablesIntactAsync();
    }

    [Fact]
    public async Task ARecordIdTooLongToIndexIsQuarantinedWithTheReasonAndTheRunGoesOn()
    {
        using var model = new TinyModel(seed: 84);

        // A legal blob name (1,009 characters) whose record id is 3,005 bytes in UTF-8: longer than a B-tree key may be.
        // The characters vary, as in a real name: PostgreSQL compresses a long key, and a repetitive one would fit.
        var random = new Random(84);
        var longId = "long/" + string.Concat(Enumerable.Range(0, 1000).Select(_ => (char)random.Next(0x4E00, 0x9FFF)));
        await UploadRecordAsync($"{longId}.npy", valid: true);
        await UploadRecordAsync("long/ok.npy", valid: true);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);
        var store = new RunStore(database.DataSource);
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "long/", shardSize: 5, modelPath: model.Path);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(2));

        Assert.Equal((RunState.Completed, 0, 1L, 1L), (run.State, run.ShardsFailed, run.RecordsDone, run.RecordsQuarantined));
        Assert.Equal([("long/ok", "long/ok.npy")], await PairsAsync("select record_id, source_blob from scores where run_id = @run", runId));
        var quarantined = Assert.Single(await PairsAsync("select record_id, reason from quarantine where run_id = @run", runId));
        Assert.Equal(PostgresText.StorableKey(longId), quarantined.Item1);
        Assert.StartsWith(longId[..100], quarantined.Item1);
        Assert.Equal(
            "record id is 3,005 bytes long in UTF-8, more than the 2,000 a record id may have (PostgreSQL cannot index longer keys)",
            quarantined.Item2);
        Assert.Equal(
            [($"{longId}.npy", quarantined.Item2)],
            await PairsAsync("select source_blob, reason from quarantine where run_id = @run", runId));
    }

    private async Task UploadRecordAsync(string blobName, bool valid)
    {
        var bytes = valid ? SyntheticCohort.NpyBytes(Enumerable.Range(0, 12 * 5000).Select(i => (float)Math.Sin(i * 0.01)).ToArray(), 12, 5000) : "not numpy"u8.ToArray();
        await blobs.Container.GetBlobClient(blobName).UploadAsync(new BinaryData(bytes), overwrite: true);
    }

    private Task<(int Code, string Output, string Error)> CliAsync(params string[] args) =>
        CliHarness.RunAsync(database.ConnectionString, blobs.ConnectionString, args);

    private async Task<long> CountAsync(string sql)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<HashSet<(string, string)>> PairsAsync(string sql, Guid runId)
    {
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var pairs = new HashSet<(string, string)>();
        while (await reader.ReadAsync())
        {
            Assert.True(pairs.Add((reader.GetString(0), reader.GetString(1))));
        }

        return pairs;
    }

    private async Task AssertTablesIntactAsync()
    {
        foreach (var table in Tables)
        {
            await using var cmd = database.DataSource.CreateCommand("select to_regclass(@table) is not null");
            cmd.Parameters.AddWithValue("table", table);
            Assert.True(await cmd.ExecuteScalarAsync() is true, $"table {table} is gone");
        }

        Assert.Equal(164, await CountAsync("select count(*) from labels"));
    }

    /// <summary>RFC 4180: fields separated by commas, quoted when they hold a comma, quote or line break, quotes doubled.</summary>
    private static List<List<string>> ParseCsv(string text)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                row.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add(row);
                row = [];
            }
            else if (c != '\r')
            {
                field.Append(c);
            }
        }

        Assert.False(quoted, "the CSV ends inside a quoted field");
        Assert.Equal(0, field.Length + row.Count);
        return rows;
    }
}
