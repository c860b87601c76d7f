using System.Text;
using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Grains.Workers;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Inference.Model;
using HubertEcg.Integration.Tests.Scoring;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace HubertEcg.Integration.Tests.Telemetry;

/// <summary>
/// What a run reports about itself, observed on real in-process silos against real Postgres and Azurite: the
/// HubertEcg meter's counts match the rows the run wrote, and the logs name run and shard but never record content.
/// </summary>
public sealed class TelemetryTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    // Patient metadata as WFDB and Challenge headers carry it in comments, and a sample value that only the signal holds.
    private static readonly string[] PatientMarkers = ["Age: 63", "Sex: F", "Dx: 164889003", "Zyxwvut", "Quorra", "31337"];

    [Fact]
    public async Task TheMeterCountsWhatTheRunWroteAndItsQueuesDrain()
    {
        using var model = new TinyModel(seed: 71);
        using var recorder = new MetricsRecorder(ScoringMetrics.MeterName);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "metrics/", 40);
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(2, database.ConnectionString, blobs.ConnectionString);

        // A long lease: a shard redone after an expiry would (rightly) be counted twice.
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "metrics/", shardSize: 10, batchSize: 4, leaseSeconds: 300, modelPath: model.Path);
        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);

        // Instruments carry no run id (their series must not grow with every run): this cluster's silos ran only this
        // run, so their meters' counts are the run's.
        var meters = cluster.Cluster.Silos.Select(s => s.ServiceProvider.GetRequiredService<ScoringMetrics>().Meter).ToHashSet();
        List<RecordedMeasurement> OfRun(string instrument) => recorder.Of(instrument).Where(m => meters.Contains(m.Meter)).ToList();
        Assert.All(recorder.Of(ScoringMetrics.RecordsScored), m => Assert.DoesNotContain("run_id", m.Tags.Keys));
        var scored = OfRun(ScoringMetrics.RecordsScored);
        var quarantined = OfRun(ScoringMetrics.RecordsQuarantined);
        var windows = OfRun(ScoringMetrics.WindowsScored);

        Assert.Equal(await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", runId), scored.Sum(m => (long)m.Value));
        Assert.Equal(await Runs.CountAsync(database.DataSource, "select count(*) from quarantine where run_id = @run", runId), quarantined.Sum(m => (long)m.Value));
        Assert.Equal(
            await Runs.CountAsync(database.DataSource, "select coalesce(sum(windows_used), 0) from scores where run_id = @run", runId),
            windows.Sum(m => (long)m.Value));
        Assert.Equal(
            await Runs.CountAsync(database.DataSource, "select count(*) from run_shards where run_id = @run and state = 'done'", runId),
            OfRun(ScoringMetrics.ShardsCompleted).Sum(m => (long)m.Value));
        Assert.Equal(run.ShardsPlanned, OfRun(ScoringMetrics.ShardsCompleted).Count);
        Assert.Equal(2, meters.Count);
        Assert.Empty(OfRun(ScoringMetrics.ShardsFailed));
        Assert.Empty(OfRun(ScoringMetrics.LeasesExpired));
        Assert.All(scored.Concat(windows), m => Assert.Equal(model.Descriptor.ModelId, m.Tag(ScoringMetrics.ModelIdTag)));

        // The counts name the workers that held the shards; the latency histograms carry those workers, one model call
        // per windows count and one write per rows count.
        var owners = (await store.Shards.LoadAsync(runId, includeBlobs: false)).Select(s => s.LeaseOwner).ToHashSet();
        Assert.All(scored.Concat(quarantined).Concat(windows), m => Assert.Contains(m.Tag(ScoringMetrics.WorkerIdTag), owners));
        var workers = cluster.Cluster.Silos.SelectMany(s => s.ServiceProvider.GetRequiredService<ScoringWorkerHost>().Workers).Select(w => w.WorkerId).ToHashSet();
        Assert.Equal(2, workers.Count);
        List<RecordedMeasurement> OfOurWorkers(string instrument) =>
            recorder.Of(instrument).Where(m => workers.Contains(m.Tag(ScoringMetrics.WorkerIdTag) ?? "")).ToList();
        var batches = OfOurWorkers(ScoringMetrics.BatchDuration);
        Assert.Equal(windows.Count, batches.Count);
        Assert.All(batches, m => Assert.True(m.Value >= 0 && m.Tag(ScoringMetrics.ModelIdTag) == model.Descriptor.ModelId));
        var writes = OfOurWorkers(ScoringMetrics.WriteDuration);
        Assert.Equal(scored.Count, writes.Count(m => m.Tag(ScoringMetrics.TableTag) == "scores"));
        Assert.Equal(quarantined.Count, writes.Count(m => m.Tag(ScoringMetrics.TableTag) == "quarantine"));
        Assert.All(writes, m => Assert.True(m.Value >= 0));

        // Every worker reports each queue's depth; with the run over, all are empty.
        recorder.Observe();
        foreach (var queue in new[] { ScoringMetrics.QueueRecords, ScoringMetrics.QueueWindows, ScoringMetrics.QueueRows, ScoringMetrics.QueueShards })
        {
            var depths = OfOurWorkers(queue);
            Assert.Equal(workers, depths.Select(m => m.Tag(ScoringMetrics.WorkerIdTag)!).ToHashSet());
            Assert.All(depths, m => Assert.Equal(0, m.Value));
        }
    }

    [Fact]
    public async Task LogsNameRunAndShardButNeverPatientMetadataOrSamples()
    {
        using var model = new TinyModel(seed: 72);
        var good = new List<string>();
        var uploads = new List<Task>();
        async Task PutAll(string stem, IReadOnlyDictionary<string, byte[]> files)
        {
            foreach (var (name, bytes) in files)
            {
                await blobs.Container.GetBlobClient($"logs/{name}").UploadAsync(new BinaryData(bytes), overwrite: true);
            }
        }

        for (var i = 0; i < 6; i++)
        {
            var name = $"p{i:D3}";
            uploads.Add(PutAll(name, WithPatientComments(WfdbWriter.Write(SyntheticEcg.Generate(name, 500 + i, 500, 10), name), name, h => h)));
            good.Add($"logs/{name}");
        }

        // Corrupt records that carry the same comments: patient text on the record line, a truncated signal file whose
        // samples all hold the marker value, and a file that is not NumPy.
        var signal = SyntheticEcg.Generate("bad", 99, 500, 10);
        uploads.Add(PutAll("bad_line", WithPatientComments(WfdbWriter.Write(signal, "bad_line"), "bad_line", h => h.Replace("bad_line 12 500 5000", "bad_line 12 500 5000 10:00:00 01/02/2020 Zyxwvut Quorra", StringComparison.Ordinal))));
        var constant = new EcgSignal("bad_cut", 500, signal.LeadNames, signal.Leads.Select(_ => Enumerable.Repeat(31.337, 5000).ToArray()).ToArray());
        var cut = new Dictionary<string, byte[]>(WithPatientComments(WfdbWriter.Write(constant, "bad_cut"), "bad_cut", h => h));
        cut["bad_cut.dat"] = cut["bad_cut.dat"][..1000];
        uploads.Add(PutAll("bad_cut", cut));
        uploads.Add(blobs.Container.GetBlobClient("logs/bad_npy.npy").UploadAsync(new BinaryData("# Age: 63\n# Sex: F\n"u8.ToArray()), overwrite: true));
        await Task.WhenAll(uploads);

        var logs = new CollectingLoggerProvider();
        var store = new RunStore(database.DataSource);
        await using (var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, services: s =>
            {
                s.AddSingleton<ILoggerProvider>(logs);
                s.Configure<LoggerFilterOptions>(o => o.Rules.Add(new LoggerFilterRule(typeof(CollectingLoggerProvider).FullName, "HubertEcg", LogLevel.Debug, null)));
            }))
        {
            var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "logs/", shardSize: 3, modelPath: model.Path);
            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
            Assert.Equal(RunState.Completed, run.State);
            Assert.Equal(good.Count, run.RecordsDone);
            Assert.Equal(3, run.RecordsQuarantined);

            // Quarantine reasons name the reason only.
            var reasons = await ReasonsAsync(runId);
            Assert.Equal(["logs/bad_cut", "logs/bad_line", "logs/bad_npy"], reasons.Keys.Order(StringComparer.Ordinal));
            Assert.Contains("unexpected text", reasons["logs/bad_line"], StringComparison.Ordinal);
            foreach (var reason in reasons.Values)
            {
                Assert.DoesNotContain(PatientMarkers, m => reason.Contains(m, StringComparison.Ordinal));
            }

            var lines = logs.Logs;
            var workerLines = lines.Where(l => l.Category == typeof(ScoringWorker).FullName).ToList();
            var coordinatorLines = lines.Where(l => l.Category == typeof(RunCoordinatorGrain).FullName).ToList();

            // The worker's lines about this run's shards: every one names the run and the shard (parameters or scope).
            Assert.Contains(workerLines, l => l.EventName == "LogShardDone");
            Assert.Contains(workerLines, l => l.EventName == "LogLeased" && l.Level == LogLevel.Debug);
            Assert.All(workerLines, l =>
            {
                Assert.Equal(runId, l.Property("RunId"));
                Assert.IsType<int>(l.Property("ShardNo"));
            });
            Assert.Equal(
                Enumerable.Range(0, run.ShardsPlanned).ToHashSet(),
                workerLines.Where(l => l.EventName == "LogShardDone").Select(l => (int)l.Property("ShardNo")!).ToHashSet());

            // The coordinator's lines all name the run; those about one shard name it too.
            Assert.Contains(coordinatorLines, l => l.EventName == "LogCompleted");
            Assert.All(coordinatorLines, l => Assert.Equal(runId, l.Property("RunId")));
            Assert.All(
                coordinatorLines.Where(l => l.EventName is "LogLeased" or "LogCompleted" or "LogReleased" or "LogExpired"),
                l => Assert.IsType<int>(l.Property("ShardNo")));

            // No line of any category (Orleans' included) carries patient metadata or sample values.
            Assert.NotEmpty(lines);
            foreach (var line in lines)
            {
                Assert.DoesNotContain(PatientMarkers, m => line.AllText.Contains(m, StringComparison.Ordinal));
            }
        }
    }

    [Fact]
    public void UnexpectedErrorsAreDescribedWithoutTheirMessage()
    {
        FormatException thrown;
        try
        {
            _ = int.Parse("# Age: 63", System.Globalization.CultureInfo.InvariantCulture);
            throw new InvalidOperationException("int.Parse accepted a header comment");
        }
        catch (FormatException e)
        {
            thrown = e;
        }

        Assert.Contains("Age: 63", thrown.Message, StringComparison.Ordinal);
        var reason = SafeErrors.Describe(thrown);
        Assert.StartsWith("unexpected FormatException in ", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("Age", reason, StringComparison.Ordinal);
        var forLog = SafeErrors.ForLog(new AggregateException(thrown)).ToString();
        Assert.DoesNotContain("Age", forLog, StringComparison.Ordinal);
        Assert.Contains("FormatException", forLog, StringComparison.Ordinal);
        Assert.Contains(nameof(UnexpectedErrorsAreDescribedWithoutTheirMessage), forLog, StringComparison.Ordinal);

        // The project's own errors and the infrastructure's are kept as they are.
        var format = new EcgFormatException("cohort/r1", "header has no record line");
        Assert.Equal("header has no record line", SafeErrors.Describe(format));
        Assert.Same(format, SafeErrors.ForLog(format));
        var missing = new BlobNotFoundException("c", "cohort/r1.dat");
        Assert.Equal("BlobNotFoundException: blob 'c/cohort/r1.dat' does not exist", SafeErrors.Describe(missing));
        var cpuBuild = Assert.Throws<ExecutionProviderUnavailableException>(() => OnnxEcgScorer.EnsureProviderAvailable(ExecutionProviderKind.Cuda, OnnxRuntimeFlavor.Cpu));
        Assert.Equal($"ExecutionProviderUnavailableException: {cpuBuild.Message}", SafeErrors.Describe(cpuBuild));
        var noCuda = ExecutionProviderUnavailableException.FromCudaError(0, new InvalidOperationException("libcublasLt.so.13: cannot open shared object file: No such file or directory"));
        Assert.Same(noCuda, SafeErrors.ForLog(noCuda));
    }

    private static Dictionary<string, byte[]> WithPatientComments(IReadOnlyDictionary<string, byte[]> files, string stem, Func<string, string> edit)
    {
        var copy = new Dictionary<string, byte[]>(files, StringComparer.Ordinal);
        var header = Encoding.ASCII.GetString(copy[$"{stem}.hea"]);
        copy[$"{stem}.hea"] = Encoding.ASCII.GetBytes(edit(header) + "# Age: 63\n# Sex: F\n# Dx: 164889003\n# Name: Zyxwvut Quorra\n");
        return copy;
    }

    private async Task<Dictionary<string, string>> ReasonsAsync(Guid runId)
    {
        await using var cmd = database.DataSource.CreateCommand("select record_id, reason from quarantine where run_id = @run");
        cmd.Parameters.AddWithValue("run", runId);
        await using var reader = await cmd.ExecuteReaderAsync();
        var reasons = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
        {
            reasons.Add(reader.GetString(0), reader.GetString(1));
        }

        return reasons;
    }
}
