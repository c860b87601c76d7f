using System.Text;
using HubertEcg.Client.Commands;
using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>Runs whose input is a manifest blob, against real Postgres and Azurite.</summary>
public sealed class ManifestRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    [Fact]
    public async Task PlanningFromAManifestFormsTheShardsOfOneWholeListing()
    {
        var names = Enumerable.Range(0, 41)
            .SelectMany(i => i % 5 == 0 ? new[] { $"plan/r{i:D3}.npy" } : new[] { $"plan/r{i:D3}.dat", $"plan/r{i:D3}.hea" })
            .Append("plan/code15/exams_part0.hdf5")
            .Append("plan/archive.tar.gz")
            .ToList();
        var text = new StringBuilder("# planning test\n\n");
        foreach (var name in names)
        {
            text.Append(name).Append(name.EndsWith(".npy", StringComparison.Ordinal) ? "\r\n" : "\n");
        }

        await blobs.Container.GetBlobClient("plan/manifest.txt").UploadAsync(new BinaryData(Encoding.UTF8.GetBytes(text.ToString())), overwrite: true);
        var store = new RunStore(database.DataSource);

        // Chunks of 50 bytes: every step cuts a line, and a record's .dat and .hea fall into different steps.
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, workers: false,
            settings: new Dictionary<string, string?> { ["Coordinator:ManifestChunkBytes"] = "50" });
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("manifest-plan-model"), blobs.ContainerName, "", shardSize: 4, manifest: "plan/manifest.txt");
        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!(await coordinator.GetProgress()).PlanningComplete)
        {
            Assert.True(DateTime.UtcNow < deadline, "planning did not finish in 2 minutes");
            await Task.Delay(100);
        }

        // Nothing scores this run; cancelled so that no worker of a later test picks its shards up.
        await coordinator.Cancel();

        var run = (await store.GetRunAsync(runId))!;
        Assert.Equal("plan/manifest.txt", run.InputManifest);
        Assert.True(run.PlanningComplete);
        Assert.Empty(run.PlanningCarry);

        var expected = new ShardPlanner(FormatRegistry.Default, 4).Plan([], names, lastPage: true).Shards;
        var planned = await store.Shards.LoadAsync(runId);
        Assert.Equal(
            expected.Select(s => (s.Kind, string.Join('|', s.Blobs), s.RecordCount)).Order(),
            planned.Select(s => (s.Kind, string.Join('|', s.Blobs), s.RecordsPlanned)).Order());
        Assert.Equal(41, planned.Sum(s => s.RecordsPlanned));
        Assert.Equal(2, planned.Count(s => s.Kind == ShardKind.Container));
    }

    [Fact]
    public async Task ManifestPlanningResumesWhereItStoppedAfterTheSilosRestart()
    {
        var names = Enumerable.Range(0, 120).SelectMany(i => new[] { $"resume/r{i:D3}.dat", $"resume/r{i:D3}.hea" }).ToList();
        await blobs.Container.GetBlobClient("resume/manifest.txt")
            .UploadAsync(new BinaryData(Encoding.UTF8.GetBytes(string.Join("\n", names))), overwrite: true);
        var store = new RunStore(database.DataSource);
        var settings = new Dictionary<string, string?> { ["Coordinator:ManifestChunkBytes"] = "40", ["Coordinator:TickInterval"] = "00:00:00.100" };
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("manifest-resume-model"), blobs.ContainerName, "", shardSize: 3, manifest: "resume/manifest.txt");

        await using (var first = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString, workers: false, settings: settings))
        {
            await first.Grains.GetGrain<IRunCoordinatorGrain>(runId).GetProgress();
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
            while ((await store.GetRunAsync(runId))!.ShardsPlanned < 3)
            {
                Assert.True(DateTime.UtcNow < deadline, "planning did not start in a minute");
                await Task.Delay(20);
            }
        }

        var stopped = (await store.GetRunAsync(runId))!;
        Assert.False(stopped.PlanningComplete);
        var (offset, etag) = ManifestLines.ParsePosition(stopped.PlanningToken);
        Assert.InRange(offset, 1, string.Join("\n", names).Length - 1);
        Assert.False(string.IsNullOrEmpty(etag));

        await using (var second = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString, workers: false, settings: settings))
        {
            var coordinator = second.Grains.GetGrain<IRunCoordinatorGrain>(runId);
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (!(await coordinator.GetProgress()).PlanningComplete)
            {
                Assert.True(DateTime.UtcNow < deadline, "planning did not finish in 2 minutes");
                await Task.Delay(100);
            }

            await coordinator.Cancel();
        }

        var expected = new ShardPlanner(FormatRegistry.Default, 3).Plan([], names, lastPage: true).Shards;
        var planned = await store.Shards.LoadAsync(runId);
        Assert.Equal(expected.Select(s => string.Join('|', s.Blobs)).Order(), planned.Select(s => string.Join('|', s.Blobs)).Order());
        Assert.Equal(120, planned.Sum(s => s.RecordsPlanned));
    }

    [Fact]
    public async Task AManifestRunScoresWhatItListsAndQuarantinesMissingEntries()
    {
        using var model = new TinyModel(seed: 33);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "man/", 24);
        var good = new List<string>();
        var lines = new List<string> { "# a manifest of the synthetic cohort", "" };

        // The .npy records, except the last one: a blob that is not listed is not scored.
        foreach (var id in cohort.GoodRecords.SkipLast(1))
        {
            lines.Add(id + ".npy");
            good.Add(id);
        }

        lines.AddRange(["man/corrupt-magic.npy", "man/corrupt-shape.npy", "man/corrupt-short.npy", "man/corrupt-orphan.dat"]);

        // WFDB and Challenge records listed by their header only: the worker finds the signal files from the header,
        // including one whose signal file is not named after the record.
        var uploads = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var wfdb = WfdbWriter.Write(SyntheticEcg.Generate("p00001", 1, 500, 10), "p00001");
        uploads["man/wfdb/p00001.hea"] = wfdb["p00001.hea"];
        uploads["man/wfdb/p00001.dat"] = wfdb["p00001.dat"];
        var renamed = WfdbWriter.Write(SyntheticEcg.Generate("p00002", 2, 500, 10), "p00002", format: 212);
        uploads["man/wfdb/p00002.hea"] = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(renamed["p00002.hea"]).Replace("p00002.dat", "p00002_signals.dat", StringComparison.Ordinal));
        uploads["man/wfdb/p00002_signals.dat"] = renamed["p00002.dat"];
        var mat = WfdbWriter.WriteChallengeMat(SyntheticEcg.Generate("A0001", 3, 500, 10), "A0001");
        uploads["man/challenge/A0001.hea"] = mat["A0001.hea"];
        uploads["man/challenge/A0001.mat"] = mat["A0001.mat"];
        uploads["man/code15/exams_part0.hdf5"] = SyntheticCohort.Hdf5Bytes(3, out var examIds);
        lines.AddRange(["man/wfdb/p00001.hea", "man/wfdb/p00002.hea", "# challenge", "man/challenge/A0001.hea", "man/code15/exams_part0.hdf5"]);
        good.AddRange(["man/wfdb/p00001", "man/wfdb/p00002", "man/challenge/A0001", .. examIds.Select(e => $"man/code15/exams_part0.hdf5#{e}")]);

        // Entries naming blobs that do not exist: a record file and a container.
        lines.AddRange(["man/wfdb/p99999.hea", "man/code15/exams_part9.hdf5"]);
        uploads["lists/cohort.txt"] = Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n");
        foreach (var (name, bytes) in uploads)
        {
            await blobs.Container.GetBlobClient(name).UploadAsync(new BinaryData(bytes), overwrite: true);
        }

        var run = await ScoreManifestAsync(model, "lists/cohort.txt", silos: 2, shardSize: 5, chunkBytes: 200);
        var runId = run.RunId;

        var expectedQuarantine = new[]
        {
            "man/code15/exams_part9.hdf5", "man/corrupt-magic", "man/corrupt-orphan", "man/corrupt-short", "man/corrupt-shape", "man/wfdb/p99999.hea",
        };
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(good.Count, run.RecordsDone);
        Assert.Equal(expectedQuarantine.Length, run.RecordsQuarantined);
        Assert.Equal(0, run.ShardsFailed);

        var scored = await RecordIdsAsync("select record_id, source_blob from scores where run_id = @run", runId);
        Assert.Equal(good.Order(StringComparer.Ordinal), scored.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("man/wfdb/p00002.hea", scored["man/wfdb/p00002"]);

        var quarantined = await RecordIdsAsync("select record_id, reason from quarantine where run_id = @run", runId);
        Assert.Equal(expectedQuarantine.Order(StringComparer.Ordinal), quarantined.Keys.Order(StringComparer.Ordinal));
        Assert.Contains($"blob '{blobs.ContainerName}/man/wfdb/p99999.hea' does not exist", quarantined["man/wfdb/p99999.hea"], StringComparison.Ordinal);
        Assert.Contains("listed in the run's manifest", quarantined["man/code15/exams_part9.hdf5"], StringComparison.Ordinal);
        Assert.Contains("no reader", quarantined["man/corrupt-orphan"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARecordListedSeveralTimesIsPlannedScoredAndCountedOnce()
    {
        using var model = new TinyModel(seed: 34);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "dup/", 12);

        // The cohort, then the same records again in reverse order (read in later chunks), and two repeats in a row.
        var first = cohort.GoodRecords.Select(id => id + ".npy").Append("dup/corrupt-magic.npy").ToList();
        var again = cohort.GoodRecords.Select(id => id + ".npy").Reverse().Concat(["dup/rec00003.npy", "dup/corrupt-magic.npy"]).ToList();
        await blobs.Container.GetBlobClient("lists/dup.txt")
            .UploadAsync(new BinaryData(Encoding.UTF8.GetBytes(string.Join("\n", first.Concat(again)) + "\n")), overwrite: true);

        var run = await ScoreManifestAsync(model, "lists/dup.txt", silos: 1, shardSize: 4, chunkBytes: 100);
        var runId = run.RunId;
        var store = new RunStore(database.DataSource);

        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(again.Count, run.ManifestDuplicates);
        Assert.Equal(13, run.RecordsPlanned);
        Assert.Equal(12, run.RecordsDone);
        Assert.Equal(1, run.RecordsQuarantined);
        Assert.Equal(13, (await store.Shards.LoadAsync(runId)).Sum(s => s.RecordsPlanned));
        Assert.Equal(12, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", runId));
        Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from run_manifest_keys where run_id = @run", runId));
        Assert.Contains("(14 duplicate manifest entries left out)", RunStatusCommand.Describe(RunCommands.View(run, new Dictionary<ShardState, int>())), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EntriesResolveInsideTheirContainerAliasesAreOneRecordAndBadLinesAreQuarantined()
    {
        using var model = new TinyModel(seed: 35);

        // A second container holding the records the hostile entries point at: were they read, they would be scored.
        var other = new Azure.Storage.Blobs.BlobContainerClient(blobs.ConnectionString, blobs.ContainerName + "-other");
        await other.CreateIfNotExistsAsync();
        try
        {
            var npy = SyntheticCohort.NpyBytes(Enumerable.Range(0, 12 * 5000).Select(i => (float)Math.Sin(i * 0.01)).ToArray(), 12, 5000);
            foreach (var name in new[] { "esc/ok.npy", "esc/two.npy" })
            {
                await blobs.Container.GetBlobClient(name).UploadAsync(new BinaryData(npy), overwrite: true);
            }

            await other.GetBlobClient("esc/x.npy").UploadAsync(new BinaryData(npy), overwrite: true);
            var escape = $"../{other.Name}/esc/x.npy";
            var url = $"{other.Uri}/esc/x.npy";
            var longLine = "esc/" + new string('l', 500) + ".npy";
            var lines = new[]
            {
                "esc/ok.npy", "/esc/ok.npy", "esc/./ok.npy", "esc/sub/../ok.npy", "esc\\ok.npy", escape, url, escape, longLine, "esc/two.npy",
            };
            await blobs.Container.GetBlobClient("lists/escape.txt")
                .UploadAsync(new BinaryData(Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n")), overwrite: true);

            // Chunks of 200 bytes: the long line spans three of them, and is skipped over two steps.
            var run = await ScoreManifestAsync(model, "lists/escape.txt", silos: 1, shardSize: 4, chunkBytes: 200);
            var runId = run.RunId;
            var source = $"manifest {blobs.ContainerName}/lists/escape.txt";

            Assert.Equal(RunState.Completed, run.State);
            Assert.Equal((2L, 3L, 5L, 5L), (run.RecordsDone, run.RecordsQuarantined, run.RecordsPlanned, run.ManifestDuplicates));
            Assert.Equal(0, run.ShardsFailed);
            var scored = await RecordIdsAsync("select record_id, source_blob from scores where run_id = @run", runId);
            Assert.Equal(new Dictionary<string, string> { ["esc/ok"] = "esc/ok.npy", ["esc/two"] = "esc/two.npy" }, scored);
            Assert.Equal(0, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run and record_id like '%x'", runId));

            var quarantined = await RecordIdsAsync("select record_id, reason from quarantine where run_id = @run", runId);
            Assert.Equal(
                new Dictionary<string, string>
                {
                    [escape] = $"{source}: entry '{escape}' climbs out of the run's container ('..' above its root)",
                    [url] = $"{source}: entry '{url}' is a URL; a manifest names blobs of its own container by their path",
                    [longLine[..200]] = $"{source}: the line at byte {string.Join("\n", lines[..8]).Length + 1} is longer than 200 bytes (Coordinator:ManifestChunkBytes)",
                },
                quarantined);
            var sources = await RecordIdsAsync("select record_id, source_blob from quarantine where run_id = @run", runId);
            Assert.All(sources.Values, s => Assert.Equal("lists/escape.txt", s));

            // The counters equal the rows.
            Assert.Equal(run.RecordsQuarantined, await Runs.CountAsync(database.DataSource, "select count(*) from quarantine where run_id = @run", runId));
            Assert.Equal(run.RecordsDone, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", runId));
        }
        finally
        {
            await other.DeleteIfExistsAsync();
        }
    }

    [Fact]
    public async Task AMissingManifestFailsTheRunWithTheReason()
    {
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString, workers: false);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("manifest-missing-model"), blobs.ContainerName, "", shardSize: 4, manifest: "lists/none.txt");
        await cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId).GetProgress();
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(1));

        Assert.Equal(RunState.Failed, run.State);
        Assert.Contains("lists/none.txt", run.Error, StringComparison.Ordinal);
        Assert.Contains("does not exist", run.Error, StringComparison.Ordinal);
    }

    /// <summary>Scores a run over <paramref name="manifest"/> on fresh silos reading it in chunks of <paramref name="chunkBytes"/>.</summary>
    private async Task<RunRecord> ScoreManifestAsync(TinyModel model, string manifest, short silos, int shardSize, int chunkBytes)
    {
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            silos, database.ConnectionString, blobs.ConnectionString,
            settings: new Dictionary<string, string?> { ["Coordinator:ManifestChunkBytes"] = chunkBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "", shardSize: shardSize, modelPath: model.Path, manifest: manifest);
        return await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(5));
    }

    private async Task<Dictionary<string, string>> RecordIdsAsync(string sql, Guid runId)
    {
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var cmd = database.DataSource.CreateCommand(sql);
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0), reader.GetString(1));
        }

        return rows;
    }
}
