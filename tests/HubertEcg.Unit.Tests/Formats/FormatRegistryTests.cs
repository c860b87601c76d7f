using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Inference.Ecg.Synthetic;

namespace HubertEcg.Unit.Tests.Formats;

/// <summary>The format registry: what a name is, which files make a record, its id, source blob and version, and which reader reads it.</summary>
public sealed class FormatRegistryTests
{
    private static readonly FormatRegistry Registry = FormatRegistry.Default;

    [Theory]
    [InlineData("a/part0.hdf5", true)]
    [InlineData("a/part0.H5", true)]
    [InlineData("a/x.tar", true)]
    [InlineData("a/x.tar.gz", true)]
    [InlineData("a/x.TGZ", true)]
    [InlineData("a/x.zip", true)]
    [InlineData("a/x.hea", false)]
    [InlineData("a/x.gz", false)]
    public void ContainersAreKnownBySuffix(string name, bool container) => Assert.Equal(container, Registry.IsContainer(name));

    [Theory]
    [InlineData("p/r.hea", true)]
    [InlineData("p/r.DAT", true)]
    [InlineData("p/r.mat", true)]
    [InlineData("p/r.npy", true)]
    [InlineData("p/r.atr", false)]
    [InlineData("p/README.txt", false)]
    public void RecordFilesAreKnownBySuffix(string name, bool record) => Assert.Equal(record, Registry.IsRecordFile(name));

    [Fact]
    public void FilesGroupByPathWithoutExtensionInListingOrderAndContainersAreLeftOut()
    {
        var groups = Registry.Group(["p/r1.hea", "p/part.h5", "p/r2.npy", "p/r1.dat", "p/r1.atr", "p/notes.txt", "p/", "p/r1.dat"]);

        Assert.Equal(["p/r1", "p/r2", "p/notes"], groups.Select(g => g.Stem));
        Assert.Equal(["p/r1.hea", "p/r1.dat", "p/r1.atr"], groups[0].Files);
        Assert.Equal([true, true, false], groups.Select(Registry.IsRecord));
    }

    [Fact]
    public void ARecordsVersionIsTheETagsOfAllItsFilesInNameOrder()
    {
        Assert.Equal("0xA", FormatRegistry.SourceVersion([("p/r.npy", "0xA")]));
        Assert.Equal("0xD+0xH", FormatRegistry.SourceVersion([("p/r.hea", "0xH"), ("p/r.dat", "0xD")]));
        Assert.Equal("0xD+0xH", FormatRegistry.SourceVersion([("p/r.dat", "0xD"), ("p/r.hea", "0xH")]));
        Assert.NotEqual(FormatRegistry.SourceVersion([("p/r.hea", "0xH"), ("p/r.dat", "0xD")]), FormatRegistry.SourceVersion([("p/r.hea", "0xH"), ("p/r.dat", "0xE")]));
        Assert.Equal("", FormatRegistry.SourceVersion([("p/r.hea", "0xH"), ("p/r.dat", "")]));
        Assert.Equal("", FormatRegistry.SourceVersion([]));
    }

    [Fact]
    public void ARecordsSourceBlobIsItsFormatsPrimaryFileElseItsFirstFile()
    {
        Assert.Equal("p/r.HEA", Registry.SourceBlob(["p/r.dat", "p/r.HEA"]));
        Assert.Equal("p/r.npy", Registry.SourceBlob(["p/r.npy"]));
        Assert.Equal("p/r.dat", Registry.SourceBlob(["p/r.dat", "p/r.atr"]));
    }

    [Fact]
    public void RecordKeysNameTheRecordOrTheContainer()
    {
        Assert.Equal("r:a/b/r1", Registry.RecordKey("a/b/r1.hea"));
        Assert.Equal("r:a/b/r1", Registry.RecordKey("a/b/r1.mat"));
        Assert.Equal("c:a/x.tar.gz", Registry.RecordKey("a/x.tar.gz"));
        Assert.Equal("c:a/x.tar", Registry.RecordKey("a/x.tar"));
        Assert.Equal("r:a/x.tar", Registry.RecordKey("a/x.tar.npy"));
        Assert.Null(Registry.RecordKey("a/README.txt"));
    }

    [Fact]
    public void AWfdbHeaderNamesItsSignalFilesOnce()
    {
        var header = "r 3 500 10\nr.dat 16 200 16 0 0 0 0 I\nr.dat 16 200 16 0 0 0 0 II\nr_v.dat 16 200 16 0 0 0 0 V1\n";
        var files = new InMemoryRecordFileSource([new("r.hea", Encoding.ASCII.GetBytes(header))]);

        Assert.Equal(["r.dat", "r_v.dat"], Registry.CompanionFiles("p/r.hea", files));
        Assert.Empty(Registry.CompanionFiles("p/r.npy", files));
        Assert.Empty(Registry.CompanionFiles("p/broken.hea", new InMemoryRecordFileSource([new("broken.hea", "not a header"u8.ToArray())])));
    }

    [Fact]
    public void ARecordIsReadByTheFormatOfItsFiles()
    {
        var signal = SyntheticEcg.Generate("r", 3, 500, 6);
        var files = new InMemoryRecordFileSource(WfdbWriter.Write(signal, "r"));

        var record = Registry.Record("c/p/r", "r", ["r.hea", "r.dat"], files).Load();

        Assert.Equal("wfdb", record.Format);
        Assert.Equal("c/p/r", record.RecordId);
        Assert.Equal(3000, record.Signal.SampleCount);
    }

    [Fact]
    public void AGroupNoFormatReadsFailsWithTheReasonWhenLoaded()
    {
        var handle = Registry.Record("p/r", "r", ["r.dat", "r.atr"], new InMemoryRecordFileSource());

        var e = Assert.Throws<EcgFormatException>(() => handle.Load());
        Assert.Equal("p/r", e.RecordId);
        Assert.Contains("no reader for a record made of .atr, .dat files", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void FormatsSharingASuffixAreToldApartByTheirFirstBytes()
    {
        var registry = new FormatRegistry([new XmlDialect("alpha"), new XmlDialect("beta")], []);
        var files = new InMemoryRecordFileSource([new("r.xml", "<beta/>"u8.ToArray())]);

        Assert.Equal("beta", registry.Record("r", "r", ["r.xml"], files).Load().Container);
        var neither = new InMemoryRecordFileSource([new("r.xml", "<gamma/>"u8.ToArray())]);
        Assert.Contains("none of the formats alpha, beta", Assert.Throws<EcgFormatException>(() => registry.Record("r", "r", ["r.xml"], neither).Load()).Reason, StringComparison.Ordinal);
    }

    /// <summary>A stand-in XML dialect, recognised by its root element.</summary>
    private sealed class XmlDialect(string root) : IRecordFormat
    {
        public string Name => root;

        public IReadOnlyList<string> Suffixes { get; } = [".xml"];

        public string PrimarySuffix => ".xml";

        public bool Reads(IReadOnlySet<string> suffixes) => suffixes.SetEquals([".xml"]);

        public bool Recognises(ReadOnlySpan<byte> head) => Encoding.UTF8.GetString(head).StartsWith($"<{root}", StringComparison.Ordinal);

        public EcgRecord Read(IRecordFileSource files, string recordName, string recordId) =>
            EcgRecord.InMillivolts(root, root, new EcgSignal(recordId, 500, ["I"], [[0.0]]));
    }
}
