using HubertEcg.Storage;

namespace HubertEcg.Unit.Tests.Dashboard;

/// <summary>
/// The label bucket grid (0025_threshold_buckets.sql): at every grid threshold, the rows strictly above it are those
/// of the buckets from 2k + 2 up and the rows at or above it those from 2k + 1 up, compared as floats (NaN above all).
/// </summary>
public sealed class LabelGridTests
{
    [Fact]
    public void BucketSumsGiveStrictAndInclusiveCountsAtEveryGridThreshold()
    {
        var random = new Random(3);
        var values = new List<float> { 0f, -0f, 1f, -1f, 2f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon };
        for (var k = 0; k <= LabelGrid.Steps; k++)
        {
            var g = LabelGrid.Threshold(k);
            values.AddRange([g, MathF.BitIncrement(g), MathF.BitDecrement(g)]);
        }

        values.AddRange(Enumerable.Range(0, 20_000).Select(_ => random.NextSingle()));
        var histogram = new long[LabelGrid.Buckets];
        foreach (var p in values)
        {
            histogram[LabelGrid.Bucket(p)]++;
        }

        var above = new long[LabelGrid.Buckets + 1];
        for (var b = LabelGrid.Buckets - 1; b >= 0; b--)
        {
            above[b] = above[b + 1] + histogram[b];
        }

        for (var k = 0; k <= LabelGrid.Steps; k++)
        {
            var g = LabelGrid.Threshold(k);
            Assert.Equal(values.Count(p => float.IsNaN(p) || p > g), above[2 * k + 2]);
            Assert.Equal(values.Count(p => float.IsNaN(p) || p >= g), above[2 * k + 1]);
        }
    }

    [Fact]
    public void GridThresholdsAreTheFloatsOfTheirDecimalLiterals()
    {
        for (var k = 0; k <= LabelGrid.Steps; k++)
        {
            var literal = float.Parse((k / 1000m).ToString(System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(literal, LabelGrid.Threshold(k));
            Assert.Equal(k, LabelGrid.Index(literal));
        }
    }

    [Theory]
    [InlineData(0.12345f)]
    [InlineData(0.0005f)]
    [InlineData(-0.1f)]
    [InlineData(1.5f)]
    [InlineData(float.NaN)]
    public void ThresholdsBetweenGridPointsAreOffTheGrid(float threshold) => Assert.Null(LabelGrid.Index(threshold));
}
