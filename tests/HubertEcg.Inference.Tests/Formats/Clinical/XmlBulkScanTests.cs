using System.Globalization;
using System.Text;
using System.Xml;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Aecg;
using HubertEcg.Inference.Formats.Muse;
using HubertEcg.Inference.Formats.Philips;
using HubertEcg.Inference.IO;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// The bulk scan that takes waveform text (base64, digits) out of an XML ECG before the XML reader sees it: it takes
/// only plain text up to the element's own end tag, leaves everything else to the reader, and a file reads to the
/// same record whether its waveforms were taken by the scan or read by the reader.
/// </summary>
public sealed class XmlBulkScanTests
{
    private static readonly HashSet<string> Base64Names = new(StringComparer.Ordinal) { "WaveFormData" };
    private static readonly HashSet<string> DigitNames = new(StringComparer.Ordinal) { "digits" };

    private static XmlBulkScan Scan(string xml, XmlBulkKind kind = XmlBulkKind.Base64)
    {
        var bytes = Encoding.UTF8.GetBytes(xml);
        return XmlBulkScanner.Scan(bytes, bytes.Length, kind == XmlBulkKind.Base64 ? Base64Names : DigitNames, kind);
    }

    private static string Rest(XmlBulkScan scan) => Encoding.UTF8.GetString(scan.Document, 0, scan.Length);

    [Fact]
    public void PlainBase64IsTakenAndLeftOutOfTheDocumentWithItsLineBreaks()
    {
        using var scan = Scan("<a><WaveFormData>QUFB\nQkJC\r\n</WaveFormData><b>x</b></a>");
        Assert.True(scan.Complete);
        var element = Assert.Single(Elements(scan));
        Assert.True(element.Taken);
        Assert.Equal("AAABBB", Encoding.ASCII.GetString(element.Bytes.Span));
        Assert.Equal("<a><WaveFormData>\n\r\n</WaveFormData><b>x</b></a>", Rest(scan));
    }

    [Fact]
    public void MarkupThatLooksLikeTheElementIsNotCounted()
    {
        using var scan = Scan(
            "<?xml version=\"1.0\"?><!DOCTYPE a SYSTEM \"x>y.dtd\"><a><?pi <WaveFormData>QUFB</WaveFormData>?>"
            + "<!--<WaveFormData>QUFB</WaveFormData>--><c t='x>y' u=\"'\"/><![CDATA[<WaveFormData>QUFB</WaveFormData>]]>"
            + "<WaveFormData>QkJC</WaveFormData></a>");
        var element = Assert.Single(Elements(scan));
        Assert.True(element.Taken);
        Assert.Equal("BBB", Encoding.ASCII.GetString(element.Bytes.Span));
    }

    [Theory]
    [InlineData("<a><WaveFormData><![CDATA[QUFB]]></WaveFormData></a>")]
    [InlineData("<a><WaveFormData>QUF&#66;</WaveFormData></a>")]
    [InlineData("<a><WaveFormData>QU<!-- c -->FB</WaveFormData></a>")]
    [InlineData("<a><WaveFormData>QUFB\vQUFB</WaveFormData></a>")]
    [InlineData("<a><WaveFormData>QUFB=</WaveFormData></a>")]
    [InlineData("<a><WaveFormData>QUFB</WaveFormDataX></a>")]
    [InlineData("<a><WaveFormData/></a>")]
    public void ContentTheScanCannotTakeIsLeftWhole(string xml)
    {
        using var scan = Scan(xml);
        var element = Assert.Single(Elements(scan));
        Assert.False(element.Taken);
        Assert.Equal(xml, Rest(scan));
    }

    [Fact]
    public void AnInternalSubsetStopsTheScanAndNothingIsTaken()
    {
        const string xml = "<!DOCTYPE a [<!ENTITY e \"<WaveFormData>\">]><a><WaveFormData>QUFB</WaveFormData></a>";
        using var scan = Scan(xml);
        Assert.False(scan.Complete);
        Assert.Equal(0, scan.Count);
        Assert.Equal(xml, Rest(scan));
    }

    [Fact]
    public void EncodingsOtherThanUtf8Latin1OrUtf16LeAreLeftToTheReader()
    {
        var ebcdic = Encoding.Latin1.GetBytes("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><a><WaveFormData>QUFB</WaveFormData></a>");
        using var scan = XmlBulkScanner.Scan(ebcdic, ebcdic.Length, Base64Names, XmlBulkKind.Base64);
        Assert.False(scan.Complete);
        Assert.Equal(0, scan.Count);
    }

