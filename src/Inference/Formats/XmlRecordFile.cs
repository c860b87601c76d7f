using System.Buffers;
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

    /// <summary>
    /// Reads <paramref name="fileName"/> from <paramref name="files"/> as a document and hands it to
    /// <paramref name="read"/>. The content of elements named in <paramref name="base64Elements"/> is decoded while
    /// reading (never held as text) and kept as the element's <see cref="Base64Content"/> annotation (see
    /// <see cref="Binary"/>), which is valid only inside <paramref name="read"/>.
    /// </summary>
    public static T Read<T>(IRecordFileSource files, string fileName, string recordId, IReadOnlySet<string> base64Elements, Func<XDocument, T> read)
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
            return Read(stream, length, recordId, base64Elements, read);
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

    /// <summary>Reads a document from <paramref name="stream"/> (at most <see cref="MaxFileBytes"/>) and hands it to <paramref name="read"/>.</summary>
    public static T Read<T>(Stream stream, string recordId, IReadOnlySet<string> base64Elements, Func<XDocument, T> read) =>
        Read(stream, -1, recordId, base64Elements, read);

    private static T Read<T>(Stream stream, long expectedLength, string recordId, IReadOnlySet<string> base64Elements, Func<XDocument, T> read)
    {
        var (file, length, pooled) = ReadAll(stream, expectedLength, MaxFileBytes, recordId);
        try
        {
            // The waveform text is taken out and decoded from the bytes; the reader parses the rest.
            using var scan = XmlBulkScanner.Scan(file, length, base64Elements, XmlBulkKind.Base64);
            XDocument document;
            try
            {
                using var documentStream = scan.OpenDocument();
                using var reader = SafeXml.Open(documentStream, MaxFileBytes);
                document = Build(reader, recordId, base64Elements, scan);
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

            return read(document);
        }
        finally
        {
            if (pooled)
            {
                ArrayPool<byte>.Shared.Return(file);
            }
        }
    }

    /// <summary>
    /// The whole of <paramref name="stream"/> and its length; more than <paramref name="maxBytes"/> fails the read.
    /// A memory stream over a whole array from its start (a record already in memory) is read where it is (only read,
    /// never written; <c>Pooled</c> false); any other stream is copied into a pooled buffer (return it to
    /// <see cref="ArrayPool{T}.Shared"/>), which <paramref name="expectedLength"/> (the file's stated length, or -1)
    /// sizes.
    /// </summary>
    internal static (byte[] Buffer, int Length, bool Pooled) ReadAll(Stream stream, long expectedLength, long maxBytes, string recordId)
    {
        if (stream is MemoryStream memory && memory.Position == 0 && memory.TryGetBuffer(out var whole) && whole.Offset == 0 && whole.Array is { } array)
        {
            if (whole.Count > maxBytes)
            {
                throw new EcgFormatException(recordId, $"the XML ECG is more than the {maxBytes} bytes it may have");
            }

            return (array, whole.Count, false);
        }

        // One byte more than expected, so that the end of the stream is seen without growing.
        var capacity = expectedLength is >= 0 && expectedLength < maxBytes ? (int)expectedLength + 1 : (int)Math.Min(maxBytes + 1, 1 << 16);
        var buffer = ArrayPool<byte>.Shared.Rent(capacity);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > maxBytes)
                    {
                        throw new EcgFormatException(recordId, $"the XML ECG is more than the {maxBytes} bytes it may have");
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, maxBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var read = stream.Read(buffer, length, buffer.Length - length);
                if (read == 0)
                {
                    break;
                }

                length += read;
            }

            if (length > maxBytes)
            {
                throw new EcgFormatException(recordId, $"the XML ECG is more than the {maxBytes} bytes it may have");
            }

            return (buffer, length, true);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>The decoded content of an element read as base64 (see <see cref="Read{T}(Stream, string, IReadOnlySet{string}, Func{XDocument, T})"/>), or null.</summary>
    public static ReadOnlyMemory<byte>? Binary(XElement? element) => element?.Annotation<Base64Content>()?.Bytes;

    /// <summary>
    /// The document as <see cref="XDocument.Load(XmlReader)"/> builds it (elements, attributes, text; no comments,
    /// processing instructions or insignificant whitespace), except that base64 elements are decoded: by the scan
    /// where it took them, else as they are read.
    /// </summary>
    private static XDocument Build(XmlReader reader, string recordId, IReadOnlySet<string> base64Elements, XmlBulkScan scan)
    {
        var document = new XDocument();
        XContainer current = document;
        var more = reader.Read();
        while (more)
        {
            switch (reader.NodeType)
            {
                case XmlNodeType.Element:
                {
                    var element = new XElement(XName.Get(reader.LocalName, reader.NamespaceURI));
                    if (reader.MoveToFirstAttribute())
                    {
                        do
                        {
                            if (reader.NamespaceURI != XNamespace.Xmlns.NamespaceName)
                            {
                                element.Add(new XAttribute(XName.Get(reader.LocalName, reader.NamespaceURI), reader.Value));
                            }
                        }
                        while (reader.MoveToNextAttribute());
                        reader.MoveToElement();
                    }

                    current.Add(element);
                    if (base64Elements.Contains(element.Name.LocalName))
                    {
                        if (scan.Next(reader.Name, recordId) is { Taken: true } taken)
                        {
                            // Its content (line breaks at most) was left out of what the reader reads.
                            element.AddAnnotation(new Base64Content(taken.Bytes));
                            reader.Skip();
                        }
                        else
                        {
                            // Leaves the reader on the node after the element's end.
                            element.AddAnnotation(new Base64Content(ReadBase64(reader, element.Name.LocalName, recordId)));
                        }

                        more = !reader.EOF;
                        continue;
                    }

                    if (!reader.IsEmptyElement)
                    {
                        current = element;
                    }

                    break;
                }

                case XmlNodeType.EndElement:
                    current = current.Parent ?? (XContainer)document;
                    break;
                case XmlNodeType.Text:
                case XmlNodeType.CDATA:
                case XmlNodeType.SignificantWhitespace:
                    if (current is XElement parent)
                    {
                        parent.Add(new XText(reader.Value));
                    }

                    break;
                default:
                    break;
            }

            more = reader.Read();
        }

        scan.CheckAllConsumed(recordId);
        return document;
    }

    private static byte[] ReadBase64(XmlReader reader, string name, string recordId)
    {
        if (reader.IsEmptyElement)
        {
            reader.Read();
            return [];
        }

        try
        {
            using var bytes = new MemoryStream();
            var chunk = new byte[16384];
            int read;
            while ((read = reader.ReadElementContentAsBase64(chunk, 0, chunk.Length)) > 0)
            {
                bytes.Write(chunk, 0, read);
            }

            return bytes.ToArray();
        }
        catch (XmlException e)
        {
            throw new EcgFormatException(recordId, $"{name} is not valid base64 (line {e.LineNumber}, position {e.LinePosition})", e);
        }
        catch (FormatException e)
        {
            throw new EcgFormatException(recordId, $"{name} is not valid base64", e);
        }
        catch (InvalidOperationException e)
        {
            throw new EcgFormatException(recordId, $"{name} holds elements, not base64 text", e);
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

    /// <summary>An element's content decoded from base64 while the document was read.</summary>
    public sealed record Base64Content(ReadOnlyMemory<byte> Bytes);

    private static string? NonEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();
}
