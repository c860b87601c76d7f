using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Npy;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Inference.IO;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Ecg;

public sealed class FormatRegistryLoadTests
{
    [Theory]
    [InlineData("ptb-xl/00001_lr", "00001_lr")]
    [InlineData("wfdb/s0010_re", "s0010_re")]
    public void RealRecordsGiveTheGoldenRawLeads(string record, string golden)
    {
        var loaded = FormatRegistry.Default.Load(RepoPaths.SharedFile(["ecg-samples", .. record.Split('/')]));
        var twelve = loaded.ToStandard12Lead();
        var raw = Npy.Read(RepoPaths.SharedFile("golden", "preprocess", golden, "raw.npy"));
        Assert.Equal(12, raw.Shape[0]);
        Assert.Equal(raw.Shape[1], twelve.SampleCount);
        Assert.Equal(StandardLeads.Names, twelve.LeadNames);
        for (var lead = 0; lead < 12; lead++)
        {
            for (var t = 0; t < twelve.SampleCount; t++)
            {
                Assert.Equal(raw.Data[(lead * raw.Shape[1]) + t], twelve.Leads[lead][t], 12);
            }
        }
    }

    [Fact]
    public void NpyNeedsTheRateAndReadsLeadsBySamples()
    {
        var path = RepoPaths.SharedFile("golden", "preprocess", "synthetic_500hz", "raw.npy");
        Assert.Contains("--fs", Assert.Throws<EcgFormatException>(() => FormatRegistry.Default.Load(path)).Reason, StringComparison.Ordinal);
        var loaded = FormatRegistry.Default.Load(path, 500);
        Assert.Equal("npy", loaded.Format);
        Assert.Equal(500, loaded.Signal.SamplingRate);
        var raw = Npy.Read(path);
        var twelve = loaded.ToStandard12Lead();
        Assert.Equal(raw.Shape[1], twelve.SampleCount);
        Assert.Equal(raw.Data[(3 * raw.Shape[1]) + 17], twelve.Leads[3][17]);
    }

