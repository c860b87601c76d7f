using System.Diagnostics;
using HubertEcg.Grains;
using HubertEcg.Integration.Tests.Scheduling;
using HubertEcg.Storage;
using HubertEcg.Storage.Folders;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Runs over a folder (<c>file:///…</c>) on two in-process silos against real Postgres: the synthetic cohort written
/// to a temporary folder is scored and its corrupt records quarantined, as from blobs; a FIFO and a link out of the
/// folder are quarantined with their reasons; an incremental re-run scores nothing; a file touched (a new
/// modification time, same bytes) is scored again and nothing else is; and a manifest file in the folder works.
/// </summary>
public sealed class FolderInputRunTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "hubert-folder-run-" + Guid.NewGuid().ToString("N"));
    private readonly string _outside = Path.Combine(Path.GetTempPath(), "hubert-folder-outside-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        foreach (var folder in new[] { _root, _outside })
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Fact]
    public async Task AFolderIsScoredLikeAContainerAndIncrementalRunsFollowModificationTimes()
    {
        using var model = new TinyModel(seed: 71);
        var cohort = await SyntheticCohort.WriteToFolderAsync(_root, "cohort/", 20, mixed: true);

        // A FIFO named like a record (reading it would block) and a link to a record outside the folder.
        using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [Path.Combine(_root, "cohort", "pipe.npy")]) { UseShellExecute = false })!)
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        Directory.CreateDirectory(_outside);
        File.Copy(Path.Combine(_root, "cohort", "rec00000.npy"), Path.Combine(_outside, "elsewhere.npy"));
        File.CreateSymbolicLink(Path.Combine(_root, "cohort", "escape.npy"), Path.Combine(_outside, "elsewhere.npy"));

        var container = FolderInput.Scheme + _root;
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            2, database.ConnectionString, blobs.ConnectionString, settings: new Dictionary<string, string?> { ["Coordinator:ListPageSize"] = "7" });

        var full = await RunAsync(store, model, container, "cohort/", incremental: false);
        Assert.Equal((cohort.GoodRecords.Count, cohort.CorruptRecords.Count + 2, 0L), (full.RecordsDone, full.RecordsQuarantined, full.RecordsFailed));
        Assert.Equal(
            cohort.GoodRecords.Order(StringComparer.Ordinal),
            await Runs.StringsAsync(database.DataSource, Schedules.RecordsOfRun, full.RunId));
        var reasons = await QuarantineAsync(full.RunId);
        Assert.Equal(cohort.CorruptRecords.Append("cohort/pipe").Append("cohort/escape").Order(StringComparer.Ordinal), reasons.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("FIFO", reasons["cohort/pipe"], StringComparison.Ordinal);
        Assert.Contains("resolves outside the input folder", reasons["cohort/escape"], StringComparison.Ordinal);

        // A record's version is its file's size and modification time.
        var file = new FileInfo(Path.Combine(_root, "cohort", "rec00003.npy"));
        Assert.Equal($"{file.Length}:{file.LastWriteTimeUtc.Ticks}", await EtagOfAsync(model, "cohort/rec00003"));

        // Nothing changed: every scored record is left out while planning (the HDF5 shard whole).
        var unchanged = await RunAsync(store, model, container, "cohort/", incremental: true);
        Assert.Equal((0L, cohort.GoodRecords.Count), (unchanged.RecordsDone, unchanged.RecordsSkipped));
        Assert.Equal(cohort.GoodRecords.Count, unchanged.PlanningSkipped);

        // Touched, not rewritten: a new modification time is a new version, and only that record is scored again.
        var touched = DateTime.UtcNow.AddMinutes(5);
        File.SetLastWriteTimeUtc(file.FullName, touched);
        var next = await RunAsync(store, model, container, "cohort/", incremental: true);
        Assert.Equal((1L, cohort.GoodRecords.Count - 1L), (next.RecordsDone, next.RecordsSkipped));
        Assert.Equal(["cohort/rec00003"], await Runs.StringsAsync(database.DataSource, Schedules.RecordsOfRun, next.RunId));
        Assert.Equal($"{file.Length}:{touched.Ticks}", await EtagOfAsync(model, "cohort/rec00003"));

        // A manifest file in the folder names records relative to it; one it names that is not there is quarantined.
        await File.WriteAllTextAsync(Path.Combine(_root, "lists.txt"), "cohort/rec00001.npy\ncohort/rec00002.npy\ncohort/gone.npy\n");
        var listed = await RunAsync(store, model, container, "", incremental: false, manifest: "lists.txt");
        Assert.Equal((2L, 1L), (listed.RecordsDone, listed.RecordsQuarantined));
    }

    [Fact]
    public async Task ARunOverAFolderThatIsNotThereWaitsOutItsOutageBudgetAndFailsNamingIt()
    {
        using var model = new TinyModel(seed: 72);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(1, database.ConnectionString, blobs.ConnectionString);

        var runId = await Runs.SubmitAsync(
            store, model.Descriptor, FolderInput.Scheme + _root, "", shardSize: 4, modelPath: model.Path, outageBudgetSeconds: 2);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(2));
        Assert.Equal(RunState.Failed, run.State);
        Assert.Contains($"input folder '{_root}' is not there", run.Error, StringComparison.Ordinal);
        Assert.Contains("outage budget", run.Error, StringComparison.Ordinal);
    }

    private async Task<RunRecord> RunAsync(RunStore store, TinyModel model, string container, string prefix, bool incremental, string? manifest = null)
    {
        var runId = await Runs.SubmitAsync(
            store, model.Descriptor, container, prefix, shardSize: 4, modelPath: model.Path, manifest: manifest, incremental: incremental);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
        Assert.Equal(RunState.Completed, run.State);
        return run;
    }

    private async Task<Dictionary<string, string>> QuarantineAsync(Guid runId)
    {
        await using var cmd = database.DataSource.CreateCommand("select record_id, reason from quarantine where run_id = @run");
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0), reader.GetString(1));
        }

        return rows;
    }

    private async Task<string> EtagOfAsync(TinyModel model, string recordId)
    {
        await using var cmd = database.DataSource.CreateCommand("select source_etag from scores where model_id = @model and record_id = @record");
        cmd.Parameters.AddWithValue("model", model.Descriptor.ModelId);
        cmd.Parameters.AddWithValue("record", recordId);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }
}
