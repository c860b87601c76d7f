using System.Text;
using System.Text.RegularExpressions;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats.Muse;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>The GE MUSE XML reader on files its writer makes (no MUSE export is among the shared samples).</summary>
public sealed class MuseTests
{
    [Theory]
    [InlineData(500, true)]
    [InlineData(500, false)]
    [InlineData(250, true)]
    [InlineData(250, false)]
    public void WrittenFilesReadBackExactlyAtTheirStep(double rate, bool crc)
    {
        var signal = SyntheticEcg.Generate("muse", 21, rate, 10);
        var options = new MuseWriterOptions { Crc = crc };
        var files = MuseWriter.Write(signal, "m", options);
        var text = Encoding.Latin1.GetString(files["m.xml"]);
        Assert.StartsWith("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>", text, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("<!DOCTYPE RestingECG SYSTEM \"restecg.dtd\">", text, StringComparison.Ordinal);
        Assert.Equal(crc, text.Contains("<LeadDataCRC32>", StringComparison.Ordinal));
        Assert.Contains("<WaveformType>Median</WaveformType>", text, StringComparison.Ordinal);

        var record = PhilipsTests.ReadThroughRegistry(files, "m");
        Assert.Equal("muse", record.Format);
        Assert.Equal(rate, record.Signal.SamplingRate);
        Assert.Equal(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], record.Signal.LeadNames);
        Assert.Equal((int)(10 * rate), record.Signal.SampleCount);
        PhilipsTests.AssertQuantised(signal, record.Signal, 4.88);
        Assert.Equal("MUSE 9.0.9.18167", record.Description.Version);
        Assert.Equal("HubertEcg MuseWriter, software 1", record.Description.Device);
        Assert.Equal("0.05-150 Hz, AC 50 Hz", record.Description.Filters);
        PhilipsTests.AssertNoPatientData(record, options.PatientId, options.PatientLastName, options.PatientFirstName, options.BirthDate);

        // III, aVR, aVL and aVF are derived from I and II downstream, in floating point.
        var twelve = record.ToStandard12Lead();
        Assert.Equal(StandardLeads.Names, twelve.LeadNames);
        Assert.Equal(twelve.Leads[1][100] - twelve.Leads[0][100], twelve.Leads[2][100], 12);
    }

    [Fact]
    public void MillivoltLeadsAndAllTwelveLeadsRead()
    {
        var signal = SyntheticEcg.Generate("mv", 22, 500, 5);
        var files = MuseWriter.Write(signal, "mv", new MuseWriterOptions { Units = "MILLIVOLTS", UnitsPerBit = 0.001, Leads = StandardLeads.Names });
        var record = PhilipsTests.ReadThroughRegistry(files, "mv");
        Assert.Equal(StandardLeads.Names, record.Signal.LeadNames);
        Assert.All(record.SourceUnits, u => Assert.Equal("MILLIVOLTS", u));
        PhilipsTests.AssertQuantised(signal, record.Signal, 1);
    }

