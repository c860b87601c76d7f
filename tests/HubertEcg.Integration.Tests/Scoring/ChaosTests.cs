using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Inference.Formats;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// Crashes in the middle of a run, with real silo processes on ADO.NET clustering: the run still ends with exactly one
/// score row per good record and exact counts. Run alone with <c>--filter Category=Chaos</c>.
/// </summary>
[Collection(nameof(ConsoleBound))]
public sealed class ChaosTests(PostgresDatabaseFixture database, BlobContainerFixture blobs)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private const int Records = 160;

    [Fact]
    [Trait("Category", "Chaos")]
    public async Task KillingOneSiloMidRunLosesNothingAndDuplicatesNothing()
    {
        using var model = new TinyModel(seed: 31);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "kill/", Records);
        var clusterId = "chaos-" + Guid.NewGuid().ToString("N")[..8];
        var silos = StartSilos(clusterId, "silo", 3);
        try
        {
            var store = new RunStore(database.DataSource);
            // A lease far longer than the test: the killed silo's shards must be taken back because the cluster declared
            // it dead, not because their leases expired, and a silo dying is not the shards' fault (no attempt spent).
            var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "kill/", shardSize: 8, leaseSeconds: 600, modelPath: model.Path);
            await WaitForShardsDoneAsync(store, runId, 3, silos);

            // Kill a silo whose worker holds leases (its current shard and the one it prefetched).
            var victim = await LeaseHolderAsync(store, runId, silos);
            victim.Kill();
            var orphaned = (await store.Shards.LoadAsync(runId, includeBlobs: false))
                .Where(s => s.State == ShardState.Leased && s.LeaseOwner!.StartsWith(victim.Name + "@", StringComparison.Ordinal))
                .Select(s => s.ShardNo)
                .ToList();
            Assert.NotEmpty(orphaned);
            var midway = await store.GetRunAsync(runId);
            Assert.NotEqual(RunState.Completed, midway!.State);

            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(4));
            await AssertExactAsync(run, cohort);

            // The dead worker's leases were taken back and other workers redid those shards, on the same attempt.
            var shards = (await store.Shards.LoadAsync(runId, includeBlobs: false)).ToDictionary(s => s.ShardNo);
            Assert.All(orphaned, n =>
            {
                Assert.Equal(ShardState.Done, shards[n].State);
                Assert.Equal(1, shards[n].Attempts);
                Assert.False(shards[n].LeaseOwner!.StartsWith(victim.Name + "@", StringComparison.Ordinal));
            });
        }
        finally
        {
            silos.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    [Trait("Category", "Chaos")]
    public async Task StoppingEverySiloMidRunAndStartingNewOnesResumesTheRun()
    {
        using var model = new TinyModel(seed: 32);

        // Three times the cohort of the other tests: with every worker of the cluster scoring, the run must still be far
        // from done once 3 shards are, even when this test's thread is held up (a busy machine) before the kill.
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "restart/", 3 * Records);
        var clusterId = "chaos-" + Guid.NewGuid().ToString("N")[..8];
        var first = StartSilos(clusterId, "old", 2);
        var second = new List<SiloProcess>();
        try
        {
            var store = new RunStore(database.DataSource);
            var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "restart/", shardSize: 8, leaseSeconds: 4, modelPath: model.Path);
            await WaitForShardsDoneAsync(store, runId, 3, first);
            Parallel.ForEach(first, s => s.Kill());
            var midway = await store.GetRunAsync(runId);
            Assert.NotEqual(RunState.Completed, midway!.State);

            second.AddRange(StartSilos(clusterId, "new", 2));
            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(4));
            await AssertExactAsync(run, cohort);
        }
        finally
        {
            first.ForEach(s => s.Dispose());
            second.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    [Trait("Category", "Chaos")]
    public async Task DeletingTheBlobOfAShardNotReadYetMidRunFailsThatShardWithTheReasonAndTheRestCompletes()
    {
        using var model = new TinyModel(seed: 41);
        var cohort = await SyntheticCohort.UploadAsync(blobs.Container, "vanish/", Records);
        var silos = StartSilos("chaos-" + Guid.NewGuid().ToString("N")[..8], "vsilo", 2);
        try
        {
            var store = new RunStore(database.DataSource);
            var runId = await Runs.SubmitAsync(store, model.Descriptor, blobs.ContainerName, "vanish/", shardSize: 5, leaseSeconds: 10, modelPath: model.Path);
            await WaitForShardsDoneAsync(store, runId, 3, silos);

            // Mid-run: shards are done and workers hold leases. The last shard still waiting loses one of its blobs.
            var shards = await store.Shards.LoadAsync(runId);
            var victim = shards.Last(s => s.State == ShardState.Pending);
            var blob = victim.Blobs[^1];
            await blobs.Container.DeleteBlobAsync(blob);
            var atDeletion = (await store.Shards.LoadAsync(runId, includeBlobs: false)).ToDictionary(s => s.ShardNo);
            Assert.Equal(ShardState.Pending, atDeletion[victim.ShardNo].State);
            Assert.Contains(atDeletion.Values, s => s.State == ShardState.Leased);
            Assert.True(atDeletion.Values.Count(s => s.State == ShardState.Done) >= 3);

            var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(4));
            Assert.Equal(RunState.CompletedWithFailures, run.State);
            Assert.Equal(1, run.ShardsFailed);
            Assert.Equal(victim.RecordsPlanned, run.RecordsFailed);
            Assert.Equal(cohort.GoodRecords.Count - victim.RecordsPlanned, run.RecordsDone);
            Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);

            var failed = (await store.Shards.LoadAsync(runId, includeBlobs: false)).Single(s => s.State == ShardState.Failed);
            Assert.Equal(victim.ShardNo, failed.ShardNo);
            Assert.Equal(1, failed.Attempts);
            Assert.Contains($"blob '{blobs.ContainerName}/{blob}' does not exist", failed.LastError, StringComparison.Ordinal);

            // Every other record is scored exactly once; none of the failed shard's records is.
            Assert.Equal(run.RecordsDone, await Runs.CountAsync(database.DataSource, "select count(distinct record_id) from scores where run_id = @run", runId));
            Assert.Equal(run.RecordsDone, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", runId));
            var victimRecords = victim.Blobs.Select(FormatRegistry.RecordStem).ToArray();
            await using var cmd = database.DataSource.CreateCommand("select count(*) from scores where run_id = @run and record_id = any(@records)");
            cmd.Parameters.AddWithValue("run", runId);
            cmd.Parameters.AddWithValue("records", victimRecords);
            Assert.Equal(0L, (long)(await cmd.ExecuteScalarAsync())!);
        }
        finally
        {
            silos.ForEach(s => s.Dispose());
        }
    }

    private List<SiloProcess> StartSilos(string clusterId, string namePrefix, int count) =>
        Enumerable.Range(0, count).Select(i => SiloProcess.Start(clusterId, $"{namePrefix}{i}", database.ConnectionString, blobs.ConnectionString)).ToList();

    private static async Task WaitForShardsDoneAsync(RunStore store, Guid runId, int shards, IReadOnlyList<SiloProcess> silos)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var counts = await store.Shards.StateCountsAsync(runId);
            if (counts.GetValueOrDefault(ShardState.Done) >= shards)
            {
                return;
            }

            if (DateTime.UtcNow > deadline || silos.Any(s => s.HasExited))
            {
                throw new TimeoutException($"fewer than {shards} shards done; silo logs:\n" + string.Join("\n---\n", silos.Select(s => s.Name + ":\n" + s.Log)));
            }

            await Task.Delay(100);
        }
    }

    private static async Task<SiloProcess> LeaseHolderAsync(RunStore store, Guid runId, IReadOnlyList<SiloProcess> silos)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (DateTime.UtcNow < deadline)
        {
            var leased = (await store.Shards.LoadAsync(runId, includeBlobs: false)).Where(s => s.State == ShardState.Leased).ToList();
            var holder = silos.FirstOrDefault(p => leased.Count(s => s.LeaseOwner!.StartsWith(p.Name + "@", StringComparison.Ordinal)) >= 2)
                ?? silos.FirstOrDefault(p => leased.Any(s => s.LeaseOwner!.StartsWith(p.Name + "@", StringComparison.Ordinal)));
            if (holder is not null)
            {
                return holder;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException("no silo held a lease");
    }

    private async Task AssertExactAsync(RunRecord run, CohortManifest cohort)
    {
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(cohort.GoodRecords.Count, run.RecordsDone);
        Assert.Equal(cohort.CorruptRecords.Count, run.RecordsQuarantined);
        Assert.Equal(0, run.RecordsFailed);
        Assert.Equal(0, run.ShardsFailed);
        Assert.Equal(cohort.GoodRecords.Count, await Runs.CountAsync(database.DataSource, "select count(*) from scores where run_id = @run", run.RunId));
        Assert.Equal(cohort.GoodRecords.Count, await Runs.CountAsync(database.DataSource, "select count(distinct record_id) from scores where run_id = @run", run.RunId));
        Assert.Equal(cohort.CorruptRecords.Count, await Runs.CountAsync(database.DataSource, "select count(*) from quarantine where run_id = @run", run.RunId));
    }
}