    [Fact]
    public void NpyFloat32AndInt16AndStreams()
    {
        var dir = Directory.CreateTempSubdirectory("npy-ecg");
        try
        {
            var f32 = Path.Combine(dir.FullName, "a.npy");
            Npy.WriteFloat32(f32, [1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
            var signal = FormatRegistry.Default.Load(f32, 250).Signal;
            Assert.Equal(["0", "1"], signal.LeadNames);
            Assert.Equal([4.0, 5, 6], signal.Leads[1]);

            // int16 written by hand: header then little-endian values.
            var header = "{'descr': '<i2', 'fortran_order': False, 'shape': (1, 3), }";
            header = header.PadRight(128 - 10 - 1) + "\n";
            using var ms = new MemoryStream();
            ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0]);
            ms.Write(System.Text.Encoding.ASCII.GetBytes(header));
            ms.Write([0xFF, 0xFF, 0x02, 0x00, 0x00, 0x80]);
            ms.Position = 0;
            var ints = NpyFormat.Load(ms, "stream-record", 100, ["II"]);
            Assert.Equal([-1.0, 2, -32768], ints.Signal.Leads[0]);
            Assert.Equal("II", ints.Signal.LeadNames[0]);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void WfdbFromMemoryMatchesWfdbFromDisk()
    {
        var dir = RepoPaths.SharedFile("ecg-samples", "ptb-xl");
        var memory = new InMemoryRecordFileSource(Directory.GetFiles(dir).Select(f => new KeyValuePair<string, byte[]>(Path.GetFileName(f), File.ReadAllBytes(f))));
        var fromMemory = WfdbFormat.Load(memory, "00001_lr", "blob:00001_lr").ToStandard12Lead();
        var fromDisk = FormatRegistry.Default.Load(Path.Combine(dir, "00001_lr.hea")).ToStandard12Lead();
        Assert.Equal("blob:00001_lr", fromMemory.RecordId);
        for (var lead = 0; lead < 12; lead++)
        {
            Assert.Equal(fromDisk.Leads[lead], fromMemory.Leads[lead]);
        }
    }

    [Fact]
    public void MetadataComesFromHeaderComments()
    {
        var ptb = FormatRegistry.Default.Load(RepoPaths.SharedFile("ecg-samples", "wfdb", "s0010_re"));
        Assert.Equal("81", ptb.Signal.Metadata["age"]);
        Assert.Equal("female", ptb.Signal.Metadata["sex"]);
        Assert.Equal("Myocardial infarction", ptb.Signal.Metadata["reason for admission"]);
        var challenge = FormatRegistry.Default.Load(RepoPaths.SharedFile("ecg-samples", "wfdb", "test01_00s.hea"));
        Assert.Equal("25", challenge.Signal.Metadata["age"]);
        Assert.Equal("M", challenge.Signal.Metadata["sex"]);
        Assert.Equal("(none)", challenge.Signal.Metadata["diagnoses"]);
    }

    [Fact]
    public void RecordArgumentsAreLocatedThroughTheRegistry()
    {
        var dir = Directory.CreateTempSubdirectory("hubert-locate-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "a.npy"), []);
            File.WriteAllBytes(Path.Combine(dir, "100.hea"), []);
            File.WriteAllBytes(Path.Combine(dir, "100.dat"), []);
            var registry = FormatRegistry.Default;
            var exam = registry.Locate("/x/exams_part0.hdf5#12");
            Assert.Equal(("hdf5", "exams_part0.hdf5", "12"), (exam.Container!.Name, exam.RecordName, exam.Member));
            Assert.Equal("npy", registry.Locate(Path.Combine(dir, "a.npy")).Format!.Name);
            Assert.Equal(("wfdb", "100"), (registry.Locate(Path.Combine(dir, "100")).Format!.Name, registry.Locate(Path.Combine(dir, "100")).RecordName));
            Assert.Equal("wfdb", registry.Locate(Path.Combine(dir, "100.hea")).Format!.Name);
            Assert.Equal("wfdb", registry.Locate(Path.Combine(dir, "100.dat")).Format!.Name);
            Assert.Contains("#<member>", Assert.Throws<EcgFormatException>(() => registry.Locate("/x/a.h5")).Reason, StringComparison.Ordinal);
            Assert.Contains("not a non-negative integer", Assert.Throws<EcgFormatException>(() => registry.Load("/x/a.h5#-1")).Reason, StringComparison.Ordinal);
            Assert.Contains("no such record", Assert.Throws<EcgFormatException>(() => registry.Locate(Path.Combine(dir, "missing"))).Reason, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ATwoLeadRecordLoadsButIsNotTwelveLead()
    {
        var loaded = FormatRegistry.Default.Load(RepoPaths.SharedFile("ecg-samples", "wfdb", "100"));
        Assert.Equal(["MLII", "V5"], loaded.Signal.LeadNames);
        Assert.Equal(650000, loaded.Signal.SampleCount);
        Assert.Equal(360, loaded.Signal.SamplingRate);
        var e = Assert.Throws<EcgFormatException>(loaded.ToStandard12Lead);
        Assert.Contains("missing leads I, II, III", e.Reason, StringComparison.Ordinal);
    }
}

public sealed class EcgDumpTests
{
    [Fact]
    public void NpyDumpsPhysicalValuesOnly()
    {
        var path = RepoPaths.SharedFile("golden", "preprocess", "synthetic_500hz", "raw.npy");
        using var writer = new StringWriter();
        EcgDump.Write(writer, path, 1, 3, [11, 0], physical: true, samplingRate: 500);
        var raw = Npy.Read(path);
        var n = raw.Shape[1];
        var expected = string.Concat(Enumerable.Range(1, 2).Select(t =>
            $"{SampleText.FormatPhysical(raw.Data[(11 * n) + t]),15}\t{SampleText.FormatPhysical(raw.Data[t]),15}\n"));
        Assert.Equal(expected, writer.ToString());
        Assert.Contains("--physical", Assert.Throws<EcgFormatException>(() => EcgDump.Write(TextWriter.Null, path, samplingRate: 500)).Reason, StringComparison.Ordinal);
        Assert.Throws<EcgFormatException>(() => EcgDump.Write(TextWriter.Null, path, 0, n + 1, physical: true, samplingRate: 500));
        Assert.Throws<EcgFormatException>(() => EcgDump.Write(TextWriter.Null, path, 0, 1, [12], physical: true, samplingRate: 500));
    }

    [Fact]
    public void PhysicalTiesRoundToEvenLikePrintf()
    {
        Assert.Equal("0.00195312", SampleText.FormatPhysical(1.0 / 512)); // exactly 0.001953125
        Assert.Equal("-0.00585938", SampleText.FormatPhysical(-3.0 / 512)); // exactly -0.005859375
        Assert.Equal("0.52138867", SampleText.FormatPhysical(0.521388671)); // not a tie
        Assert.Equal("NaN", SampleText.FormatPhysical(double.NaN));
    }
}
