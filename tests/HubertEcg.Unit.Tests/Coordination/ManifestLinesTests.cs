using System.Text;
using HubertEcg.Client.Commands;
using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Storage;
using HubertEcg.Testing;

namespace HubertEcg.Unit.Tests.Coordination;

/// <summary>Reading manifest chunks: whole lines only, comments and blank lines dropped, the position round-trips.</summary>
public sealed class ManifestLinesTests
{
    [Fact]
    public void AChunkIsReadUpToItsLastLineEnd()
    {
        var text = "\uFEFF# cohort\r\nwfdb/p00001.hea\r\n\r\n  x/r1.npy  \n# done\ncode15/exams_par";
        var bytes = Encoding.UTF8.GetBytes(text);
        var (names, consumed) = ManifestLines.Parse(bytes, startOfManifest: true, atEnd: false);

        Assert.Equal(["wfdb/p00001.hea", "x/r1.npy"], names);
        Assert.Equal(bytes.Length - "code15/exams_par".Length, consumed);

        var (rest, restConsumed) = ManifestLines.Parse(Encoding.UTF8.GetBytes("code15/exams_part0.hdf5"), startOfManifest: false, atEnd: true);
        Assert.Equal(["code15/exams_part0.hdf5"], rest);
        Assert.Equal("code15/exams_part0.hdf5".Length, restConsumed);
    }

    [Fact]
    public void ALineLongerThanTheChunkConsumesNothing()
    {
        var (names, consumed) = ManifestLines.Parse("a/very/long/name"u8, startOfManifest: false, atEnd: false);
        Assert.Empty(names);
        Assert.Equal(0, consumed);
    }

    [Fact]
    public void ThePositionRoundTrips()
    {
        Assert.Equal((0L, (string?)null), ManifestLines.ParsePosition(null));
        Assert.Equal((1234L, "\"0x8DC1\""), ManifestLines.ParsePosition(ManifestLines.FormatPosition(1234, "\"0x8DC1\"")));
        Assert.Throws<FormatException>(() => ManifestLines.ParsePosition("token-from-a-listing"));
    }

    [Fact]
    public void RepeatedEntriesAreLeftOutWithinAStepAndAcrossSteps()
    {
        // Keys of the records read in earlier steps; r2's files were carried, unplanned, into this step.
        var seen = new HashSet<string>(StringComparer.Ordinal) { "r:m/r1", "r:m/r2", "c:m/part0.hdf5" };
        var step = ManifestLines.Deduplicate(
            FormatRegistry.Default,
            ["m/r2.dat", "m/r3.npy", "m/r3.npy", "m/r1.hea", "m/r1.dat", "m/part0.hdf5", "m/part1.hdf5", "m/part1.hdf5", "m/r2.hea", "m/notes.txt", "m/notes.txt"],
            carry: ["m/r2.hea"],
            seen);

        Assert.Equal(["m/r2.dat", "m/r3.npy", "m/part1.hdf5", "m/notes.txt"], step.Names);
        Assert.Equal(["m/r3.npy", "m/r1.hea", "m/r1.dat", "m/part0.hdf5", "m/part1.hdf5", "m/r2.hea", "m/notes.txt"], step.Duplicates);
        Assert.Equal(["r:m/r3", "c:m/part1.hdf5"], step.NewKeys);
    }

    [Fact]
    public void SubmitTakesExactlyOneOfInputAndManifest()
    {
        Assert.Equal(("c", "p/", (string?)null), RunSubmitCommand.ResolveInput("c/p/", null));
        Assert.Equal(("c", "", "lists/cohort.txt"), RunSubmitCommand.ResolveInput(null, "c/lists/cohort.txt"));
        Assert.Throws<ArgumentException>(() => RunSubmitCommand.ResolveInput("c/p/", "c/m.txt"));
        Assert.Throws<ArgumentException>(() => RunSubmitCommand.ResolveInput(null, null));
        Assert.Throws<ArgumentException>(() => RunSubmitCommand.ResolveInput(null, "just-a-container"));
        Assert.Throws<ArgumentException>(() => RunSubmitCommand.ResolveInput(null, "c/folder/"));
    }
}
