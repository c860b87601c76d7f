using System.Text;
using HubertEcg.Client.Commands;
using HubertEcg.Grains;
using HubertEcg.Grains.Coordination;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Storage;
using HubertEcg.Testing;
using HubertEcg.Worker;

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

    [Theory]
    [InlineData("x/y.npy", "x/y.npy")]
    [InlineData("/x/y.npy", "x/y.npy")]
    [InlineData("//x/y.npy", "x/y.npy")]
    [InlineData("x/./y.npy", "x/y.npy")]
    [InlineData("./x/y.npy", "x/y.npy")]
    [InlineData("y/../x/y.npy", "x/y.npy")]
    [InlineData("x/z/../y.npy", "x/y.npy")]
    [InlineData("a/b/../../x/y.npy", "x/y.npy")]
    [InlineData("x/..y.npy", "x/..y.npy")]
    [InlineData("x/y..npy", "x/y..npy")]
    [InlineData("x\\y.npy", "x/y.npy")]
    [InlineData("\\x\\.\\y.npy", "x/y.npy")]
    public void AliasesOfABlobResolveToItsOneName(string entry, string name)
    {
        var resolved = ManifestLines.Resolve(entry);
        Assert.Equal((name, (string?)null), (resolved.Name, resolved.Problem));
    }

    [Theory]
    [InlineData("../demo/x.npy", "climbs out of the run's container ('..' above its root)")]
    [InlineData("/../demo/x.npy", "climbs out of the run's container ('..' above its root)")]
    [InlineData("x/../../demo/x.npy", "climbs out of the run's container ('..' above its root)")]
    [InlineData("..", "climbs out of the run's container ('..' above its root)")]
    [InlineData("https://other.blob.core.windows.net/demo/x.npy", "is a URL; a manifest names blobs of its own container by their path")]
    [InlineData("http://127.0.0.1:10000/devstoreaccount1/demo/x.npy", "is a URL; a manifest names blobs of its own container by their path")]
    [InlineData("..\\demo\\x.npy", "climbs out of the run's container ('..' above its root)")]
    [InlineData("x/..", "names no blob (nothing is left of it once '.' and '..' are resolved)")]
    [InlineData("/", "names no blob (nothing is left of it once '.' and '..' are resolved)")]
    [InlineData("./.", "names no blob (nothing is left of it once '.' and '..' are resolved)")]
    [InlineData("x/bad\0.npy", "contains a NUL character (U+0000) at position 5, which PostgreSQL text cannot store")]
    public void AnEntryThatNamesNoBlobOfTheContainerIsRejectedWithTheReason(string entry, string problem)
    {
        var resolved = ManifestLines.Resolve(entry);
        Assert.Equal(((string?)null, problem), (resolved.Name, resolved.Problem));
        Assert.Equal(entry, resolved.Entry);
    }

    [Fact]
    public void ARejectedEntryIsKeptAsAStorableRecordIdAndKeyedApartFromRecords()
    {
        Assert.Equal("x/bad\\0.npy", ManifestLines.RejectedRecordId("x/bad\0.npy"));
        Assert.Equal("q:../demo/x.npy", ManifestLines.RejectedKey(ManifestLines.RejectedRecordId("../demo/x.npy")));
        var longLine = new string('a', 5000);
        Assert.Equal(PostgresText.StorableKey(longLine), ManifestLines.RejectedRecordId(longLine));
    }

    [Fact]
    public void APositionInsideAnOverLongLineRoundTripsAndIsMarked()
    {
        var position = ManifestLines.FormatPosition(4096, "\"0x8DC1\"", insideLongLine: true);
        Assert.True(ManifestLines.IsInsideLongLine(position));
        Assert.Equal((4096L, "\"0x8DC1\""), ManifestLines.ParsePosition(position));
        Assert.False(ManifestLines.IsInsideLongLine(ManifestLines.FormatPosition(4096, "e")));
        Assert.False(ManifestLines.IsInsideLongLine(null));
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
