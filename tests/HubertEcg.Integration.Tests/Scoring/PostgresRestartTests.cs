using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit.Abstractions;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Postgres goes away in the middle of a run and comes back: score writes, coordinator persistence, lease calls and
/// progress reports are retried, and the run still ends with exactly one score row per good record and exact counts.
/// The server restarted is a private cluster of this test (<see cref="PrivatePostgres"/>), never the shared test
/// Postgres; the silos use localhost clustering, so Orleans itself does not depend on it.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class PostgresRestartTests(BlobContainerFixture blobs, ITestOutputHelper output) : IClassFixture<BlobContainerFixture>
{
    private const int Records = 240;

    [Fact]
    [Trait("Category", "Chaos")]
    public async Task RestartingPostgresMidRunRetriesWritesAndCompletesExactly()
    {
        await using var postgres = await PrivatePostgres.StartAsync();
        try
        {
            await using var db = NpgsqlDataSource.Create(postgres.ConnectionString);
            await SchemaMigrator.ApplyAsync(db);
            using var model = new TinyModel(seed: 33);
            var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "pgrestart/", Records);
            var store = new RunStore(db);
            await using var cluster = await ScoringCluster.StartAsync(2, postgres.ConnectionString, blobs.ConnectionString);
            var runId = await Runs.SubmitAsync(
                store, model.Descriptor, blobs.ContainerName, "pgrestart/", shardSize: 8, leaseSeconds: 20, modelPath: model.Path);

            // Leases (20 s) outlast the outage, so a shard in flight is finished by its worker, its writes retried, not
            // redone elsewhere. Wait until mid-run: some shards written, most not yet.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while ((await store.Shards.StateCountsAsync(runId)).GetValueOrDefault(ShardState.Done) < 3)
            {
                Assert.True(DateTime.UtcNow < deadline, "fewer than 3 shards done in 2 minutes");
                await Task.Delay(50);
            }

            var atStop = await store.Shards.StateCountsAsync(runId);
            Assert.True(
                atStop.GetValueOrDefault(ShardState.Pending) + atStop.GetValueOrDefault(ShardState.Leased) > 0,
                "every shard was already done: the restart would not be mid-run");
            output.WriteLine("shards at stop: " + string.Join(", ", atStop.Select(kv => $"{kv.Key}={kv.Value}")));

            // Fast shutdown ends every session (admin shutdown); the server stays down a while, then comes back.
            await postgres.StopAsync("fast");
            await Task.Delay(TimeSpan.FromSeconds(3));
            await postgres.StartServerAsync();
            var restarted = DateTime.UtcNow;

            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(3));
            output.WriteLine($"run {run.State} {(DateTime.UtcNow - restarted).TotalSeconds:F1} s after Postgres came back");
            Assert.True(
                run.State == RunState.Completed,
                $"run ended {run.State}: {run.Error}; shards: " + string.Join(
                    "; ", (await store.Shards.LoadAsync(runId, includeBlobs: false)).Where(s => s.State != ShardState.Done).Select(s => $"{s.ShardNo} {s.State} {s.LastError}")));
            Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
            Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);
            Assert.Equal(0, run.RecordsFailed);
            Assert.Equal(0, run.ShardsFailed);
            Assert.Equal(run.ShardsPlanned, run.ShardsDone);

            // Exactly one score row per good record, one quarantine row per corrupt record: nothing lost, nothing twice.
            var scored = await Runs.StringsAsync(db, "select record_id from scores where run_id = @run", runId);
            Assert.Equal(cohort.GoodRecords.Order(StringComparer.Ordinal), scored.Order(StringComparer.Ordinal));
            var quarantined = await Runs.StringsAsync(db, "select record_id from quarantine where run_id = @run", runId);
            Assert.Equal(cohort.CorruptRecords.Order(StringComparer.Ordinal), quarantined.Order(StringComparer.Ordinal));

            // Every shard was done in one attempt (the failed writes were retried; no lease was given up or expired),
            // and the done shards' counts add up to what the run reports.
            var shards = await store.Shards.LoadAsync(runId, includeBlobs: false);
            Assert.All(shards, s => Assert.Equal((ShardState.Done, 1), (s.State, s.Attempts)));
            Assert.Equal(run.RecordsDone, shards.Sum(s => (long)s.RecordsDone));
            Assert.Equal(run.RecordsQuarantined, shards.Sum(s => (long)s.RecordsQuarantined));
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException($"{e.Message}\nprivate Postgres log:\n{postgres.LogTail()}", e);
        }
    }

    [Fact]
    [Trait("Category", "Chaos")]
    public async Task ARunThatCouldNotBeStoredAsFinishedIsFinishedAgainWhenPostgresIsBack()
    {
        await using var postgres = await PrivatePostgres.StartAsync();
        await using var db = NpgsqlDataSource.Create(postgres.ConnectionString);
        await SchemaMigrator.ApplyAsync(db);
        using var model = new TinyModel(seed: 34);
        await SyntheticCohort.UploadAsync(blobs.Container, "pgdown-cancel/", 6);
        var store = new RunStore(db);

        // No workers (nothing gets leased, the run stays open); the coordinator's store gives up after a short outage.
        await using var cluster = await ScoringCluster.StartAsync(
            1,
            postgres.ConnectionString,
            blobs.ConnectionString,
            workers: false,
            services: s => s.AddSingleton(sp => new RunStore(
                sp.GetRequiredService<NpgsqlDataSource>(), new TransientRetry(maxAttempts: 2, firstDelay: TimeSpan.FromMilliseconds(50)))));
        var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "pgdown-cancel/", shardSize: 4, modelPath: model.Path);
        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (!(await coordinator.GetProgress()).PlanningComplete)
        {
            Assert.True(DateTime.UtcNow < deadline, "planning did not complete in a minute");
            await Task.Delay(50);
        }

        await postgres.StopAsync("fast");
        await Assert.ThrowsAnyAsync<Exception>(() => coordinator.Cancel());

        // Not stored, so not final: the coordinator still reports the run open and a later cancel is not ignored.
        Assert.Equal(RunState.Planning, (await coordinator.GetProgress()).State);
        await postgres.StartServerAsync();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await coordinator.Cancel();
                break;
            }
            catch (Exception) when (attempt < 5)
            {
                // A pooled connection from before the restart may still fail once; ask again, as a client would.
                await Task.Delay(200);
            }
        }

        var run = await store.GetRunAsync(runId);
        Assert.Equal((RunState.Cancelled, "cancelled by request"), (run!.State, run.Error));
        Assert.NotNull(run.FinishedAt);
        Assert.Equal(RunState.Cancelled, (await coordinator.GetProgress()).State);
    }
}
