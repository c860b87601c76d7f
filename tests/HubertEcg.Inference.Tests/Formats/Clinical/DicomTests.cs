using System.Buffers.Binary;
using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Dicom;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// DICOM ECG waveform objects: the shared sample (Implicit VR, SCPECG codes) against its reference reading, and files
/// the tests write for what it does not cover (Explicit VR, MDC codes, General ECG, undefined lengths, refusals).
/// </summary>
public sealed class DicomTests
{
    private const string SampleGolden = "dicom_ECGToolkit_Example";

    private static string SamplePath => ClinicalGoldens.Sample("dicom", "ECGToolkit_Example.dcm");

    /// <summary>A 10 s synthetic 12-lead ECG at <paramref name="rate"/> Hz, on the writers' 1 µV grid.</summary>
    internal static EcgSignal Synthetic(int seed = 11, double rate = 500, double seconds = 10)
    {
        var signal = SyntheticEcg.Generate("synthetic", seed, rate, seconds);
        var leads = signal.Leads.Select(l => l.Select(v => Math.Round(v * 1000) / 1000).ToArray()).ToArray();
        return new EcgSignal(signal.RecordId, rate, signal.LeadNames, leads);
    }

    private static EcgRecord Read(byte[] file, string recordId = "test/record") =>
        new DicomFormat().Read(new InMemoryRecordFileSource([new("record.dcm", file)]), "record", recordId);

