using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Storage;

namespace HubertEcg.Unit.Tests.Coordination;

/// <summary>The coordinator's shard bookkeeping: rebuilt from stored rows, numbered by a counter, changed only once stored.</summary>
public sealed class ShardBookTests
{
    private static readonly Guid Run = Guid.Parse("7f1d2c3b-0000-4000-8000-000000000001");
    private static readonly DateTime Now = new(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    private static ShardRecord Row(int no, ShardState state = ShardState.Pending, int attempts = 0, string? owner = null, DateTime? deadline = null) =>
        new(Run, no, ShardKind.Records, [], 10, state, attempts, owner, deadline, 0, 0, null);

    [Fact]
    public void AStoredPlanIsRebuiltWithItsQueueLeasesAndCounter()
    {
        var book = new ShardBook(
        [
            Row(0, ShardState.Done),
            Row(1, ShardState.Leased, 1, "w1", Now.AddMinutes(1)),
            Row(2),
            Row(3, ShardState.Failed, 3),
            Row(4),
        ]);

        Assert.Equal((5, 2, 1), (book.Count, book.PendingCount, book.LeasedCount));
        Assert.Equal(5, book.NextShardNo);
        Assert.Equal(2, book.NextPending?.ShardNo);
        Assert.False(book.IsDrained);
        Assert.True(book.TryGet(1, out var leased));
        Assert.True(leased.IsHeldBy("w1", 1));
        Assert.False(leased.IsHeldBy("w1", 2));
        Assert.False(leased.IsHeldBy("w2", 1));
        Assert.False(book.TryGet(5, out _));
    }

    [Fact]
    public void AnEmptyPlanStartsNumberingAtZeroAndIsDrained()
    {
        var book = new ShardBook([]);
        Assert.Equal(0, book.NextShardNo);
        Assert.Null(book.NextPending);
        Assert.True(book.IsDrained);
    }

    [Fact]
    public void PlannedShardsAreNumberedFromTheCounterAndQueuedAtTheBack()
    {
        var book = new ShardBook([Row(0, ShardState.Done), Row(7)]);
        var records = book.Number(Run, [new PlannedShard(ShardKind.Container, ["a.h5"], 0), new PlannedShard(ShardKind.Records, ["b.npy", "c.npy"], 2)]);

        Assert.Equal([8, 9], records.Select(r => r.ShardNo));
        Assert.All(records, r => Assert.Equal((Run, ShardState.Pending, 0), (r.RunId, r.State, r.Attempts)));
        Assert.Equal(["b.npy", "c.npy"], records[1].Blobs);
        Assert.Equal(8, book.NextShardNo); // numbering reserves nothing until the step is added

        book.AddPlanned(records);
        Assert.Equal((4, 3, 10), (book.Count, book.PendingCount, book.NextShardNo));
        Assert.Equal(7, book.NextPending?.ShardNo);
        Assert.Equal(2, Assert.IsType<ShardEntry>(book.Shards.Single(s => s.ShardNo == 9)).RecordsPlanned);
    }

    [Fact]
    public void ManyStepsKeepNumberingDense()
    {
        var book = new ShardBook([]);
        for (var step = 0; step < 2000; step++)
        {
            book.AddPlanned(book.Number(Run, [new PlannedShard(ShardKind.Records, ["x"], 1), new PlannedShard(ShardKind.Records, ["y"], 1)]));
        }

        Assert.Equal((4000, 4000), (book.Count, book.NextShardNo));
        Assert.Equal(Enumerable.Range(0, 4000), book.Shards.Select(s => s.ShardNo));
    }

    [Fact]
    public void AStepNumberedAgainstAnOlderCounterIsRefusedWhole()
    {
        var book = new ShardBook([Row(0)]);
        var first = book.Number(Run, [new PlannedShard(ShardKind.Records, ["a"], 1)]);
        var second = book.Number(Run, [new PlannedShard(ShardKind.Records, ["b"], 1), new PlannedShard(ShardKind.Records, ["c"], 1)]);
        book.AddPlanned(first);

        Assert.Throws<InvalidOperationException>(() => book.AddPlanned(second));
        Assert.Equal((2, 2), (book.Count, book.NextShardNo));
        Assert.Throws<InvalidOperationException>(() => book.AddPlanned([Row(2, ShardState.Leased)]));
        Assert.Equal(2, book.Count);
    }

    [Fact]
    public async Task AStoredLeaseMovesTheShardFromTheQueueToTheLeases()
    {
        var book = new ShardBook([Row(0), Row(1)]);
        var shard = book.NextPending!;
        ShardRecord? stored = null;

        var result = await book.LeaseAsync(
            shard,
            "w1",
            Now,
            row =>
            {
                stored = row;

                // Stored before it moves: while the store call is in flight the shard is still first in the queue.
                Assert.Equal(0, book.NextPending?.ShardNo);
                return Task.FromResult<IReadOnlyList<string>>(["a.npy"]);
            });

        Assert.Equal(["a.npy"], result);
        Assert.Equal((Run, 0, ShardState.Leased, 1, "w1", Now), (stored!.RunId, stored.ShardNo, stored.State, stored.Attempts, stored.LeaseOwner, stored.LeaseDeadline));
        Assert.Equal((1, 1), (book.PendingCount, book.LeasedCount));
        Assert.Equal(1, book.NextPending?.ShardNo);
        Assert.True(shard.IsHeldBy("w1", 1));
    }

    [Fact]
    public async Task AChangeThatCannotBeStoredLeavesTheShardAsItWas()
    {
        var book = new ShardBook([Row(0, attempts: 1), Row(1)]);
        var shard = book.NextPending!;
        shard.ReportedInFlight = 5;

        var e = await Assert.ThrowsAsync<TimeoutException>(() => book.UpdateAsync(
            shard,
            s => (s.State, s.Attempts, s.LeaseOwner, s.LeaseDeadline, s.ReportedInFlight, s.LastError) = (ShardState.Leased, 2, "w1", Now, 0, "x"),
            _ => Task.FromException<IReadOnlyList<string>>(new TimeoutException("postgres unreachable"))));

        Assert.Equal("postgres unreachable", e.Message);
        Assert.Equal(
            (ShardState.Pending, 1, (string?)null, (DateTime?)null, 5, (string?)null),
            (shard.State, shard.Attempts, shard.LeaseOwner, shard.LeaseDeadline, shard.ReportedInFlight, shard.LastError));
        Assert.Equal((2, 0), (book.PendingCount, book.LeasedCount));
        Assert.Same(shard, book.NextPending);
    }

    [Fact]
    public async Task AChangeThatThrowsIsUndoneAndNothingIsStored()
    {
        var book = new ShardBook([Row(0)]);
        var shard = book.NextPending!;
        var stores = 0;

        await Assert.ThrowsAsync<InvalidOperationException>(() => book.UpdateAsync(
            shard,
            s =>
            {
                s.State = ShardState.Failed;
                throw new InvalidOperationException("bad change");
            },
            _ =>
            {
                stores++;
                return Task.CompletedTask;
            }));

        Assert.Equal((0, ShardState.Pending, 1), (stores, shard.State, book.PendingCount));
    }

    [Fact]
    public async Task AnEndedLeaseQueuesTheShardAgainAtTheBackOrFailsIt()
    {
        var book = new ShardBook([Row(0, ShardState.Leased, 1, "w1", Now), Row(1, ShardState.Leased, 2, "w2", Now), Row(2)]);
        Assert.True(book.TryGet(0, out var retried));
        Assert.True(book.TryGet(1, out var spent));

        await book.ExpireAsync(retried, 2, Stored);
        await book.ExpireAsync(spent, 2, Stored);

        Assert.Equal((2, 0), (book.PendingCount, book.LeasedCount));
        Assert.Equal(2, book.NextPending?.ShardNo);
        await Lease(book, "w3");
        Assert.Equal(0, book.NextPending?.ShardNo);
    }

    [Fact]
    public async Task ALateCompletionOfAPendingOrFailedShardTakesItOutOfTheQueue()
    {
        var book = new ShardBook([Row(0), Row(1, ShardState.Failed, 2), Row(2)]);
        Assert.True(book.TryGet(0, out var requeued));
        Assert.True(book.TryGet(1, out var failed));

        await book.CompleteAsync(requeued, new ShardOutcome("w0", 0, 1, 10, 0), Stored);
        await book.CompleteAsync(failed, new ShardOutcome("w0", 1, 2, 10, 0), Stored);

        Assert.Equal((1, 0), (book.PendingCount, book.LeasedCount));
        Assert.Equal(2, book.NextPending?.ShardNo);
        await Lease(book, "w1");
        Assert.False(book.IsDrained);
        Assert.True(book.TryGet(2, out var last));
        await book.CompleteAsync(last, new ShardOutcome("w1", 2, 1, 10, 0), Stored);
        Assert.True(book.IsDrained);
    }

    [Fact]
    public async Task AChangeThatKeepsTheStateKeepsTheQueuePlace()
    {
        var book = new ShardBook([Row(0), Row(1)]);
        await book.UpdateAsync(book.NextPending!, s => s.LastError = "noted", _ => Task.CompletedTask);
        Assert.Equal(0, book.NextPending?.ShardNo);
        Assert.Equal(2, book.PendingCount);
    }

    [Fact]
    public void ExpiredLeasesAreTheLeasedShardsPastTheirDeadline()
    {
        var book = new ShardBook(
        [
            Row(0, ShardState.Leased, 1, "w1", Now.AddSeconds(-1)),
            Row(1, ShardState.Leased, 1, "w2", Now),
            Row(2, ShardState.Leased, 1, "w3", Now.AddSeconds(1)),
            Row(3, ShardState.Leased, 1, "w4"),
            Row(4, ShardState.Pending, 1, null, Now.AddSeconds(-5)),
        ]);

        Assert.Equal([0, 1], book.ExpiredLeases(Now).Select(s => s.ShardNo).Order());
    }

    [Fact]
    public async Task EachLeaseIsANewAttemptWhoseNumberIsTheLeaseId()
    {
        var book = new ShardBook([Row(0, attempts: 2)]);
        var shard = book.NextPending!;
        shard.ReportedInFlight = 7;

        await book.LeaseAsync(shard, "w1", Now, _ => Task.FromResult(0));

        Assert.Equal((ShardState.Leased, 3, "w1", (DateTime?)Now, 0), (shard.State, shard.Attempts, shard.LeaseOwner, shard.LeaseDeadline, shard.ReportedInFlight));
        Assert.True(shard.IsHeldBy("w1", 3));
    }

    [Fact]
    public async Task ACompletedShardKeepsItsWorkerAndCounts()
    {
        var book = new ShardBook([Row(0, ShardState.Leased, 1, "w1", Now)]);
        Assert.True(book.TryGet(0, out var shard));
        shard.LastError = "earlier attempt failed";

        await book.CompleteAsync(shard, new ShardOutcome("w2", 0, 1, 8, 1, 1), Stored);

        Assert.Equal(
            (ShardState.Done, "w2", (DateTime?)null, 8, 1, 1, (string?)null),
            (shard.State, shard.LeaseOwner, shard.LeaseDeadline, shard.RecordsDone, shard.RecordsQuarantined, shard.RecordsSkipped, shard.LastError));
        Assert.True(book.IsDrained);
    }

    [Fact]
    public async Task AHandedBackLeaseGivesItsAttemptBack()
    {
        var book = new ShardBook([Row(0, ShardState.Leased, 1, "w1", Now)]);
        Assert.True(book.TryGet(0, out var shard));

        await book.ReleaseAsync(shard, null, false, 2, Stored);

        Assert.Equal((ShardState.Pending, 0, (string?)null, (DateTime?)null, (string?)null), (shard.State, shard.Attempts, shard.LeaseOwner, shard.LeaseDeadline, shard.LastError));
        Assert.Same(shard, book.NextPending);
    }

    [Theory]
    [InlineData(1, false, ShardState.Pending)]
    [InlineData(2, false, ShardState.Failed)]
    [InlineData(1, true, ShardState.Failed)]
    public async Task AFailedLeaseIsRetriedUntilItsAttemptsAreSpentOrTheErrorIsPermanent(int attempts, bool permanent, ShardState expected)
    {
        var book = new ShardBook([Row(0, ShardState.Leased, attempts, "w1", Now)]);
        Assert.True(book.TryGet(0, out var shard));

        await book.ReleaseAsync(shard, "decoder crashed", permanent, 2, Stored);

        Assert.Equal((expected, attempts, "decoder crashed", (string?)null), (shard.State, shard.Attempts, shard.LastError, shard.LeaseOwner));
        Assert.Equal(expected == ShardState.Pending ? 1 : 0, book.PendingCount);
        Assert.Equal(0, book.LeasedCount);
    }

    [Theory]
    [InlineData(1, ShardState.Pending)]
    [InlineData(2, ShardState.Failed)]
    public async Task AnExpiredLeaseNamesTheAttemptAndTheWorker(int attempts, ShardState expected)
    {
        var book = new ShardBook([Row(0, ShardState.Leased, attempts, "ghost-a", Now)]);
        Assert.True(book.TryGet(0, out var shard));

        await book.ExpireAsync(shard, 2, Stored);

        Assert.Equal($"lease of attempt {attempts} expired (worker ghost-a stopped renewing)", shard.LastError);
        Assert.Equal((expected, attempts, (string?)null, (DateTime?)null), (shard.State, shard.Attempts, shard.LeaseOwner, shard.LeaseDeadline));
    }

    [Fact]
    public async Task AShardOfAnotherBookIsRefused()
    {
        var book = new ShardBook([Row(0)]);
        var other = new ShardBook([Row(0)]);
        await Assert.ThrowsAsync<InvalidOperationException>(() => book.UpdateAsync(other.NextPending!, s => s.State = ShardState.Done, _ => Task.CompletedTask));
        Assert.Equal(ShardState.Pending, other.NextPending!.State);
    }

    private static Task<bool> Lease(ShardBook book, string worker) => book.LeaseAsync(book.NextPending!, worker, Now, _ => Task.FromResult(true));

    private static Task Stored(ShardRecord row) => Task.CompletedTask;
}
