using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Ecg;

public sealed class EcgRecordLoaderTests
{
    [Theory]
    [InlineData("ptb-xl/00001_lr", "00001_lr")]
    [InlineData("wfdb/s0010_re", "s0010_re")]
    public void RealRecordsGiveTheGoldenRawLeads(string record, string golden)
    {
        var loaded = EcgRecordLoader.Load(RepoPaths.SharedFile(["ecg-samples", .. record.Split('/')]));
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
        Assert.Contains("--fs", Assert.Throws<EcgFormatException>(() => EcgRecordLoader.Load(path)).Reason, StringComparison.Ordinal);
        var loaded = EcgRecordLoader.Load(path, 500);
        Assert.Equal(EcgRecordFormat.Npy, loaded.Format);
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
            var signal = EcgRecordLoader.Load(f32, 250).Signal;
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
            var ints = EcgRecordLoader.LoadNpy(ms, "stream-record", 100, ["II"]);
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
        var fromMemory = EcgRecordLoader.LoadWfdb(memory, "00001_lr", "blob:00001_lr").ToStandard12Lead();
        var fromDisk = EcgRecordLoader.Load(Path.Combine(dir, "00001_lr.hea")).ToStandard12Lead();
        Assert.Equal("blob:00001_lr", fromMemory.RecordId);
        for (var lead = 0; lead < 12; lead++)
        {
            Assert.Equal(fromDisk.Leads[lead], fromMemory.Leads[lead]);
        }
    }

    [Fact]
    public void MetadataComesFromHeaderComments()
    {
        var ptb = EcgRecordLoader.Load(RepoPaths.SharedFile("ecg-samples", "wfdb", "s0010_re"));
        Assert.Equal("81", ptb.Signal.Metadata["age"]);
        Assert.Equal("female", ptb.Signal.Metadata["sex"]);
        Assert.Equal("Myocardial infarction", ptb.Signal.Metadata["reason for admission"]);
        var challenge = EcgRecordLoader.Load(RepoPaths.SharedFile("ecg-samples", "wfdb", "test01_00s.hea"));
        Assert.Equal("25", challenge.Signal.Metadata["age"]);
        Assert.Equal("M", challenge.Signal.Metadata["sex"]);
        Assert.Equal("(none)", challenge.Signal.Metadata["diagnoses"]);
    }

    [Fact]
    public void RecordSpecsAreRecognised()
    {
        Assert.Equal(new EcgRecordSpec(EcgRecordFormat.Hdf5, "/x/exams_part0.hdf5", 12), EcgRecordSpec.Parse("/x/exams_part0.hdf5#12"));
        Assert.Equal(EcgRecordFormat.Npy, EcgRecordSpec.Parse("/x/a.npy").Format);
        Assert.Equal(EcgRecordFormat.Wfdb, EcgRecordSpec.Parse("/x/100").Format);
        Assert.Equal(EcgRecordFormat.Wfdb, EcgRecordSpec.Parse("/x/100.hea").Format);
        Assert.Throws<EcgFormatException>(() => EcgRecordSpec.Parse("/x/a.h5#-1"));
        Assert.Throws<EcgFormatException>(() => EcgRecordSpec.Parse("/x/a.h5"));
    }

    [Fact]
    public void ATwoLeadRecordLoadsButIsNotTwelveLead()
    {
        var loaded = EcgRecordLoader.Load(RepoPaths.SharedFile("ecg-samples", "wfdb", "100"));
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
