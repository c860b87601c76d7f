using System.Globalization;
using Azure.Storage.Blobs;
using HubertEcg.Grains;
using HubertEcg.Inference.Model;
using HubertEcg.Inference.Onnx;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Npgsql;
using Xunit.Abstractions;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Unattended at scale, in small: four runs at once, one of them poisoned (its model lies about its hidden size),
/// while blob storage goes away for a while, Postgres is restarted during that outage, and a silo is killed after it.
/// Every good record of the healthy runs is scored exactly once, the poisoned run fails with its reason within a
/// minute, no attempt is spent on the outage, and every run's counters equal its score and quarantine rows.
/// The services restarted are this test's own (<see cref="PrivatePostgres"/>, <see cref="PrivateAzurite"/>).
/// The test command runs the reduced size; <c>HUBERT_SOAK_RECORDS</c> (records per healthy run, default 60) and
/// <c>HUBERT_SOAK_OUTAGE_SECONDS</c> (default 30; the full size is 180) make it longer.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class SoakTests(ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Soak")]
    public async Task FourRunsThroughAStorageOutageAPostgresRestartAndAKilledSiloEndTruthfully()
    {
        var records = Setting("HUBERT_SOAK_RECORDS", 60);
        var outage = TimeSpan.FromSeconds(Setting("HUBERT_SOAK_OUTAGE_SECONDS", 30));
        await using var postgres = await PrivatePostgres.StartAsync();
        await using var azurite = await PrivateAzurite.StartAsync();
        await using var db = NpgsqlDataSource.Create(postgres.ConnectionString);
        await SchemaMigrator.ApplyAsync(db);
        var container = new BlobContainerClient(azurite.ConnectionString, "soak");
        await container.CreateAsync();
        using var model = new TinyModel(seed: 91);
        var lying = Path.Combine(model.Directory, "lying.onnx");
        ModelFiles.WithMetadata(model.Path, lying, OnnxModelMetadata.HiddenSizeKey, "2147483647");
        var cohorts = new Dictionary<string, CohortManifest>(StringComparer.Ordinal);
        foreach (var (prefix, count) in new[] { ("a/", records), ("b/", records), ("c/", 2 * records) })
        {
            cohorts[prefix] = await SyntheticCohort.UploadAsync(container, prefix, count);
        }

        var store = new RunStore(db);
        await using var cluster = await ScoringCluster.StartAsync(3, postgres.ConnectionString, azurite.ConnectionString);
        var healthy = new Dictionary<Guid, string>();
        foreach (var prefix in cohorts.Keys)
        {
            var id = await Runs.SubmitAsync(store, model.Descriptor, "soak", prefix, shardSize: 6, leaseSeconds: 20, maxAttempts: 3, modelPath: model.Path, name: "soak " + prefix);
            healthy[id] = prefix;
        }

        var poisonedAt = DateTime.UtcNow;
        var poisoned = await Runs.SubmitAsync(
            store, model.Descriptor with { HiddenSize = int.MaxValue }, "soak", "a/", shardSize: 6, modelPath: lying, name: "soak poisoned");

        // The poisoned run fails with its reason within a minute, whatever the others do.
        var failed = await Runs.WaitFinishedAsync(store, poisoned, TimeSpan.FromMinutes(1));
        Assert.Equal(RunState.Failed, failed.State);
        Assert.Contains("metadata entry says 2147483647", failed.Error, StringComparison.Ordinal);
        output.WriteLine($"poisoned run failed {(failed.FinishedAt!.Value - poisonedAt).TotalSeconds:F1} s after it was submitted");

        // Mid-run: some shards done, most not.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (await Runs.CountAsync(db, "select count(*) from run_shards where state = 'done' and run_id <> @run", poisoned) < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, "fewer than 3 shards done in 3 minutes");
            await Task.Delay(100);
        }

        var open = await Runs.CountAsync(db, "select count(*) from run_shards where state in ('pending', 'leased') and run_id <> @run", poisoned);
        Assert.True(open > 0, "every shard was done already: the outage would not be mid-run");
        await azurite.StopAsync();
        var stopped = DateTime.UtcNow;
        output.WriteLine($"storage stopped with {open} shards open; Postgres restarts during the outage");

        // The workers meet the outage: a run shows that it waits for storage (before Postgres goes too).
        while (await Runs.CountAsync(db, "select count(*) from runs where waiting_for = 'storage' and run_id <> @run", poisoned) == 0)
        {
            Assert.True(DateTime.UtcNow - stopped < TimeSpan.FromMinutes(2), "no run showed that it waits for storage within 2 minutes");
            await Task.Delay(100);
        }

        output.WriteLine($"a run waits for storage {(DateTime.UtcNow - stopped).TotalSeconds:F1} s after it stopped");
        while (DateTime.UtcNow - stopped < outage / 2)
        {
            await Task.Delay(200);
        }

        await postgres.StopAsync("fast");
        await Task.Delay(TimeSpan.FromSeconds(3));
        await postgres.StartServerAsync();
        while (DateTime.UtcNow - stopped < outage)
        {
            await Task.Delay(200);
        }

        await azurite.StartServerAsync();
        output.WriteLine($"storage back after {(DateTime.UtcNow - stopped).TotalSeconds:F1} s; killing a silo");
        await cluster.Cluster.KillSiloAsync(cluster.Cluster.Silos[^1]);

        foreach (var (runId, prefix) in healthy)
        {
            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(6));
            var shards = await store.Shards.LoadAsync(runId, includeBlobs: false);
            Assert.True(
                run.State == RunState.Completed,
                $"run {prefix} ended {run.State.ToText()}: {run.Error}; " + string.Join("; ", shards.Where(s => s.State != ShardState.Done).Select(s => $"{s.ShardNo} {s.State} {s.LastError}")));

            // No attempt was spent on the outage, the restart or the killed silo.
            Assert.All(shards, s => Assert.Equal((ShardState.Done, 1), (s.State, s.Attempts)));

            // Every good record exactly once; counters equal rows.
            var cohort = cohorts[prefix];
            var scored = await Runs.StringsAsync(db, "select record_id from scores where run_id = @run", runId);
            Assert.Equal(cohort.GoodRecords.Order(StringComparer.Ordinal), scored.Order(StringComparer.Ordinal));
            var quarantined = await Runs.StringsAsync(db, "select record_id from quarantine where run_id = @run", runId);
            Assert.Equal((run.RecordsDone, run.RecordsQuarantined), ((long)scored.Count, (long)quarantined.Count));
            Assert.Equal(cohort.CorruptRecords.Count, quarantined.Count);
        }

        var poisonedRow = (await store.GetRunAsync(poisoned))!;
        Assert.Equal(RunState.Failed, poisonedRow.State);
        Assert.Equal(0, await Runs.CountAsync(db, "select count(*) from scores where run_id = @run", poisoned));
    }

    private static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;
}
