using HubertEcg.Storage;
using HubertEcg.Worker;

namespace HubertEcg.Unit.Tests.Storage;

/// <summary>The result writer's own counts of a batch: positives compared as Postgres compares reals, rows per minute.</summary>
public sealed class LabelPositivesTests
{
    [Theory]
    [InlineData(0.6f, 0.5f, false, true)]
    [InlineData(0.5f, 0.5f, false, false)]
    [InlineData(0.5f, 0.5f, true, true)]
    [InlineData(0.4f, 0.5f, true, false)]
    [InlineData(-0f, 0f, true, true)] // -0 equals 0 as a real
    [InlineData(float.NaN, 0.5f, false, true)] // NaN sorts above every number
    [InlineData(float.NaN, 1f, true, true)]
    [InlineData(float.PositiveInfinity, 1f, false, true)]
    [InlineData(float.PositiveInfinity, float.NaN, true, false)] // nothing numeric reaches a NaN threshold
    [InlineData(float.NaN, float.NaN, false, false)] // NaN equals NaN: positive only where inclusive
    [InlineData(float.NaN, float.NaN, true, true)]
    public void PositivesCompareAsPostgresComparesReals(float p, float threshold, bool inclusive, bool positive) =>
        Assert.Equal(positive, LabelPositives.Positive(p, threshold, inclusive));

    [Fact]
    public void CountsArePerRunAndPositionOfTheRowsModelAndOnlyNonzero()
    {
        var runA = Guid.Parse("00000000-0000-0000-0000-00000000000a");
        var runB = Guid.Parse("00000000-0000-0000-0000-00000000000b");
        ScoreRow Row(string model, Guid run, params float[] p) => new(model, "r", run, p, [], 1, "b", "e", DateTime.UnixEpoch);
        var thresholds = new Dictionary<string, ModelThresholds>
        {
            ["m1"] = new([0, 1, 2], [0.5f, 0.5f, 0.5f], [false, false, false]),
            ["m2"] = new([0, 2], [0.2f, 0.9f], [true, true]),
        };

        var (runs, positions, counts) = LabelPositives.Count(
            [
                Row("m1", runA, 0.9f, 0.1f, 0.7f),
                Row("m1", runA, 0.6f, 0.2f), // no third probability: not positive for position 2
                Row("m2", runB, 0.2f, 1f, 0.95f),
                Row("m2", runB, 0.1f, 1f, 0.9f),
                Row("m3", runB, 1f, 1f, 1f), // a model without thresholds counts for nothing
            ],
            thresholds);

        Assert.Equal(new[] { (runA, 0, 2L), (runA, 2, 1L), (runB, 0, 1L), (runB, 2, 2L) }, runs.Zip(positions, counts).Select(t => (t.First, t.Second, t.Third)).ToArray());
    }

    [Fact]
    public void RowsAreCountedPerRunAndUtcMinute()
    {
        var run = Guid.NewGuid();
        var minute = new DateTime(2026, 12, 6, 9, 0, 0, DateTimeKind.Utc);
        ScoreRow Row(DateTime at) => new("m", "r", run, [], [], 1, "b", "e", at);
        var (runs, minutes, counts) = LabelPositives.Minutes([Row(minute.AddSeconds(59.9999)), Row(minute), Row(minute.AddMinutes(1)), Row(minute.AddTicks(-1))]);
        Assert.All(runs, r => Assert.Equal(run, r));
        Assert.Equal(new[] { minute.AddMinutes(-1), minute, minute.AddMinutes(1) }, minutes);
        Assert.Equal(new long[] { 1, 2, 1 }, counts);
    }
}
