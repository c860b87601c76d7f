using System.Xml;

namespace HubertEcg.Inference.IO;

/// <summary>
/// The one way ECG XML files are opened (GE MUSE, Philips, HL7 aECG): DTD processing off, no resolver (so no
/// external entity, DTD or schema is ever fetched, local or remote), no entity expansion, and a bound on the
/// characters a document may hold. A <c>DOCTYPE</c> (MUSE names <c>restecg.dtd</c>) is skipped, not followed; an
/// entity reference then fails the read as malformed XML. The encoding comes from the byte order mark or the XML
/// declaration (Philips 1.04 files are UTF-16 LE, MUSE files ISO-8859-1).
/// </summary>
public static class SafeXml
{
    /// <summary>Characters one document may hold: far above any ECG export (a 10 s, 12-lead MUSE file is ~300 KB).</summary>
    public const long MaxCharacters = 256L << 20;

    public static XmlReaderSettings Settings(long maxCharacters = MaxCharacters) => new()
    {
        DtdProcessing = DtdProcessing.Ignore,
        XmlResolver = null,
        MaxCharactersFromEntities = 0,
        MaxCharactersInDocument = maxCharacters,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        CloseInput = false,
    };

    /// <summary>A reader over <paramref name="stream"/> with <see cref="Settings"/>.</summary>
    public static XmlReader Open(Stream stream, long maxCharacters = MaxCharacters) => XmlReader.Create(stream, Settings(maxCharacters));

    /// <summary>
    /// The first element's local name and namespace from the first bytes of a file (decoded by its byte order mark or
    /// declaration), or null when they are not the start of an XML document; used to tell XML dialects apart.
    /// </summary>
    public static (string LocalName, string Namespace)? RootElement(ReadOnlySpan<byte> head)
    {
        // The format registry asks each XML dialect in turn about the same head: the last answer on this thread is
        // kept with the bytes it was given, so that one file is looked at once, not once per dialect.
        if (_lastHead is { } last && head.SequenceEqual(last.AsSpan(0, _lastHeadLength)))
        {
            return _lastRoot;
        }

        // The plain prologue of nearly every file (declaration, comments, processing instructions, a DOCTYPE without
        // internal subset, ASCII names) is read from the bytes; anything else is left to an XML reader.
        var root = RootSniffer.Sniff(head, out var sure);
        if (!sure)
        {
            root = ParseRootElement(head);
        }

        if (_lastHead is null || _lastHead.Length < head.Length)
        {
            _lastHead = new byte[Math.Max(head.Length, 4096)];
        }

        head.CopyTo(_lastHead);
        _lastHeadLength = head.Length;
        _lastRoot = root;
        return root;
    }

    [ThreadStatic]
    private static byte[]? _lastHead;

    [ThreadStatic]
    private static int _lastHeadLength;

    [ThreadStatic]
    private static (string LocalName, string Namespace)? _lastRoot;

    private static (string LocalName, string Namespace)? ParseRootElement(ReadOnlySpan<byte> head)
    {
        try
        {
            using var stream = new MemoryStream(head.ToArray());
            using var reader = XmlReader.Create(stream, Settings());
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
            // Cut off before the root element, or not XML.
        }

        return null;
    }
}
