using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Storage;

namespace HubertEcg.Unit.Tests.Coordination;

/// <summary>A run's counts, rate and ETA, derived from its shards and the records workers reported.</summary>
public sealed class RunProgressMeterTests
{
    private static readonly Guid Run = Guid.Parse("7f1d2c3b-0000-4000-8000-000000000002");
    private static readonly DateTime Activated = new(2026, 1, 2, 3, 0, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private static ShardRecord Records(int no, ShardState state, int planned, int done = 0, int quarantined = 0, int skipped = 0) =>
        new(Run, no, ShardKind.Records, [], planned, state, 1, null, null, done, quarantined, null, skipped);

    private static ShardRecord Container(int no, ShardState state, int done = 0, int quarantined = 0) =>
        new(Run, no, ShardKind.Container, [], 0, state, 1, null, null, done, quarantined, null);

    [Fact]
    public void CountsComeFromTheShards()
    {
        var book = new ShardBook(
        [
            Records(0, ShardState.Done, 100, done: 80, quarantined: 5, skipped: 15),
            Container(1, ShardState.Done, done: 300, quarantined: 2),
            Records(2, ShardState.Failed, 40),
            Records(3, ShardState.Leased, 100),
            Records(4, ShardState.Pending, 100),
            Container(5, ShardState.Pending),
        ]);

        var p = new RunProgressMeter(Window, Activated).Build(Run, RunState.Running, false, 7, book, Activated.AddSeconds(30));

        Assert.Equal((Run, RunState.Running, false), (p.RunId, p.State, p.PlanningComplete));
        Assert.Equal((6, 2, 1, 1), (p.ShardsPlanned, p.ShardsDone, p.ShardsFailed, p.ShardsLeased));

        // Done record shard: planned less what its worker left out; done container: what it held; the rest as planned.
        Assert.Equal(85 + 302 + 40 + 100 + 100 + 0, p.RecordsPlanned);
        Assert.Equal((380L, 7L, 40L), (p.RecordsDone, p.RecordsQuarantined, p.RecordsFailed));
        Assert.Equal(7 + 15, p.RecordsSkipped);
        Assert.Equal(0, p.RatePerSecond);
        Assert.Null(p.EtaSeconds);
    }

    [Fact]
    public void TheRateIsMeasuredOverTheWindowOrTheTimeSinceActivation()
    {
        var meter = new RunProgressMeter(Window, Activated);
        meter.Report(Activated.AddSeconds(1), 100);
        meter.Report(Activated.AddSeconds(2), 0);
        meter.Report(Activated.AddSeconds(2), -5);

        // Young activation: over the 10 s it has been active; never less than a second.
        Assert.Equal(10, meter.Rate(Activated.AddSeconds(10)), 6);
        var young = new RunProgressMeter(Window, Activated);
        young.Report(Activated, 100);
        Assert.Equal(100, young.Rate(Activated.AddMilliseconds(100)), 6);
        meter.Report(Activated.AddSeconds(50), 200);
        Assert.Equal(300.0 / 60, meter.Rate(Activated.AddSeconds(61)), 6);

        // Reports older than the window no longer count.
        Assert.Equal(200.0 / 60, meter.Rate(Activated.AddSeconds(62)), 6);
        Assert.Equal(0, meter.Rate(Activated.AddSeconds(111)), 6);
    }

    [Fact]
    public void TheEtaIsKnownOncePlanningIsCompleteAndRecordsAreWritten()
    {
        var book = new ShardBook([Records(0, ShardState.Done, 100, done: 100), Records(1, ShardState.Pending, 100), Records(2, ShardState.Pending, 50)]);
        var meter = new RunProgressMeter(Window, Activated);
        var now = Activated.AddMinutes(5);
        Assert.Null(meter.Build(Run, RunState.Running, true, 0, book, now).EtaSeconds);

        meter.Report(now.AddSeconds(-10), 600);
        Assert.Null(meter.Build(Run, RunState.Running, false, 0, book, now).EtaSeconds);
        var p = meter.Build(Run, RunState.Running, true, 0, book, now);
        Assert.Equal(10, p.RatePerSecond, 6);
        Assert.Equal(15, p.EtaSeconds!.Value, 6);
    }

    [Fact]
    public void WaitingContainersLeaveTheEtaUnknownUntilOneIsRead()
    {
        var meter = new RunProgressMeter(Window, Activated);
        var now = Activated.AddMinutes(5);
        meter.Report(now, 60);
        Assert.Null(meter.Build(Run, RunState.Running, true, 0, new ShardBook([Container(0, ShardState.Pending)]), now).EtaSeconds);

        var book = new ShardBook([Container(0, ShardState.Done, done: 30), Container(1, ShardState.Pending)]);
        Assert.Equal(30, meter.Build(Run, RunState.Running, true, 0, book, now).EtaSeconds!.Value, 6);
    }

    [Fact]
    public void LeaseHoldersReportsShortenTheRemainder()
    {
        var book = new ShardBook([Records(0, ShardState.Leased, 100)]);
        Assert.True(book.TryGet(0, out var shard));
        shard.ReportedInFlight = 40;
        var meter = new RunProgressMeter(Window, Activated);
        var now = Activated.AddMinutes(5);
        meter.Report(now, 60);
        Assert.Equal(60, meter.Build(Run, RunState.Running, true, 0, book, now).EtaSeconds!.Value, 6);
    }

    [Theory]
    [InlineData(RunState.Completed)]
    [InlineData(RunState.Failed)]
    [InlineData(RunState.Cancelled)]
    public void AFinalRunHasNoRateAndNoTimeLeft(RunState state)
    {
        var meter = new RunProgressMeter(Window, Activated);
        var now = Activated.AddMinutes(5);
        meter.Report(now, 600);
        var p = meter.Build(Run, state, false, 0, new ShardBook([Records(0, ShardState.Pending, 100)]), now);
        Assert.Equal((0.0, (double?)0), (p.RatePerSecond, p.EtaSeconds));
    }
}
