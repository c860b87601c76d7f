using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Storage;

namespace HubertEcg.Unit.Tests.Coordination;

/// <summary>The records a run has left, for its ETA, while container shards of unknown size are waiting.</summary>
public sealed class RemainingRecordsTests
{
    private static ShardWorkload Records(ShardState state, int planned, int inFlight = 0) => new(false, state, planned, 0, inFlight);

    private static ShardWorkload Container(ShardState state, int read = 0, int inFlight = 0) => new(true, state, 0, read, inFlight);

    [Fact]
    public void RecordShardsCountWhatIsPlannedLessWhatLeaseHoldersReported()
    {
        var remaining = RemainingRecords.Estimate(
        [
            Records(ShardState.Done, 100),
            Records(ShardState.Failed, 100),
            Records(ShardState.Leased, 100, inFlight: 40),
            Records(ShardState.Pending, 100),

            // A pending shard whose earlier lease expired: what that lease reported is not subtracted.
            Records(ShardState.Pending, 50, inFlight: 30),
        ]);

        Assert.Equal(60 + 100 + 50, remaining);
    }

    [Fact]
    public void WaitingContainersAreEstimatedFromTheContainersReadSoFar()
    {
        var remaining = RemainingRecords.Estimate(
        [
            Container(ShardState.Done, read: 900),
            Container(ShardState.Done, read: 1100),
            Container(ShardState.Failed),
            Container(ShardState.Pending),
            Container(ShardState.Pending),
            Container(ShardState.Leased, inFlight: 250),
            Records(ShardState.Pending, 100),
        ]);

        // 1000 records per container read: two waiting, one three quarters to go, and the record shard.
        Assert.Equal(1000 + 1000 + 750 + 100, remaining);
    }

    [Fact]
    public void AContainerThatReportedMoreThanTheMeanHasNothingLeftInTheEstimate()
    {
        var remaining = RemainingRecords.Estimate([Container(ShardState.Done, read: 10), Container(ShardState.Leased, inFlight: 25)]);
        Assert.Equal(0, remaining);
    }

    [Fact]
    public void WhileNoContainerHasBeenReadTheRemainderIsUnknown()
    {
        Assert.Null(RemainingRecords.Estimate([Container(ShardState.Pending), Records(ShardState.Pending, 100)]));
        Assert.Null(RemainingRecords.Estimate([Container(ShardState.Leased, inFlight: 5), Container(ShardState.Failed)]));
    }

    [Fact]
    public void NothingWaitingIsNothingLeft()
    {
        Assert.Equal(0, RemainingRecords.Estimate([Container(ShardState.Done, read: 7), Records(ShardState.Done, 3)]));
        Assert.Equal(0, RemainingRecords.Estimate([]));
    }
}
