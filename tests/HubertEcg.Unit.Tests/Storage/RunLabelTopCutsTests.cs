using System.Text;
using HubertEcg.Storage;

namespace HubertEcg.Unit.Tests.Storage;

/// <summary>
/// The writer's side of a run's top list decides in C# which entries are at or above a cut, as
/// <c>run_label_top_at_or_above</c> does in SQL: probability descending (NaN the highest), then record id ascending in
/// the "C" collation, which is UTF-8 byte order.
/// </summary>
public sealed class RunLabelTopCutsTests
{
    [Theory]
    [InlineData("a", "b")]
    [InlineData("a", "ab")]
    [InlineData("Z", "a")]
    [InlineData("rec-10x", "rec-9")]
    [InlineData("\u00e9", "\uffff")]
    [InlineData("\uffff", "\U0001F600")]
    [InlineData("\ue000", "\U00010000")]
    public void RecordsCompareInUtf8ByteOrder(string lower, string higher)
    {
        Assert.True(RunLabelTop.CompareUtf8(lower, higher) < 0);
        Assert.True(RunLabelTop.CompareUtf8(higher, lower) > 0);
        Assert.Equal(0, RunLabelTop.CompareUtf8(higher, higher));

        // The reference: the bytes themselves.
        var bytes = Encoding.UTF8.GetBytes(lower).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(higher));
        Assert.True(bytes < 0);
    }

    [Fact]
    public void NoCutOrAPositionPastTheCutsLetsEveryRowIn()
    {
        var none = new RunLabelTop.Cuts([], []);
        Assert.True(none.AtOrAbove(0, 0f, "x"));
        var one = new RunLabelTop.Cuts([null, 0.5f], [null, null]);
        Assert.True(one.AtOrAbove(0, 0f, "x"));
        Assert.True(one.AtOrAbove(7, 0f, "x"));
        Assert.False(one.AtOrAbove(1, 0.4f, "x"));
    }

    [Fact]
    public void ACutWithoutARecordTakesTheWholeTie()
    {
        var cuts = new RunLabelTop.Cuts([0.5f], []);
        Assert.True(cuts.AtOrAbove(0, 0.5f, "zzz"));
        Assert.True(cuts.AtOrAbove(0, 0.51f, "a"));
        Assert.False(cuts.AtOrAbove(0, 0.49999997f, "a"));
    }

    [Fact]
    public void WithinATieTheLowerRecordsAreAboveTheCut()
    {
        var cuts = new RunLabelTop.Cuts([0.9f], ["rec-00500"]);
        Assert.True(cuts.AtOrAbove(0, 0.9f, "rec-00499"));
        Assert.True(cuts.AtOrAbove(0, 0.9f, "rec-00500"));
        Assert.False(cuts.AtOrAbove(0, 0.9f, "rec-00501"));
        Assert.True(cuts.AtOrAbove(0, 0.95f, "rec-99999"));
        Assert.False(cuts.AtOrAbove(0, 0.8f, "a"));
    }

    [Fact]
    public void NaNIsAboveEveryNumberAsPostgresOrdersIt()
    {
        var cuts = new RunLabelTop.Cuts([1f], ["m"]);
        Assert.True(cuts.AtOrAbove(0, float.NaN, "z"));
        var atNaN = new RunLabelTop.Cuts([float.NaN], ["m"]);
        Assert.False(atNaN.AtOrAbove(0, 1f, "a"));
        Assert.True(atNaN.AtOrAbove(0, float.NaN, "a"));
        Assert.False(atNaN.AtOrAbove(0, float.NaN, "z"));
    }
}
