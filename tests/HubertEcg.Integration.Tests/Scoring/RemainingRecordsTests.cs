using HubertEcg.Grains.Coordination;
using HubertEcg.Storage;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>The records a run has left, for its ETA, while container shards of unknown size are waiting.</summary>
public sealed class RemainingRecordsTests
{
    private static ShardWorkload Records(string state, int planned, int inFlight = 0) => new(false, state, planned, 0, inFlight);

    private static ShardWorkload Container(string state, int read = 0, int inFlight = 0) => new(true, state, 0, read, inFlight);

    [Fact]
    public void RecordShardsCountWhatIsPlannedLessWhatLeaseHoldersReported()
    {
        var remaining = RemainingRecords.Estimate(
        [
            Records(ShardStates.Done, 100),
            Records(ShardStates.Failed, 100),
            Records(ShardStates.Leased, 100, inFlight: 40),
            Records(ShardStates.Pending, 100),

            // A pending shard whose earlier lease expired: what that lease reported is not subtracted.
            Records(ShardStates.Pending, 50, inFlight: 30),
        ]);

        Assert.Equal(60 + 100 + 50, remaining);
    }

    [Fact]
    public void WaitingContainersAreEstimatedFromTheContainersReadSoFar()
    {
        var remaining = RemainingRecords.Estimate(
        [
            Container(ShardStates.Done, read: 900),
            Container(ShardStates.Done, read: 1100),
            Container(ShardStates.Failed),
            Container(ShardStates.Pending),
            Container(ShardStates.Pending),
            Container(ShardStates.Leased, inFlight: 250),
            Records(ShardStates.Pending, 100),
        ]);

        // 1000 records per container read: two waiting, one three quarters to go, and the record shard.
        Assert.Equal(1000 + 1000 + 750 + 100, remaining);
    }

    [Fact]
    public void AContainerThatReportedMoreThanTheMeanHasNothingLeftInTheEstimate()
    {
        var remaining = RemainingRecords.Estimate([Container(ShardStates.Done, read: 10), Container(ShardStates.Leased, inFlight: 25)]);
        Assert.Equal(0, remaining);
    }

    [Fact]
    public void WhileNoContainerHasBeenReadTheRemainderIsUnknown()
    {
        Assert.Null(RemainingRecords.Estimate([Container(ShardStates.Pending), Records(ShardStates.Pending, 100)]));
        Assert.Null(RemainingRecords.Estimate([Container(ShardStates.Leased, inFlight: 5), Container(ShardStates.Failed)]));
    }

    [Fact]
    public void NothingWaitingIsNothingLeft()
    {
        Assert.Equal(0, RemainingRecords.Estimate([Container(ShardStates.Done, read: 7), Records(ShardStates.Done, 3)]));
        Assert.Equal(0, RemainingRecords.Estimate([]));
    }
}
