using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;

namespace HubertEcg.Inference.Formats;

/// <summary>
/// Loading and querying the single XML file of an XML ECG record (Philips, GE MUSE) through <see cref="SafeXml"/>:
/// the file's size is checked before anything is read, DTDs and entities are never followed, and every failure
/// becomes an <see cref="EcgFormatException"/> naming the record. Lookups go by local name, so that a document
/// read with or without its vendor namespace reads the same.
/// </summary>
internal static class XmlRecordFile
{
    /// <summary>Largest XML ECG file read (bytes): a 12-lead, 10 s export is 50-300 KB.</summary>
    public const long MaxFileBytes = 32L << 20;

    /// <summary>Loads <paramref name="fileName"/> from <paramref name="files"/> as a document.</summary>
    public static XDocument Load(IRecordFileSource files, string fileName, string recordId)
    {
        if (!files.Exists(fileName))
        {
            throw new EcgFormatException(recordId, $"{fileName} does not exist");
        }

        var length = files.Length(fileName);
        if (length > MaxFileBytes)
        {
            throw new EcgFormatException(recordId, $"{fileName} is {length} bytes, more than the {MaxFileBytes} an XML ECG may have");
        }

        try
        {
            using var stream = files.Open(fileName);
            return Load(stream, recordId);
        }
        catch (IOException e)
        {
            throw new EcgFormatException(recordId, $"{fileName} cannot be read: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new EcgFormatException(recordId, $"{fileName} cannot be read: {e.Message}", e);
        }
    }

    /// <summary>Parses a document from <paramref name="stream"/> (at most <see cref="MaxFileBytes"/> worth of characters).</summary>
    public static XDocument Load(Stream stream, string recordId)
    {
        try
        {
            using var reader = SafeXml.Open(stream, MaxFileBytes);
            return XDocument.Load(reader, LoadOptions.None);
        }
        catch (XmlException e)
        {
            // The parser's message can quote text of the file (which may be patient data): only the position goes out.
            throw new EcgFormatException(recordId, $"not well-formed XML (line {e.LineNumber}, position {e.LinePosition})", e);
        }
        catch (DecoderFallbackException e)
        {
            throw new EcgFormatException(recordId, "XML text is not in its declared encoding", e);
        }
        catch (ArgumentException e)
        {
            // An unknown encoding name in the XML declaration.
            throw new EcgFormatException(recordId, "XML declaration names an encoding this reader does not know", e);
        }
        catch (NotSupportedException e)
        {
            throw new EcgFormatException(recordId, "XML declaration names an unsupported encoding", e);
        }
    }

    /// <summary>The first descendant (or self) of <paramref name="from"/> with local name <paramref name="name"/>, or null.</summary>
    public static XElement? Find(XElement? from, string name) =>
        from is null ? null
        : from.Name.LocalName == name ? from
        : from.Descendants().FirstOrDefault(e => e.Name.LocalName == name);

    /// <summary>The first child element of <paramref name="parent"/> with local name <paramref name="name"/>, or null.</summary>
    public static XElement? Child(XElement? parent, string name) =>
        parent?.Elements().FirstOrDefault(e => e.Name.LocalName == name);

    /// <summary>The children of <paramref name="parent"/> with local name <paramref name="name"/>.</summary>
    public static IEnumerable<XElement> Children(XElement? parent, string name) =>
        parent is null ? [] : parent.Elements().Where(e => e.Name.LocalName == name);

    /// <summary>The trimmed text of a child element, or null when it is missing or empty.</summary>
    public static string? Text(XElement? parent, string name) => NonEmpty(Child(parent, name)?.Value);

    /// <summary>The trimmed value of an attribute (by local name), or null when it is missing or empty.</summary>
    public static string? Attribute(XElement? element, string name) =>
        NonEmpty(element?.Attributes().FirstOrDefault(a => a.Name.LocalName == name)?.Value);

    /// <summary>A finite number in invariant format, or null.</summary>
    public static double? Number(string? text) =>
        text is not null && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value
            : null;

    /// <summary>An integer in invariant format, or null.</summary>
    public static long? Integer(string? text) =>
        text is not null && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;

    /// <summary>Decodes base64 text (line breaks and blanks allowed) or fails naming <paramref name="what"/>.</summary>
    public static byte[] Base64(string text, string recordId, string what)
    {
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException e)
        {
            throw new EcgFormatException(recordId, $"{what} is not valid base64", e);
        }
    }

    /// <summary>A number for messages and descriptions: invariant, shortest round-trip form.</summary>
    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();
}
