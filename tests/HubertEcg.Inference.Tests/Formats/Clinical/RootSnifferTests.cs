using System.Text;
using System.Xml;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats.Aecg;
using HubertEcg.Inference.Formats.Muse;
using HubertEcg.Inference.Formats.Philips;
using HubertEcg.Inference.IO;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// The byte-level look at a file's root element that tells the XML dialects apart without an XML reader: on the
/// files the carts and the project's writers make it is sure, and wherever it is sure it names what an XML reader
/// with <see cref="SafeXml.Settings"/> names; on anything unusual it is not sure (and <see cref="SafeXml.RootElement"/>
/// asks the reader).
/// </summary>
public sealed class RootSnifferTests
{
    public static TheoryData<string> Files => ["muse", "philips-1.03", "philips-1.04", "aecg", "aecg-sample", "philips-sample-1.03", "philips-sample-1.04"];

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryWrittenAndSampleFileIsSniffedSurelyAndAsTheReaderNamesIt(string file)
    {
        var head = Head(File(file));
        var root = RootSniffer.Sniff(head, out var sure);
        Assert.True(sure);
        Assert.NotNull(root);
        Assert.Equal(ReaderRoot(head), root);
        Assert.Equal(ReaderRoot(head), SafeXml.RootElement(head));
    }

    [Theory]
    [InlineData("<a/>", true)]
    [InlineData("<?xml version=\"1.0\"?><a xmlns=\"urn:x\"/>", true)]
    [InlineData("<?xml version='1.0' encoding='ISO-8859-1' standalone='yes' ?>\n<!-- c -->\n<?pi data?>\n<!DOCTYPE RestingECG SYSTEM \"restecg.dtd\">\n<RestingECG>", true)]
    [InlineData("<!DOCTYPE a PUBLIC \"-//X//DTD a//EN\" \"a.dtd\"><p:a xmlns:p=\"urn:p\" p:b=\"1\" xml:lang=\"en\">", true)]
    [InlineData("<a b=\"1\" c='2'>", true)]
    [InlineData("<AnnotatedECG xmlns=\"urn:hl7-org:v3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"x\">", true)]
    [InlineData("<?xml version=\"1.1\"?><a/>", false)]
    [InlineData("<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>", false)]
    [InlineData("<?xml version=\"1.0\" encoding=\"windows-1252\"?><a/>", false)]
    [InlineData("<!DOCTYPE a [ <!ENTITY e \"x\"> ]><a/>", false)]
    [InlineData("<!-- a -- b --><a/>", false)]
    [InlineData("<!-- a ---><a/>", false)]
    [InlineData("<?xml version=\"1.0\"?><?xml version=\"1.0\"?><a/>", false)]
    [InlineData("<?XmL x?><a/>", false)]
    [InlineData("<!DOCTYPE a><!DOCTYPE b><a/>", false)]
    [InlineData("<p:a/>", false)]
    [InlineData("<a q:b=\"1\"/>", false)]
    [InlineData("<a b=\"1\" b=\"2\"/>", false)]
    [InlineData("<a b=\"1\"c=\"2\"/>", false)]
    [InlineData("<a b=\"&amp;\"/>", false)]
    [InlineData("<a b=\"x<y\"/>", false)]
    [InlineData("<a xmlns:p=\"\"/>", false)]
    [InlineData("<xmlns:a/>", false)]
    [InlineData("<a:b:c/>", false)]
    [InlineData("<a", false)]
    [InlineData("<a b=\"1", false)]
    [InlineData("text<a/>", false)]
    [InlineData(" <a/>", false)]
    [InlineData("<\u00e9/>", false)]
    [InlineData("<!-- \u00e9 --><a/>", false)]
    [InlineData("<a\u0001/>", false)]
    [InlineData("", false)]
    public void PlainProloguesAreSureAndOthersAreLeftToTheReader(string xml, bool plain)
    {
        var bytes = Encoding.UTF8.GetBytes(xml);
        var root = RootSniffer.Sniff(bytes, out var sure);
        Assert.Equal(plain, sure);
        if (sure)
        {
            Assert.Equal(ReaderRoot(bytes), root);
        }

        Assert.Equal(ReaderRoot(bytes), SafeXml.RootElement(bytes));
    }

