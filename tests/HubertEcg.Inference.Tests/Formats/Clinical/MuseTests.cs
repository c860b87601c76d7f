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
    public void AHandWrittenExportWithAnExponentReads()
    {
        // Not made by MuseWriter: CRLF lines, Latin-1 names, V1 before I, SampleBase 125 x 2^1 = 250 Hz, a Median after the Rhythm.
        var random = new Random(2604);
        var samples = new Dictionary<string, short[]>(StringComparer.Ordinal);
        var text = new System.Text.StringBuilder("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n<!DOCTYPE RestingECG SYSTEM \"restecg.dtd\">\r\n<RestingECG>\r\n");
        text.Append("<MuseInfo><MuseVersion>8.0.2.10132</MuseVersion></MuseInfo>\r\n");
        text.Append("<PatientDemographics><PatientID>PX-4711</PatientID><PatientLastName>M\u00fcller</PatientLastName><PatientFirstName>J\u00fcrgen</PatientFirstName><DateofBirth>07-08-1950</DateofBirth></PatientDemographics>\r\n");
        text.Append("<TestDemographics><AcquisitionDevice>MAC55</AcquisitionDevice><AcquisitionSoftwareVersion>009C</AcquisitionSoftwareVersion></TestDemographics>\r\n");
        foreach (var type in new[] { "Rhythm", "Median" })
        {
            var count = type == "Rhythm" ? 2500 : 300;
            text.Append("<Waveform><WaveformType>").Append(type).Append("</WaveformType><SampleBase>125</SampleBase><SampleExponent>1</SampleExponent><HighPassFilter>16</HighPassFilter><LowPassFilter>100</LowPassFilter><ACFilter>NONE</ACFilter>\r\n");
            foreach (var lead in new[] { "V1", "I", "II", "V2", "V3", "V4", "V5", "V6" })
            {
                var values = Enumerable.Range(0, count).Select(_ => (short)random.Next(-3000, 3000)).ToArray();
                var bytes = values.SelectMany(v => BitConverter.GetBytes(v)).ToArray();
                if (type == "Rhythm")
                {
                    samples[lead] = values;
                }

                text.Append("<LeadData>\r\n<LeadSampleCountTotal>").Append(count).Append("</LeadSampleCountTotal>\r\n<LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>\r\n<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>\r\n<LeadID>")
                    .Append(lead).Append("</LeadID>\r\n<LeadSampleSize>2</LeadSampleSize>\r\n<LeadDataCRC32>").Append(Crc32.Compute(bytes))
                    .Append("</LeadDataCRC32>\r\n<WaveFormData>").Append(Convert.ToBase64String(bytes, Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal))
                    .Append("\n</WaveFormData>\r\n</LeadData>\r\n");
            }

            text.Append("</Waveform>\r\n");
        }

        text.Append("</RestingECG>\r\n");
        var record = PhilipsTests.ReadThroughRegistry(Files("h", text.ToString()), "h");
        Assert.Equal(250, record.Signal.SamplingRate);
        Assert.Equal(["V1", "I", "II", "V2", "V3", "V4", "V5", "V6"], record.Signal.LeadNames);
        for (var c = 0; c < 8; c++)
        {
            var expected = samples[record.Signal.LeadNames[c]];
            Assert.Equal(expected.Select(v => v * 4.88 / 1000), record.Signal.Leads[c]);
        }

        Assert.Equal("MUSE 8.0.2.10132", record.Description.Version);
        Assert.Equal("MAC55, software 009C", record.Description.Device);
        Assert.Equal("0.16-100 Hz, AC NONE", record.Description.Filters);
        PhilipsTests.AssertNoPatientData(record, "PX-4711", "M\u00fcller", "J\u00fcrgen", "1950");
        Assert.Equal(StandardLeads.Names, record.ToStandard12Lead().LeadNames);
    }

    [Fact]
    public void Crc32IsTheIeeeChecksum()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        Assert.Equal(0u, Crc32.Compute([]));

        // Every length around the eight-byte steps agrees with the bytewise definition.
        var random = new Random(32);
        var data = new byte[41];
        random.NextBytes(data);
        for (var length = 0; length <= data.Length; length++)
        {
            var crc = 0xFFFFFFFFu;
            foreach (var b in data.AsSpan(0, length))
            {
                crc ^= b;
                for (var k = 0; k < 8; k++)
                {
                    crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
                }
            }

            Assert.Equal(~crc, Crc32.Compute(data.AsSpan(0, length)));
        }
    }

    internal static string Text(IReadOnlyDictionary<string, byte[]> files) => Encoding.Latin1.GetString(files.Values.Single());

    internal static Dictionary<string, byte[]> Files(string name, string text) => new() { [name + ".xml"] = Encoding.Latin1.GetBytes(text) };
}
