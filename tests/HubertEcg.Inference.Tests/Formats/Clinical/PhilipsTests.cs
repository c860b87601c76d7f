using System.Buffers.Binary;
using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Philips;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>The Philips XML reader on the shared samples (against sierraecg's readings) and on files its writer makes.</summary>
public sealed class PhilipsTests
{
    [Fact]
    public void Version103SampleReadsToItsGolden()
    {
        var record = ClinicalGoldens.AssertReadsToGolden(ClinicalGoldens.Sample("philips", "129DYPRG_1-03.XML"), "philips_129DYPRG_1-03");
        Assert.Equal("philips", record.Format);
        Assert.Equal("SierraECG 1.03", record.Description.Version);
        Assert.Equal("HeartstartMRx", record.Description.Device);
        Assert.Contains("0.05-150 Hz", record.Description.Filters, StringComparison.Ordinal);
        Assert.Equal(StandardLeads.Names, record.Signal.LeadNames);
        Assert.Equal(5000, record.Signal.SampleCount);
        AssertNoPatientData(record, "1112010721168bdc");
    }

    [Fact]
    public void Version104Utf16SampleReadsToItsGolden()
    {
        var path = ClinicalGoldens.Sample("philips", "3191723_ZZDEMOPTONLY_1-04_orig.xml");
        var record = ClinicalGoldens.AssertReadsToGolden(path, "philips_3191723_1-04");
        Assert.Equal("PhilipsECG 1.04", record.Description.Version);
        Assert.Equal("PageWriter Touch (Philips Medical Products:860315:A.01.01.01)", record.Description.Device);
        Assert.Contains("0.05-150 Hz", record.Description.Filters, StringComparison.Ordinal);
        Assert.Equal(5000, record.Signal.SampleCount);
        Assert.Equal(500, record.Signal.SamplingRate);

        // The sample's patient fields never come out.
        var text = Encoding.Unicode.GetString(File.ReadAllBytes(path));
        foreach (var field in new[] { "patientid", "lastname", "firstname" })
        {
            var start = text.IndexOf($"<{field}>", StringComparison.Ordinal);
            if (start >= 0)
            {
                var value = text[(start + field.Length + 2)..text.IndexOf($"</{field}>", start, StringComparison.Ordinal)].Trim();
                if (value.Length > 2)
                {
                    AssertNoPatientData(record, value);
                }
            }
        }
    }

    [Theory]
    [InlineData("1.04", false)]
    [InlineData("1.04", true)]
    [InlineData("1.04.01", true)]
    [InlineData("1.03", false)]
    [InlineData("1.03", true)]
    public void WrittenFilesReadBackExactlyAtTheResolution(string version, bool repbeats)
    {
        var signal = SyntheticEcg.Generate("philips-rt", 11, 500, 10);
        var options = new PhilipsWriterOptions { Version = version, RepresentativeBeats = repbeats };
        var files = PhilipsWriter.Write(signal, "rec", options);
        var bytes = files["rec.xml"];
        if (version == "1.03")
        {
            Assert.Equal((byte)'<', bytes[0]);
        }
        else
        {
            Assert.Equal(new byte[] { 0xFF, 0xFE }, bytes[..2]); // UTF-16 LE byte order mark
        }

        Assert.Equal(repbeats, Encoding.Unicode.GetString(bytes).Contains("repbeats", StringComparison.Ordinal) || Encoding.UTF8.GetString(bytes).Contains("repbeats", StringComparison.Ordinal));
        var record = ReadThroughRegistry(files, "rec");
        Assert.Equal("philips", record.Format);
        Assert.Equal((version == "1.03" ? "SierraECG " : "PhilipsECG ") + version, record.Description.Version);
        Assert.Equal(StandardLeads.Names, record.Signal.LeadNames);
        Assert.Equal(5000, record.Signal.SampleCount);
        AssertQuantised(signal, record.Signal, 5);
        AssertNoPatientData(record, options.PatientId, options.PatientLastName, options.PatientFirstName, options.BirthDate);
    }

    [Fact]
    public void TheCalibrationSecondIsDroppedAndAtMostTenSecondsKept()
    {
        // 4 s at 250 Hz: a 5 s strip whose last second is the pulse; 12 s at 500 Hz: a 11 s strip, 10 s kept.
        var shortSignal = SyntheticEcg.Generate("short", 3, 250, 4);
        var shortRecord = ReadThroughRegistry(PhilipsWriter.Write(shortSignal, "s"), "s");
        Assert.Equal(250, shortRecord.Signal.SamplingRate);
        Assert.Equal(1000, shortRecord.Signal.SampleCount);
        AssertQuantised(shortSignal, shortRecord.Signal, 5);

        var longSignal = SyntheticEcg.Generate("long", 4, 500, 12);
        var longRecord = ReadThroughRegistry(PhilipsWriter.Write(longSignal, "l"), "l");
        Assert.Equal(5000, longRecord.Signal.SampleCount);
        AssertQuantised(longSignal, longRecord.Signal, 5);
    }

    [Fact]
    public void XliCodecRoundTripsAnySixteenBitSamples()
    {
        var random = new Random(1304);
        foreach (var length in new[] { 2, 3, 4, 17, 5500 })
        {
            var samples = new short[length];
            for (var i = 0; i < length; i++)
            {
                samples[i] = (short)(i % 3 == 0 ? random.Next(short.MinValue, short.MaxValue + 1) : random.Next(-300, 300));
            }

            var chunk = XliCodec.Encode(samples);
            var twice = chunk.Concat(XliCodec.Encode(samples.Reverse().ToArray())).ToArray();
            var decoded = XliCodec.Decode(twice, 2, length, "xli");
            Assert.Equal(samples, decoded[0][..length]);
            Assert.Equal(samples.Reverse(), decoded[1][..length]);
        }
    }

    [Fact]
    public void AnXliSizeBeyondTheDataIsRejectedBeforeAllocating()
    {
        var chunk = XliCodec.Encode(new short[] { 1, 2, 3, 4, 5 });
        BinaryPrimitives.WriteInt32LittleEndian(chunk, int.MaxValue);
        var e = Assert.Throws<EcgFormatException>(() => XliCodec.Decode(chunk, 1, 10, "big"));
        Assert.Equal("big", e.RecordId);
        Assert.Contains("compressed size", e.Reason, StringComparison.Ordinal);

        var tooMany = XliCodec.Encode(new short[100]);
        var limited = Assert.Throws<EcgFormatException>(() => XliCodec.Decode(tooMany, 1, 10, "long"));
        Assert.Contains("more than 10 samples", limited.Reason, StringComparison.Ordinal);

        var missing = Assert.Throws<EcgFormatException>(() => XliCodec.Decode(XliCodec.Encode(new short[] { 1, 2, 3 }), 2, 10, "few"));
        Assert.Contains("ends before lead 2", missing.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AStripShorterThanItsLeadsClaimIsRejectedWithTheReason()
    {
        // 4 s and the pulse: 2,500 samples per lead, where a strip of 11 s would need 5,000 before the pulse.
        var files = PhilipsWriter.Write(SyntheticEcg.Generate("d", 5, 500, 4), "d");
        var text = Encoding.Unicode.GetString(files["d.xml"]).TrimStart('\uFEFF').Replace("durationperchannel=\"5000\"", "durationperchannel=\"11000\"", StringComparison.Ordinal);
        var e = Assert.Throws<EcgFormatException>(() => ReadThroughRegistry(new Dictionary<string, byte[]> { ["d.xml"] = Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes(text)).ToArray() }, "d"));
        Assert.Equal("d", e.RecordId);
        Assert.Contains("fewer than the 5000", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void OnlyItsOwnRootIsRecognised()
    {
        var philips = new PhilipsFormat();
        Assert.True(philips.Recognises(File.ReadAllBytes(ClinicalGoldens.Sample("philips", "3191723_ZZDEMOPTONLY_1-04_orig.xml")).AsSpan(0, 4096)));
        Assert.True(philips.Recognises(File.ReadAllBytes(ClinicalGoldens.Sample("philips", "129DYPRG_1-03.XML")).AsSpan(0, 4096)));
        Assert.False(philips.Recognises(File.ReadAllBytes(ClinicalGoldens.Sample("aecg", "FDA_Example_aECG.xml")).AsSpan(0, 4096)));
        Assert.False(philips.Recognises(Encoding.Latin1.GetBytes("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!DOCTYPE RestingECG SYSTEM \"restecg.dtd\">\n<RestingECG>")));
        Assert.False(philips.Recognises("not xml at all"u8));
    }

    /// <summary>Reads record <paramref name="name"/> from in-memory files through the registry (which picks the format by root element).</summary>
    internal static EcgRecord ReadThroughRegistry(IReadOnlyDictionary<string, byte[]> files, string name) =>
        FormatRegistry.Default.Record(name, name, files.Keys.ToList(), new InMemoryRecordFileSource(files)).Load();

    /// <summary>Every lead read equals the written lead rounded to steps of <paramref name="microvolts"/>.</summary>
    internal static void AssertQuantised(EcgSignal written, EcgSignal read, double microvolts)
    {
        var standard = LeadMapping.ToStandard12(written);
        for (var c = 0; c < read.LeadNames.Count; c++)
        {
            var source = standard.Leads[StandardLeads.Names.ToList().IndexOf(read.LeadNames[c])];
            for (var t = 0; t < read.SampleCount; t++)
            {
                var expected = Math.Round(source[t] * 1000 / microvolts) * microvolts / 1000;
                Assert.True(Math.Abs(expected - read.Leads[c][t]) < 1e-12, $"lead {read.LeadNames[c]} sample {t}: {read.Leads[c][t]} for {expected}");
                Assert.True(Math.Abs(source[t] - read.Leads[c][t]) <= (microvolts / 2000) + 1e-12);
            }
        }
    }

    /// <summary>None of <paramref name="values"/> appears in anything the record says about itself.</summary>
    internal static void AssertNoPatientData(EcgRecord record, params string[] values)
    {
        var said = string.Join(
            "\n",
            new[] { record.Format, record.Container, record.Description.Version, record.Description.Device, record.Description.Filters }
                .Concat(record.Warnings).Concat(record.Comments).Concat(record.Signal.LeadNames)
                .Concat(record.Signal.Metadata.Keys).Concat(record.Signal.Metadata.Values).Concat(record.Units).Concat(record.SourceUnits));
        foreach (var value in values)
        {
            Assert.DoesNotContain(value, said, StringComparison.OrdinalIgnoreCase);
        }
    }
}