    [Fact]
    public void Utf16WithItsMarkIsSniffedAndOtherMarksAreLeftToTheReader()
    {
        var text = "<?xml version=\"1.0\" encoding=\"utf-16\"?><restingecgdata xmlns=\"urn:x\">";
        byte[] utf16 = [0xFF, 0xFE, .. Encoding.Unicode.GetBytes(text)];
        Assert.Equal(("restingecgdata", "urn:x"), RootSniffer.Sniff(utf16, out var sure));
        Assert.True(sure);

        byte[] bigEndian = [0xFE, 0xFF, .. Encoding.BigEndianUnicode.GetBytes(text)];
        RootSniffer.Sniff(bigEndian, out sure);
        Assert.False(sure);
        Assert.Equal(ReaderRoot(bigEndian), SafeXml.RootElement(bigEndian));

        var noMark = Encoding.Unicode.GetBytes(text);
        RootSniffer.Sniff(noMark, out sure);
        Assert.False(sure);
        Assert.Equal(ReaderRoot(noMark), SafeXml.RootElement(noMark));

        byte[] utf8Mark = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("<?xml version=\"1.0\" encoding=\"utf-8\"?><a/>")];
        Assert.Equal(("a", ""), RootSniffer.Sniff(utf8Mark, out sure));
        Assert.True(sure);
    }

    /// <summary>
    /// Seeded mutations of the heads of every file (bytes changed, inserted, deleted, the head cut short): wherever
    /// the sniff is sure, an XML reader names the same root; <see cref="SafeXml.RootElement"/> always does.
    /// </summary>
    [Fact]
    public void WhereverTheSniffIsSureOfAMutatedHeadTheReaderAgrees()
    {
        var random = new Random(1303);
        var heads = new[] { "muse", "philips-1.03", "philips-1.04", "aecg", "aecg-sample", "philips-sample-1.03", "philips-sample-1.04" }.Select(f => Head(File(f))).ToArray();
        var sureCount = 0;
        byte[] interesting = [(byte)'<', (byte)'>', (byte)'"', (byte)'\'', (byte)':', (byte)'=', (byte)'-', (byte)'?', (byte)'!', (byte)' ', (byte)'&', (byte)'[', 0, 0xE9, (byte)'x'];
        for (var trial = 0; trial < 3000; trial++)
        {
            var head = heads[trial % heads.Length].ToList();
            var window = Math.Min(head.Count, 400);
            for (var m = random.Next(1, 4); m > 0; m--)
            {
                var at = random.Next(Math.Min(window, head.Count));
                var b = random.Next(2) == 0 ? interesting[random.Next(interesting.Length)] : (byte)random.Next(256);
                switch (random.Next(4))
                {
                    case 0: head[at] = b; break;
                    case 1: head.Insert(at, b); break;
                    case 2: head.RemoveAt(at); break;
                    default: head.RemoveRange(at, head.Count - at); break;
                }

                if (head.Count <= 1)
                {
                    break;
                }
            }

            var bytes = head.ToArray();
            var root = RootSniffer.Sniff(bytes, out var sure);
            var expected = ReaderRoot(bytes);
            if (sure)
            {
                sureCount++;
                Assert.Equal(expected, root);
            }

            Assert.Equal(expected, SafeXml.RootElement(bytes));
        }

        Assert.InRange(sureCount, 1, 2999);
    }

    private static (string, string)? ReaderRoot(byte[] head)
    {
        try
        {
            using var reader = XmlReader.Create(new MemoryStream(head), SafeXml.Settings());
            while (reader.Read())
            {
                if (reader.NodeType == XmlNodeType.Element)
                {
                    return (reader.LocalName, reader.NamespaceURI);
                }
            }
        }
        catch (XmlException)
        {
        }
        catch (ArgumentException)
        {
        }
        catch (NotSupportedException)
        {
        }

        return null;
    }

    private static byte[] Head(byte[] file) => file[..Math.Min(file.Length, 4096)];

    private static byte[] File(string name)
    {
        var signal = SyntheticEcg.Generate("sniff", 5, 500, 4);
        return name switch
        {
            "muse" => MuseWriter.Write(signal, "r")["r.xml"],
            "philips-1.03" => PhilipsWriter.Write(signal, "r", new PhilipsWriterOptions { Version = "1.03" })["r.xml"],
            "philips-1.04" => PhilipsWriter.Write(signal, "r")["r.xml"],
            "aecg" => Encoding.UTF8.GetBytes(new AecgWriter().Document(signal, "r")),
            "aecg-sample" => System.IO.File.ReadAllBytes(ClinicalGoldens.Sample("aecg", "FDA_Example_aECG.xml")),
            "philips-sample-1.03" => System.IO.File.ReadAllBytes(ClinicalGoldens.Sample("philips", "129DYPRG_1-03.XML")),
            _ => System.IO.File.ReadAllBytes(ClinicalGoldens.Sample("philips", "3191723_ZZDEMOPTONLY_1-04_orig.xml")),
        };
    }
}