    [Fact]
    public void Utf16LittleEndianIsScannedAndStaysUtf16()
    {
        var bytes = new byte[] { 0xFF, 0xFE }.Concat(Encoding.Unicode.GetBytes("<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>\u00e9<WaveFormData>QUFB\r\nQkJC</WaveFormData></a>")).ToArray();
        using var scan = XmlBulkScanner.Scan(bytes, bytes.Length, Base64Names, XmlBulkKind.Base64);
        Assert.Equal("AAABBB", Encoding.ASCII.GetString(Assert.Single(Elements(scan)).Bytes.Span));
        using var reader = SafeXml.Open(scan.OpenDocument());
        var text = new StringBuilder();
        while (reader.Read())
        {
            if (reader.NodeType == XmlNodeType.Text)
            {
                text.Append(reader.Value);
            }
        }

        Assert.Equal("\u00e9", text.ToString());
    }

    [Fact]
    public void NumbersParseAsTheReaderParsesThem()
    {
        using var scan = Scan("<a><digits>\n1 -2 +3\t1e2 -0 2.5 123456789012345678901\n</digits></a>", XmlBulkKind.Numbers);
        var element = Assert.Single(Elements(scan));
        Assert.True(element.Taken);
        Assert.Equal([1, -2, 3, 100, 0, 2.5, 123456789012345678901d], element.Numbers!);
        Assert.False(double.IsNegative(element.Numbers![4]));
    }

    [Fact]
    public void DigitsElementsOfOtherLengthsThanTheOneBeforeParseWhole()
    {
        // Each element is parsed into an array of the previous element's count: the same, more and fewer numbers.
        int[] counts = [300, 300, 305, 297, 1, 40];
        var xml = new StringBuilder("<a>");
        foreach (var count in counts)
        {
            xml.Append("<digits>").AppendJoin(' ', Enumerable.Range(0, count).Select(i => (i * 7) - count)).Append("</digits>");
        }

        using var scan = Scan(xml.Append("</a>").ToString(), XmlBulkKind.Numbers);
        var elements = Elements(scan).ToList();
        Assert.Equal(counts.Length, elements.Count);
        for (var e = 0; e < counts.Length; e++)
        {
            Assert.True(elements[e].Taken);
            Assert.Equal(Enumerable.Range(0, counts[e]).Select(i => (double)((i * 7) - counts[e])), elements[e].Numbers!);
        }
    }