    [Fact]
    public void ACrcMismatchRejectsTheRecord()
    {
        var text = Text(MuseWriter.Write(SyntheticEcg.Generate("c", 23, 500, 10), "c"));
        var crc = Regex.Matches(text, "<LeadDataCRC32>(\\d+)</LeadDataCRC32>")[9]; // the Rhythm waveform's second lead
        var wrong = text[..crc.Groups[1].Index] + ((uint.Parse(crc.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) ^ 1) + "") + text[(crc.Groups[1].Index + crc.Groups[1].Length)..];
        var e = Assert.Throws<EcgFormatException>(() => PhilipsTests.ReadThroughRegistry(Files("c", wrong), "c"));
        Assert.Equal("c", e.RecordId);
        Assert.Contains("lead II: CRC-32", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ALeadHoldingFewerSamplesThanItsCountIsRejected()
    {
        var text = Text(MuseWriter.Write(SyntheticEcg.Generate("n", 24, 500, 10), "n"));
        var lying = new Regex("<LeadSampleCountTotal>5000</LeadSampleCountTotal>").Replace(text, "<LeadSampleCountTotal>5001</LeadSampleCountTotal>", 1);
        var e = Assert.Throws<EcgFormatException>(() => PhilipsTests.ReadThroughRegistry(Files("n", lying), "n"));
        Assert.Contains("lead I holds 5000 samples, LeadSampleCountTotal says 5001", e.Reason, StringComparison.Ordinal);

        var huge = new Regex("<LeadSampleCountTotal>5000</LeadSampleCountTotal>").Replace(text, "<LeadSampleCountTotal>400000</LeadSampleCountTotal>", 1);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var big = Assert.Throws<EcgFormatException>(() => PhilipsTests.ReadThroughRegistry(Files("n", huge), "n"));
        Assert.Contains("lead I holds 5000 samples, LeadSampleCountTotal says 400000", big.Reason, StringComparison.Ordinal);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16L << 20);
    }

    [Fact]
    public void MissingLeadsFailWhenTheTwelveLeadsAreNeeded()
    {
        var files = MuseWriter.Write(SyntheticEcg.Generate("x", 25, 500, 10), "x", new MuseWriterOptions { Leads = ["I", "V1", "V2", "V3", "V4", "V5", "V6"] });
        var record = PhilipsTests.ReadThroughRegistry(files, "x");
        Assert.Equal(7, record.Signal.LeadNames.Count);
        var e = Assert.Throws<EcgFormatException>(record.ToStandard12Lead);
        Assert.Equal("x", e.RecordId);

        var noRhythm = Text(files).Replace("<WaveformType>Rhythm</WaveformType>", "<WaveformType>Other</WaveformType>", StringComparison.Ordinal);
        var none = Assert.Throws<EcgFormatException>(() => PhilipsTests.ReadThroughRegistry(Files("x", noRhythm), "x"));
        Assert.Contains("no Waveform of WaveformType Rhythm", none.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void TheRhythmWaveformIsReadNotTheMedian()
    {
        var files = MuseWriter.Write(SyntheticEcg.Generate("r", 26, 500, 10), "r");
        Assert.Equal(5000, PhilipsTests.ReadThroughRegistry(files, "r").Signal.SampleCount);

        // Rhythm first, Median after it: the same.
        var text = Text(files);
        var median = Regex.Match(text, "<Waveform>\\s*<WaveformType>Median.*?</Waveform>", RegexOptions.Singleline);
        var swapped = text.Remove(median.Index, median.Length).Replace("</RestingECG>", median.Value + "</RestingECG>", StringComparison.Ordinal);
        Assert.Equal(5000, PhilipsTests.ReadThroughRegistry(Files("r", swapped), "r").Signal.SampleCount);
    }

    [Fact]
    public void OnlyItsOwnRootIsRecognised()
    {
        var muse = new MuseFormat();
        Assert.True(muse.Recognises(MuseWriter.Write(SyntheticEcg.Generate("h", 27, 500, 1), "h")["h.xml"].AsSpan(0, 2048)));
        Assert.False(muse.Recognises(File.ReadAllBytes(ClinicalGoldens.Sample("philips", "3191723_ZZDEMOPTONLY_1-04_orig.xml")).AsSpan(0, 4096)));
        Assert.False(muse.Recognises(File.ReadAllBytes(ClinicalGoldens.Sample("aecg", "FDA_Example_aECG.xml")).AsSpan(0, 4096)));
        Assert.False(muse.Recognises([]));
    }

    [Fact]
    public void Crc32IsTheIeeeChecksum()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        Assert.Equal(0u, Crc32.Compute([]));
    }

    internal static string Text(IReadOnlyDictionary<string, byte[]> files) => Encoding.Latin1.GetString(files.Values.Single());

    internal static Dictionary<string, byte[]> Files(string name, string text) => new() { [name + ".xml"] = Encoding.Latin1.GetBytes(text) };
}