    private static EcgFormatException Fails(byte[] file)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<EcgFormatException>(() => Read(file, "bad/record").ToStandard12Lead());
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16L << 20, "allocated more than 16 MiB");
        Assert.Equal("bad/record", e.RecordId);
        Assert.False(string.IsNullOrWhiteSpace(e.Reason));
        return e;
    }

    [Fact]
    public void SampleReadsToItsGolden()
    {
        var record = ClinicalGoldens.AssertReadsToGolden(SamplePath, SampleGolden);
        Assert.Equal("dicom", record.Format);
        Assert.Equal(12, record.Signal.LeadNames.Count);
        Assert.Equal(5000, record.Signal.SampleCount);
        Assert.Empty(record.Warnings);
        Assert.Contains("Implicit VR", record.Container, StringComparison.Ordinal);
        Assert.Contains("12-Lead ECG", record.Container, StringComparison.Ordinal);
        Assert.Contains("ELI250", record.Description.Device, StringComparison.Ordinal);
        Assert.All(record.SourceUnits, u => Assert.Equal("uV", u));
    }

    [Fact]
    public void SampleLeaksNoPatientData()
    {
        // The sample's patient module: name "Clark", id "SBJ-123", birth date 19530508.
        var record = FormatRegistry.Default.Load(SamplePath);
        var shown = string.Join(
            '\n',
            [record.Container, record.Description.ToString(), .. record.Warnings, .. record.Signal.LeadNames, .. record.Signal.Metadata.Values, .. record.Comments]);
        foreach (var secret in new[] { "Clark", "SBJ-123", "19530508" })
        {
            Assert.DoesNotContain(secret, shown, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void SampleAndAecgRenderingReadIdentically()
    {
        var dicom = FormatRegistry.Default.Load(SamplePath).ToStandard12Lead();
        var aecg = FormatRegistry.Default.Load(ClinicalGoldens.Sample("aecg", "FDA_Example_aECG.xml")).ToStandard12Lead();
        ClinicalGoldens.AssertSameSignal(dicom, aecg, 0.0, "DICOM vs aECG");
    }

    [Theory]
    [InlineData(true, true, false, true)]
    [InlineData(true, false, false, false)]
    [InlineData(false, true, false, true)]
    [InlineData(false, false, true, true)]
    [InlineData(true, true, true, false)]
    public void WrittenFilesReadBack(bool explicitVr, bool mdc, bool undefinedLengths, bool twelveLeads)
    {
        var signal = Synthetic();
        var options = new DicomWriterOptions { ExplicitVr = explicitVr, MdcCodes = mdc, UndefinedLengths = undefinedLengths, AllTwelveLeads = twelveLeads };
        var record = Read(new DicomWriter(options).Encode(signal, "record"));
        Assert.Equal(twelveLeads ? 12 : 8, record.Signal.LeadNames.Count);
        Assert.Contains(explicitVr ? "Explicit VR" : "Implicit VR", record.Container, StringComparison.Ordinal);
        var read = record.ToStandard12Lead();
        Assert.Equal(500, read.SamplingRate);
        if (twelveLeads)
        {
            ClinicalGoldens.AssertSameSignal(signal, read, 1e-12, "round trip");
        }
        else
        {
            // Stored leads exactly; III, aVR, aVL, aVF derived from I and II in floating point.
            var expected = LeadMapping.ToStandard12(new EcgSignal("x", 500, ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], [.. new[] { 0, 1, 6, 7, 8, 9, 10, 11 }.Select(i => signal.Leads[i])]));
            ClinicalGoldens.AssertSameSignal(expected, read, 1e-12, "round trip, 8 leads");
        }

        Assert.Equal("HubertEcg synthetic", record.Description.Device);
        Assert.Equal("0.05-150 Hz", record.Description.Filters);
    }

    [Fact]
    public void ExplicitVrWithMdcCodesReadsTheSampleSignal()
    {
        // The sample's reading, rewritten as Explicit VR with MDC codes at its own 2.5 µV resolution, reads the same.
        var sample = FormatRegistry.Default.Load(SamplePath).ToStandard12Lead();
        var file = new DicomWriter(new DicomWriterOptions { MdcCodes = true, SensitivityMicrovolts = 2.5 }).Encode(sample, "record");
        Assert.True(Contains("MDC_ECG_LEAD_AVR"u8.ToArray(), file));
        ClinicalGoldens.AssertSameSignal(sample, Read(file).ToStandard12Lead(), 0.0, "Explicit VR, MDC");
    }

    [Fact]
    public void GeneralEcgObjectIsRead()
    {
        var signal = Synthetic(seed: 3, rate: 250);
        var record = Read(new DicomWriter(new DicomWriterOptions { GeneralEcg = true, MdcCodes = true }).Encode(signal, "record"));
        Assert.Contains("General ECG", record.Container, StringComparison.Ordinal);
        Assert.Equal(250, record.Signal.SamplingRate);
        ClinicalGoldens.AssertSameSignal(signal, record.ToStandard12Lead(), 1e-12, "General ECG");
    }

    [Fact]
    public void RhythmGroupIsChosenOverTheMedianBeat()
    {
        var signal = Synthetic();
        var record = Read(new DicomWriter(new DicomWriterOptions { MedianGroup = true }).Encode(signal, "record"));
        Assert.Equal(5000, record.Signal.SampleCount);
        Assert.Empty(record.Warnings);
    }

    [Fact]
    public void UnlabelledGroupIsReadWithAWarning()
    {
        var record = Read(new DicomWriter(new DicomWriterOptions { MedianGroup = true, GroupLabel = "LONG" }).Encode(Synthetic(), "record"));
        Assert.Equal(5000, record.Signal.SampleCount);
        Assert.Contains(record.Warnings, w => w.Contains("RHYTHM", StringComparison.Ordinal) && w.Contains("LONG", StringComparison.Ordinal));
    }

    [Fact]
    public void OnlyMedianBeatsIsRefused()
    {
        var file = new DicomWriter(new DicomWriterOptions { GroupLabel = "MEDIAN BEAT" }).Encode(Synthetic(), "record");
        Assert.Contains("median", Fails(file).Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1.2.840.10008.1.2.1.99", "Deflated")]
    [InlineData("1.2.840.10008.1.2.2", "Big Endian")]
    [InlineData("1.2.840.10008.1.2.4.70", "JPEG Lossless")]
    [InlineData("1.2.3.4", "1.2.3.4")]
    public void OtherTransferSyntaxesAreRefused(string syntax, string named)
    {
        var file = new DicomWriter(new DicomWriterOptions { TransferSyntaxOverride = syntax }).Encode(Synthetic(seconds: 1), "record");
        var reason = Fails(file).Reason;
        Assert.Contains(syntax, reason, StringComparison.Ordinal);
        Assert.Contains(named, reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1.2.840.10008.5.1.4.1.1.9.1.3", "Ambulatory ECG")]
    [InlineData("1.2.840.10008.5.1.4.1.1.9.2.1", "Hemodynamic")]
    [InlineData("1.2.840.10008.5.1.4.1.1.7", "Secondary Capture")]
    public void OtherSopClassesAreRefused(string sopClass, string named)
    {
        var file = new DicomWriter(new DicomWriterOptions { SopClassOverride = sopClass }).Encode(Synthetic(seconds: 1), "record");
        var reason = Fails(file).Reason;
        Assert.Contains(sopClass, reason, StringComparison.Ordinal);
        Assert.Contains(named, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void NotPart10IsRefused()
    {
        Assert.Contains("DICM", Fails(Encoding.ASCII.GetBytes("not a dicom file at all")).Reason, StringComparison.Ordinal);
        Assert.Contains("DICM", Fails(new byte[200]).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void LyingLengthsAreRefusedBeforeAllocating()
    {
        var sample = File.ReadAllBytes(SamplePath);

        // The Waveform Sequence's length (Implicit VR: tag, then a 4-byte length) claims 2 GB.
        var at = IndexOf(sample, [0x00, 0x54, 0x00, 0x01]);
        var lying = (byte[])sample.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(lying.AsSpan(at + 4), 0x7FFF_FFF0);
        Assert.Contains("claims", Fails(lying).Reason, StringComparison.Ordinal);

        // The sample count claims more samples than the waveform data holds.
        at = IndexOf(sample, [0x3A, 0x00, 0x10, 0x00]);
        lying = (byte[])sample.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(lying.AsSpan(at + 8), 2_000_000_000);
        Assert.Contains("Waveform Data holds", Fails(lying).Reason, StringComparison.Ordinal);

        // The channel count too.
        at = IndexOf(sample, [0x3A, 0x00, 0x05, 0x00]);
        lying = (byte[])sample.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(lying.AsSpan(at + 8), 60000);
        Fails(lying);

        // An explicit VR element's length, and a truncated file.
        var written = new DicomWriter().Encode(Synthetic(seconds: 1), "record");
        at = IndexOf(written, [0x00, 0x54, 0x10, 0x10, (byte)'O', (byte)'W']);
        lying = (byte[])written.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(lying.AsSpan(at + 8), uint.MaxValue - 1);
        Assert.Contains("claims", Fails(lying).Reason, StringComparison.Ordinal);
        Fails(written[..(written.Length / 2)]);
    }

    [Fact]
    public void UndefinedLengthWithoutDelimiterIsRefused()
    {
        var written = new DicomWriter(new DicomWriterOptions { UndefinedLengths = true }).Encode(Synthetic(seconds: 1), "record");

        // Drop the final sequence delimiter.
        Assert.Contains("delimiter", Fails(written[..^8]).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void RegistryReadsWrittenRecordByItsSuffix()
    {
        var files = FormatRegistry.WriterFor("dicom")!.Write(Synthetic(), "r1");
        var handle = FormatRegistry.Default.Record("r1", "r1", files.Keys.ToList(), new InMemoryRecordFileSource(files));
        Assert.Equal("dicom", handle.Load().Format);
    }

    private static bool Contains(byte[] needle, byte[] haystack) => IndexOf(haystack, needle) >= 0;

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);
}