    [Fact]
    public void NumbersOfEveryLengthParseAsDoubleParsesThem()
    {
        // Integers of 1 to 20 digits, signed or not, with leading zeros, and decimals, separated by every XML blank:
        // the eight-digits-at-once path meets tokens of each length, at every position of a block, and near the end.
        var random = new Random(20261206);
        var tokens = new List<string>();
        for (var i = 0; i < 4000; i++)
        {
            var digits = random.Next(1, 21);
            var token = new StringBuilder();
            token.Append(random.Next(4) switch { 0 => "-", 1 => "+", _ => string.Empty });
            for (var d = 0; d < digits; d++)
            {
                token.Append((char)('0' + random.Next(10)));
            }

            if (random.Next(10) == 0)
            {
                token.Append('.').Append(random.Next(1000));
            }

            tokens.Add(token.ToString());
        }

        var blanks = new[] { " ", "  ", "\n", "\r\n", "\t", " \n " };
        var text = new StringBuilder();
        foreach (var token in tokens)
        {
            text.Append(token).Append(blanks[random.Next(blanks.Length)]);
        }

        // The last token ends the content with no blank after it.
        text.Append('7');
        tokens.Add("7");
        using var scan = Scan($"<a><digits>{text}</digits></a>", XmlBulkKind.Numbers);
        var element = Assert.Single(Elements(scan));
        Assert.True(element.Taken);
        var expected = tokens.Select(t => double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(expected, element.Numbers!);
    }

    [Theory]
    [InlineData("1 2\v3")]
    [InlineData("1 x 3")]
    [InlineData("1 NaN")]
    [InlineData("1 Infinity")]
    [InlineData("1 &#50;")]
    [InlineData("1 00000000000000000000000000000000001.5")]
    public void NumbersTheScanCannotTakeAreLeftToTheReader(string digits)
    {
        using var scan = Scan($"<a><digits>{digits}</digits></a>", XmlBulkKind.Numbers);
        Assert.False(Assert.Single(Elements(scan)).Taken);
    }

    [Fact]
    public void LineNumbersOfLaterErrorsStayThoseOfTheFile()
    {
        const string xml = "<a>\n<WaveFormData>\nQUFB\nQUFB\nQUFB\n</WaveFormData>\n<b>\n</c></a>";
        using var scan = Scan(xml);
        Assert.True(Assert.Single(Elements(scan)).Taken);
        Assert.Equal(ErrorLine(Encoding.UTF8.GetBytes(xml)), ErrorLine(scan.Document.AsSpan(0, scan.Length).ToArray()));
    }

    public static TheoryData<string> Files => ["muse", "philips-1.03", "philips-1.04", "aecg", "aecg-sample", "philips-sample-1.03", "philips-sample-1.04"];

    /// <summary>
    /// Variants of each file that send some or all of its waveform elements to the reader (an internal subset stops
    /// the scan; CDATA, a character reference, a comment or a prefix make one element the reader's) read to exactly
    /// the record the scan gives.
    /// </summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void ARecordReadsTheSameWhetherTheScanOrTheReaderTakesItsWaveforms(string file)
    {
        var (bytes, wide, tag) = File(file);
        var text = wide ? Encoding.Unicode.GetString(bytes, 2, bytes.Length - 2) : Encoding.Latin1.GetString(bytes);
        var expected = Read(bytes);
        var last = text.LastIndexOf($"</{tag}>", StringComparison.Ordinal);
        var lastStart = text.LastIndexOf($"<{tag}", last, StringComparison.Ordinal);
        var lastContent = text.IndexOf('>', lastStart) + 1;
        string[] variants =
        [
            text.Insert(text.IndexOf("?>", StringComparison.Ordinal) + 2, "<!DOCTYPE x [ <!ENTITY e \"1\"> ]>"),
            text.Insert(last, "]]>").Insert(lastContent, "<![CDATA["),
            text.Insert(last, "<!-- end -->"),
            text.Insert(lastStart, $"<!-- <{tag}>QUFB</{tag}> -->"),
            text.Replace("\n", "\r\n", StringComparison.Ordinal),
            text[..lastContent] + "\n" + text[lastContent..],
        ];
        foreach (var variant in variants)
        {
            var variantBytes = wide ? [0xFF, 0xFE, .. Encoding.Unicode.GetBytes(variant)] : Encoding.Latin1.GetBytes(variant);
            var record = Read(variantBytes);
            Assert.Equal(expected.Signal.LeadNames, record.Signal.LeadNames);
            Assert.Equal(expected.Signal.SamplingRate, record.Signal.SamplingRate);
            for (var lead = 0; lead < expected.Signal.Leads.Length; lead++)
            {
                Assert.Equal(expected.Signal.Leads[lead], record.Signal.Leads[lead]);
            }
        }
    }

    private static EcgRecord Read(byte[] bytes) =>
        PhilipsTests.ReadThroughRegistry(new Dictionary<string, byte[]> { ["record.xml"] = bytes }, "record");

    private static (byte[] Bytes, bool Wide, string Tag) File(string name)
    {
        var signal = SyntheticEcg.Generate("scan", 3, 500, 4);
        return name switch
        {
            "muse" => (MuseWriter.Write(signal, "r")["r.xml"], false, "WaveFormData"),
            "philips-1.03" => (PhilipsWriter.Write(signal, "r", new PhilipsWriterOptions { Version = "1.03" })["r.xml"], false, "parsedwaveforms"),
            "philips-1.04" => (PhilipsWriter.Write(signal, "r")["r.xml"], true, "parsedwaveforms"),
            "aecg" => (Encoding.UTF8.GetBytes(new AecgWriter().Document(signal, "r")), false, "digits"),
            "aecg-sample" => (System.IO.File.ReadAllBytes(ClinicalGoldens.Sample("aecg", "FDA_Example_aECG.xml")), false, "digits"),
            "philips-sample-1.03" => (System.IO.File.ReadAllBytes(ClinicalGoldens.Sample("philips", "129DYPRG_1-03.XML")), false, "parsedwaveforms"),
            _ => (System.IO.File.ReadAllBytes(ClinicalGoldens.Sample("philips", "3191723_ZZDEMOPTONLY_1-04_orig.xml")), true, "parsedwaveforms"),
        };
    }

    private static IReadOnlyList<XmlBulkElement> Elements(XmlBulkScan scan) => scan.Elements;

    private static int ErrorLine(byte[] bytes)
    {
        using var reader = SafeXml.Open(new MemoryStream(bytes));
        var e = Assert.Throws<XmlException>(() =>
        {
            while (reader.Read())
            {
            }
        });
        return e.LineNumber;
    }
}
