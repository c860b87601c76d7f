using System.Diagnostics;
using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Aecg;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// HL7 aECG: the FDA example against its reference reading, files the tests write (8 leads, other units, bad
/// digits), recognising the dialect among the XML formats, and XML safety (no external entity, no entity expansion).
/// </summary>
public sealed class AecgTests
{
    private const string SampleGolden = "aecg_FDA_Example";

    private static string SamplePath => ClinicalGoldens.Sample("aecg", "FDA_Example_aECG.xml");

    private static EcgRecord Read(string xml, string recordId = "test/record") => Read(Encoding.UTF8.GetBytes(xml), recordId);

    private static EcgRecord Read(byte[] file, string recordId = "test/record") =>
        new AecgFormat().Read(new InMemoryRecordFileSource([new("record.xml", file)]), "record", recordId);

    private static EcgFormatException Fails(string xml)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<EcgFormatException>(() => Read(xml, "bad/record").ToStandard12Lead());
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16L << 20, "allocated more than 16 MiB");
        Assert.Equal("bad/record", e.RecordId);
        Assert.False(string.IsNullOrWhiteSpace(e.Reason));
        return e;
    }

    private static string Written(AecgWriterOptions? options = null, double seconds = 2) =>
        new AecgWriter(options).Document(DicomTests.Synthetic(seconds: seconds), "record");

    [Fact]
    public void SampleReadsToItsGolden()
    {
        var record = ClinicalGoldens.AssertReadsToGolden(SamplePath, SampleGolden);
        Assert.Equal("aecg", record.Format);
        Assert.Equal(12, record.Signal.LeadNames.Count);
        Assert.Equal(5000, record.Signal.SampleCount);
        Assert.Empty(record.Warnings);
        Assert.Equal("Mortara Instrument, Inc. ELI250", record.Description.Device);
        Assert.Equal("low-pass 150 Hz, notch 60 Hz", record.Description.Filters);
        Assert.All(record.SourceUnits, u => Assert.Equal("uV", u));
    }

    [Fact]
    public void SampleLeaksNoSubjectData()
    {
        // The example's subject (name Clark, id SBJ-123, born 19530508), its technician, investigator and visit performer.
        var record = FormatRegistry.Default.Load(SamplePath);
        var shown = string.Join('\n', [record.Container, record.Description.ToString(), .. record.Warnings, .. record.Signal.LeadNames, .. record.Signal.Metadata.Values]);
        foreach (var secret in new[] { "Clark", "SBJ-123", "19530508", "KAB", "JMK", "John Smith" })
        {
            Assert.DoesNotContain(secret, shown, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void EightLeadsAreStoredAndTheLimbLeadsDerived()
    {
        var signal = DicomTests.Synthetic(seconds: 2);
        var record = Read(new AecgWriter().Document(signal, "record"));
        Assert.Equal(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], record.Signal.LeadNames);
        var expected = LeadMapping.ToStandard12(new EcgSignal("x", 500, ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], [.. new[] { 0, 1, 6, 7, 8, 9, 10, 11 }.Select(i => signal.Leads[i])]));
        ClinicalGoldens.AssertSameSignal(expected, record.ToStandard12Lead(), 1e-12, "8-lead aECG");
        Assert.Equal("HubertEcg synthetic", record.Description.Device);
        Assert.Equal("0.05-150 Hz", record.Description.Filters);
    }

    [Fact]
    public void TwelveLeadsMillisecondIncrementAndOriginReadBack()
    {
        var signal = DicomTests.Synthetic(seed: 5, rate: 250, seconds: 2);
        var options = new AecgWriterOptions { AllTwelveLeads = true, IncrementUnit = "ms", OriginMicrovolts = -40, ScaleMicrovolts = 0.5 };
        var record = Read(new AecgWriter(options).Document(signal, "record"));
        Assert.Equal(250, record.Signal.SamplingRate);
        ClinicalGoldens.AssertSameSignal(signal, record.ToStandard12Lead(), 1e-12, "12-lead aECG");
    }

    [Fact]
    public void WhitespaceInDigitsIsTolerated()
    {
        var xml = Written(new AecgWriterOptions { DigitsPerLine = 7 }).Replace("<digits>", "<digits>\r\n\t  ", StringComparison.Ordinal).Replace(" ", "  \t", StringComparison.Ordinal);
        Assert.Equal(1000, Read(xml).Signal.SampleCount);
    }

    [Fact]
    public void UnequalDigitCountsAreRefused()
    {
        var xml = Written();
        var last = xml.LastIndexOf("\n</digits>", StringComparison.Ordinal);
        xml = xml[..last] + " 7" + xml[last..];
        Assert.Contains("samples", Fails(xml).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void BadDigitIsRefusedWithTheLead()
    {
        var xml = Written();
        var at = xml.IndexOf("<digits>", StringComparison.Ordinal) + "<digits>\n".Length;
        xml = xml[..at] + "12x " + xml[at..];
        var reason = Fails(xml).Reason;
        Assert.Contains("MDC_ECG_LEAD_I", reason, StringComparison.Ordinal);
        Assert.Contains("digit 1", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingPiecesAreRefused()
    {
        Assert.Contains("increment", Fails(Written().Replace("<increment", "<other", StringComparison.Ordinal)).Reason, StringComparison.Ordinal);
        Assert.Contains("RHYTHM", Fails(Written().Replace("<sequenceSet>", "<other>", StringComparison.Ordinal).Replace("</sequenceSet>", "</other>", StringComparison.Ordinal)).Reason, StringComparison.Ordinal);
        Assert.Contains("voltage", Fails(Written().Replace("unit=\"uV\"", "unit=\"mmHg\"", StringComparison.Ordinal)).Reason, StringComparison.Ordinal);
        Assert.Contains("not well-formed", Fails(Written()[..5000]).Reason, StringComparison.Ordinal);
        Assert.Contains("AnnotatedECG", Fails("<RestingECG><Waveform/></RestingECG>").Reason, StringComparison.Ordinal);
        Assert.Contains("AnnotatedECG", Fails("<AnnotatedECG xmlns=\"urn:other\"/>").Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void RecognisesOnlyAnnotatedEcgInTheHl7Namespace()
    {
        var format = new AecgFormat();
        Assert.True(format.Recognises(File.ReadAllBytes(SamplePath).AsSpan(0, 4096)));
        Assert.True(format.Recognises(Encoding.UTF8.GetBytes(Written()).AsSpan(0, 2000)));
        Assert.False(format.Recognises("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><!DOCTYPE RestingECG SYSTEM \"restecg.dtd\"><RestingECG>"u8));
        Assert.False(format.Recognises("<restingecgdata xmlns=\"http://www3.medical.philips.com\">"u8));
        Assert.False(format.Recognises("<AnnotatedECG>"u8));
        Assert.False(format.Recognises("not xml"u8));
    }

    [Fact]
    public void ExternalEntityIsNotFollowed()
    {
        var marker = "MARKER-" + Guid.NewGuid().ToString("N");
        var secret = Path.Combine(Path.GetTempPath(), $"aecg-xxe-{Guid.NewGuid():N}.txt");
        File.WriteAllText(secret, marker);
        try
        {
            var uri = new Uri(secret).AbsoluteUri;
            var xml = Written().Replace(
                "<AnnotatedECG",
                $"<!DOCTYPE AnnotatedECG [<!ENTITY xxe SYSTEM \"{uri}\">]>\n<AnnotatedECG",
                StringComparison.Ordinal).Replace("<manufacturerModelName>synthetic", "<manufacturerModelName>&xxe;", StringComparison.Ordinal);
            var watch = Stopwatch.StartNew();
            var e = Fails(xml);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
            Assert.DoesNotContain(marker, e.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(marker, e.Reason, StringComparison.Ordinal);

            // Declared in the DTD but referenced from a digit: still no file content, still a typed error.
            var inDigits = xml.Replace("&xxe;", "synthetic", StringComparison.Ordinal).Replace("<digits>", "<digits>&xxe; ", StringComparison.Ordinal);
            Assert.DoesNotContain(marker, Fails(inDigits).ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public void NestedEntitiesAreNotExpanded()
    {
        var entities = new StringBuilder("<!ENTITY lol0 \"lol\">");
        for (var i = 1; i <= 9; i++)
        {
            entities.Append($"<!ENTITY lol{i} \"{string.Concat(Enumerable.Repeat($"&lol{i - 1};", 10))}\">");
        }

        var xml = Written().Replace("<AnnotatedECG", $"<!DOCTYPE AnnotatedECG [{entities}]>\n<AnnotatedECG", StringComparison.Ordinal)
            .Replace("<manufacturerModelName>synthetic", "<manufacturerModelName>&lol9;", StringComparison.Ordinal);
        var watch = Stopwatch.StartNew();
        var e = Fails(xml);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
        Assert.DoesNotContain("lollol", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void RegistryChoosesAecgAmongXmlFiles()
    {
        var files = FormatRegistry.WriterFor("aecg")!.Write(DicomTests.Synthetic(seconds: 2), "r1");
        var upper = files.ToDictionary(kv => kv.Key.Replace(".xml", ".XML", StringComparison.Ordinal), kv => kv.Value, StringComparer.Ordinal);
        var handle = FormatRegistry.Default.Record("r1", "r1", upper.Keys.ToList(), new InMemoryRecordFileSource(upper));
        Assert.Equal("aecg", handle.Load().Format);

        // With another XML dialect registered first, the first bytes choose.
        var registry = new FormatRegistry([new OtherXmlFormat(), new AecgFormat()], []);
        Assert.Equal("aecg", registry.Record("r1", "r1", upper.Keys.ToList(), new InMemoryRecordFileSource(upper)).Load().Format);
        var muse = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["r2.xml"] = "<?xml version=\"1.0\"?><RestingECG/>"u8.ToArray() };
        Assert.Equal("other", registry.Record("r2", "r2", muse.Keys.ToList(), new InMemoryRecordFileSource(muse)).Load().Format);
    }

    /// <summary>A stand-in for another XML dialect sharing <c>.xml</c> (GE MUSE's root element).</summary>
    private sealed class OtherXmlFormat : IRecordFormat
    {
        public string Name => "other";

        public IReadOnlyList<string> Suffixes { get; } = [".xml"];

        public string PrimarySuffix => ".xml";

        public bool Reads(IReadOnlySet<string> suffixes) => suffixes.Contains(".xml");

        public bool Recognises(ReadOnlySpan<byte> head) => Inference.IO.SafeXml.RootElement(head) is ("RestingECG", _);

        public EcgRecord Read(IRecordFileSource files, string recordName, string recordId) =>
            EcgRecord.InMillivolts("other", "test", new EcgSignal(recordId, 500, ["I"], [[0.0]]));
    }
}
