using System.Diagnostics;
using HubertEcg.Grains;
using HubertEcg.Storage;
using HubertEcg.Testing;
using Xunit.Abstractions;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>
/// The coordinator's lease bookkeeping alone: a planned run of <c>HUBERT_BENCH_SHARDS</c> shards (default 1,000) of
/// 100 records each, worked by simulated workers that lease and complete shards without scoring. The issue's
/// overhead figure is 10,000 shards / 1,000,000 records; the test checks the bookkeeping is exact and prints the time
/// and the coordinator's memory: the growth of the managed heap (after a full collection) from before the coordinator
/// was activated to once it has loaded the plan and leased its first shard, and again once every shard is done.
/// </summary>
public sealed class CoordinatorLoadTests(PostgresDatabaseFixture database, BlobContainerFixture blobs, ITestOutputHelper output)
    : IClassFixture<PostgresDatabaseFixture>, IClassFixture<BlobContainerFixture>
{
    private const int RecordsPerShard = 100;

    private static int Shards =>
        int.TryParse(Environment.GetEnvironmentVariable("HUBERT_BENCH_SHARDS"), out var n) && n > 0 ? n : 1000;

    [Fact]
    [Trait("Category", "Benchmark")]
    public async Task SimulatedWorkersDrainAPlannedRunExactly()
    {
        var store = new RunStore(database.DataSource);
        await using var cluster = await ScoringCluster.StartAsync(
            1, database.ConnectionString, blobs.ConnectionString, workers: false);
        var runId = await Runs.SubmitAsync(store, TestModels.Descriptor("load-model"), blobs.ContainerName, "none/", shardSize: RecordsPerShard, leaseSeconds: 300);

        // The plan as listing would have left it: every shard pending, listing complete.
        var shards = Enumerable.Range(0, Shards)
            .Select(i => new ShardRecord(runId, i, ShardKind.Records, [$"none/r{i}.npy"], RecordsPerShard, ShardState.Pending, 0, null, null, 0, 0, null))
            .ToList();
        await store.Shards.AppendPlanAsync(runId, shards, null, [], planningComplete: true);

        var coordinator = cluster.Grains.GetGrain<IRunCoordinatorGrain>(runId);
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        var first = await coordinator.AcquireLease("sim-first");
        Assert.NotNull(first);
        clock.Stop();
        var heapActive = GC.GetTotalMemory(forceFullCollection: true);
        clock.Start();
        await coordinator.Complete(new ShardOutcome("sim-first", first.ShardNo, first.LeaseId, RecordsPerShard - 1, 1));
        var completed = 1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var worker = $"sim-{w}";
            while (await coordinator.AcquireLease(worker) is { } lease)
            {
                await coordinator.Complete(new ShardOutcome(worker, lease.ShardNo, lease.LeaseId, RecordsPerShard - 1, 1));
                Interlocked.Increment(ref completed);
            }
        })));
        clock.Stop();
        var heapDrained = GC.GetTotalMemory(forceFullCollection: true);

        var run = await Runs.WaitFinishedAsync(store, runId, TimeSpan.FromMinutes(1));
        Assert.Equal(Shards, completed);
        Assert.Equal(RunState.Completed, run.State);
        Assert.Equal(Shards, run.ShardsDone);
        Assert.Equal((long)Shards * (RecordsPerShard - 1), run.RecordsDone);
        Assert.Equal(Shards, run.RecordsQuarantined);
        Assert.Equal((long)Shards * RecordsPerShard, run.RecordsPlanned);
        output.WriteLine(
            $"{Shards} shards / {(long)Shards * RecordsPerShard} records: lease + complete bookkeeping took {clock.Elapsed.TotalSeconds:0.0} s " +
            $"({Shards / clock.Elapsed.TotalSeconds:0} shards/s); coordinator memory: managed heap " +
            $"+{Mib(heapActive - heapBefore):0.0} MiB once the plan was loaded, +{Mib(heapDrained - heapBefore):0.0} MiB with every shard done " +
            $"(whole test process {Mib(heapDrained):0.0} MiB)");
    }

    private static double Mib(long bytes) => bytes / (1024.0 * 1024.0);
}
