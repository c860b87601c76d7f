using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats;

/// <summary>How the text of a bulk element (see <see cref="XmlBulkScanner"/>) is decoded.</summary>
internal enum XmlBulkKind
{
    /// <summary>Base64 (MUSE <c>WaveFormData</c>, Philips <c>parsedwaveforms</c>); whitespace between groups allowed.</summary>
    Base64,

    /// <summary>Whitespace-separated numbers (aECG <c>digits</c>): integers, or decimals as <see cref="double"/> parses them.</summary>
    Numbers,
}

/// <summary>One element whose local name the scan was asked for, in document order.</summary>
internal sealed class XmlBulkElement
{
    /// <summary>
    /// True when the content was decoded by the scan and left out of <see cref="XmlBulkScan.Document"/>; false when
    /// the element is left whole for the XML reader (content it could not take: markup, entity references, text that
    /// does not decode), so the reader reads it exactly as it would without the scan.
    /// </summary>
    public bool Taken { get; init; }

    /// <summary>The qualified name of the start tag as written (prefix included), to check the reader is on the same element.</summary>
    public required string QualifiedName { get; init; }

    /// <summary>Decoded base64 (a slice of the scan's pooled buffer, valid until it is disposed).</summary>
    public ReadOnlyMemory<byte> Bytes { get; init; }

    /// <summary>Parsed numbers, an array of their own.</summary>
    public double[]? Numbers { get; init; }
}

/// <summary>
/// The result of <see cref="XmlBulkScanner.Scan"/>: the document for the XML reader, with the content of the taken
/// elements left out (their line breaks kept, so the reader's line numbers stay those of the file), and the
/// elements in document order. Holds pooled buffers until disposed.
/// </summary>
internal sealed class XmlBulkScan : IDisposable
{
    private readonly byte[]? _pooledDocument;
    private readonly byte[]? _pooledBytes;
    private readonly List<XmlBulkElement> _elements;
    private int _next;

    internal XmlBulkScan(byte[] document, int length, byte[]? pooledDocument, byte[]? pooledBytes, List<XmlBulkElement> elements, bool complete)
    {
        Document = document;
        Length = length;
        _pooledDocument = pooledDocument;
        _pooledBytes = pooledBytes;
        _elements = elements;
        Complete = complete;
    }

    /// <summary>The bytes the XML reader parses: the file, less the taken elements' content.</summary>
    public byte[] Document { get; }

    public int Length { get; }

    /// <summary>False when the scan stopped before the end (a DTD internal subset, an encoding it does not take): then nothing was taken.</summary>
    public bool Complete { get; }

    /// <summary>The elements the scan found, in document order.</summary>
    public IReadOnlyList<XmlBulkElement> Elements => _elements;

    /// <summary>How many elements the scan found.</summary>
    public int Count => _elements.Count;

    /// <summary>How many elements the reader has asked for with <see cref="Next"/>.</summary>
    public int Consumed => _next;

    public Stream OpenDocument() => new MemoryStream(Document, 0, Length, writable: false);

    /// <summary>
    /// The next scanned element, for the reader standing on a start tag with <paramref name="qualifiedName"/>;
    /// null when the scan has none (incomplete scan). A scanned element of another name means the scan lost the
    /// document's structure, which fails the read rather than misplace data.
    /// </summary>
    public XmlBulkElement? Next(string qualifiedName, string recordId)
    {
        if (_next >= _elements.Count)
        {
            if (Complete)
            {
                throw new EcgFormatException(recordId, $"XML element {Short(qualifiedName)} was not seen by the bulk scan");
            }

            return null;
        }

        var element = _elements[_next++];
        if (!string.Equals(element.QualifiedName, qualifiedName, StringComparison.Ordinal))
        {
            throw new EcgFormatException(recordId, $"XML element {Short(qualifiedName)} is not the {Short(element.QualifiedName)} the bulk scan saw");
        }

        return element;
    }

    /// <summary>Fails the read when the reader met fewer elements than the scan found (which would mean it lost the structure).</summary>
    public void CheckAllConsumed(string recordId)
    {
        if (Complete && _next != _elements.Count)
        {
            throw new EcgFormatException(recordId, $"the XML reader met {_next} bulk elements, the scan {_elements.Count}");
        }
    }

    public void Dispose()
    {
        if (_pooledDocument is not null)
        {
            ArrayPool<byte>.Shared.Return(_pooledDocument);
        }

        if (_pooledBytes is not null)
        {
            ArrayPool<byte>.Shared.Return(_pooledBytes);
        }
    }

    private static string Short(string text) => text.Length <= 64 ? text : text[..64];
}

/// <summary>
/// Takes the bulk of an XML ECG, the waveform text (base64 or digits), out of the document before the XML reader
/// sees it, and decodes it straight from the file's bytes: no strings, no copies through the reader's buffers.
/// The rest of the document (the metadata) is still read by <see cref="IO.SafeXml"/>, so DTDs, entities and
/// well-formedness are handled as before.
/// <para>
/// The scan follows XML's lexical structure (comments, processing instructions, CDATA sections, a DOCTYPE without
/// an internal subset, quoted attribute values) to find the start tags of the asked-for elements. It only takes an
/// element whose content is plain text up to its own end tag and decodes completely; anything else (markup inside,
/// an entity or character reference, text that is not valid base64 or not numbers) is left for the reader,
/// which then reads and reports it exactly as without the scan. It gives up on the whole document (and takes
/// nothing) when the file is not UTF-8, an ASCII-compatible 8-bit encoding or UTF-16 LE, or has a DTD internal
/// subset. Line numbers in the reader's errors stay the file's; positions on the line of a taken element's end
/// tag are counted without its content.
/// </para>
/// </summary>
internal static class XmlBulkScanner
{
    /// <summary>Longest number token: an integer or decimal needs far fewer characters (the reader's own limit, too).</summary>
    public const int MaxNumberToken = 32;

    // Declared encodings whose bytes below 0x80 are always the ASCII characters (so markup and base64 read as ASCII).
    private static readonly HashSet<string> NarrowEncodings = new(StringComparer.OrdinalIgnoreCase)
    {
        "UTF-8", "UTF8", "ISO-8859-1", "ISO_8859-1", "ISO8859-1", "LATIN1", "L1", "ISO-8859-15", "US-ASCII", "ASCII", "WINDOWS-1252", "CP1252",
    };

    private static readonly HashSet<string> WideEncodings = new(StringComparer.OrdinalIgnoreCase) { "UTF-16", "UTF-16LE", "UNICODE" };

    /// <summary>
    /// Scans the first <paramref name="length"/> bytes of <paramref name="file"/> for elements with a local name in
    /// <paramref name="names"/> and decodes their content as <paramref name="kind"/>.
    /// </summary>
    public static XmlBulkScan Scan(byte[] file, int length, IReadOnlySet<string> names, XmlBulkKind kind)
    {
        var data = file.AsSpan(0, length);
        if (names.Count == 0 || !Layout(data, out var bom, out var wide))
        {
            return Unscanned(file, length);
        }

        if (wide)
        {
            if (!BitConverter.IsLittleEndian || (length - bom) % 2 != 0)
            {
                return Unscanned(file, length);
            }

            var chars = MemoryMarshal.Cast<byte, char>(data[bom..]);
            return Declared(chars, WideEncodings, allowMissing: true) ? new Scanner<char>(file, length, bom, names, kind).Run() : Unscanned(file, length);
        }

        return Declared(data[bom..], NarrowEncodings, allowMissing: true) ? new Scanner<byte>(file, length, bom, names, kind).Run() : Unscanned(file, length);
    }

    private static XmlBulkScan Unscanned(byte[] file, int length) => new(file, length, null, null, [], complete: false);

    /// <summary>Byte order mark and width: UTF-8 BOM or none (1 byte a unit), UTF-16 LE BOM or <c>&lt;?</c> in UTF-16 LE (2).</summary>
    private static bool Layout(ReadOnlySpan<byte> data, out int bom, out bool wide)
    {
        bom = 0;
        wide = false;
        if (data.Length >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF)
        {
            bom = 3;
            return true;
        }

        if (data.Length >= 4 && data[0] == 0xFF && data[1] == 0xFE && !(data[2] == 0 && data[3] == 0))
        {
            bom = 2;
            wide = true;
            return true;
        }

        if (data.Length >= 4 && data[0] == '<' && data[1] == 0 && data[2] == '?' && data[3] == 0)
        {
            wide = true;
            return true;
        }

        // Anything else but a markup start in an 8-bit encoding (UTF-32, big endian, EBCDIC, leading blanks) is left to the reader.
        return data.Length >= 1 && data[0] == '<';
    }

    /// <summary>Whether the XML declaration, if any, names one of <paramref name="accepted"/> (or none, where allowed).</summary>
    private static bool Declared<T>(ReadOnlySpan<T> text, HashSet<string> accepted, bool allowMissing)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (!Lex<T>.At(text, 0, "<?xml") || text.Length < 6 || !Lex<T>.IsSpace(text[5]))
        {
            return allowMissing;
        }

        var end = Lex<T>.Find(text, 0, "?>");
        if (end < 0)
        {
            return false;
        }

        var declaration = text[..end];
        var at = Lex<T>.Find(declaration, 0, "encoding");
        if (at < 0)
        {
            return allowMissing;
        }

        var k = at + "encoding".Length;
        while (k < declaration.Length && Lex<T>.IsSpace(declaration[k]))
        {
            k++;
        }

        if (k >= declaration.Length || !Lex<T>.Is(declaration[k], '='))
        {
            return false;
        }

        k++;
        while (k < declaration.Length && Lex<T>.IsSpace(declaration[k]))
        {
            k++;
        }

        if (k >= declaration.Length || !(Lex<T>.Is(declaration[k], '"') || Lex<T>.Is(declaration[k], '\'')))
        {
            return false;
        }

        var close = declaration[(k + 1)..].IndexOf(declaration[k]);
        if (close is < 1 or > 32)
        {
            return false;
        }

        Span<char> name = stackalloc char[close];
        for (var i = 0; i < close; i++)
        {
            var unit = uint.CreateTruncating(declaration[k + 1 + i]);
            if (unit > 0x7F)
            {
                return false;
            }

            name[i] = (char)unit;
        }

        return accepted.Contains(name.ToString());
    }

    /// <summary>Lexical helpers over a span of bytes (8-bit text) or chars (UTF-16).</summary>
    private static class Lex<T>
        where T : unmanaged, IBinaryInteger<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Is(T unit, char c) => unit == T.CreateTruncating(c);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsSpace(T unit) => Is(unit, ' ') || Is(unit, '\n') || Is(unit, '\r') || Is(unit, '\t');

        /// <summary>Whether <paramref name="text"/> holds the ASCII <paramref name="literal"/> at <paramref name="at"/>.</summary>
        public static bool At(ReadOnlySpan<T> text, int at, string literal)
        {
            if (at < 0 || text.Length - at < literal.Length)
            {
                return false;
            }

            for (var i = 0; i < literal.Length; i++)
            {
                if (!Is(text[at + i], literal[i]))
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>Index of the ASCII <paramref name="literal"/> at or after <paramref name="from"/>, or -1.</summary>
        public static int Find(ReadOnlySpan<T> text, int from, string literal)
        {
            var first = T.CreateTruncating(literal[0]);
            while (from < text.Length)
            {
                var i = text[from..].IndexOf(first);
                if (i < 0)
                {
                    return -1;
                }

                if (At(text, from + i, literal))
                {
                    return from + i;
                }

                from += i + 1;
            }

            return -1;
        }

        /// <summary>
        /// Index of the <c>&gt;</c> closing the markup that starts at <paramref name="from"/>, skipping quoted
        /// literals; -1 when there is none; -2 when <paramref name="stopAtBracket"/> and a <c>[</c> comes first.
        /// </summary>
        public static int TagEnd(ReadOnlySpan<T> text, int from, bool stopAtBracket)
        {
            for (var i = from; i < text.Length; i++)
            {
                var unit = text[i];
                if (Is(unit, '>'))
                {
                    return i;
                }

                if (Is(unit, '"') || Is(unit, '\''))
                {
                    var close = text[(i + 1)..].IndexOf(unit);
                    if (close < 0)
                    {
                        return -1;
                    }

                    i += close + 1;
                }
                else if (stopAtBracket && Is(unit, '['))
                {
                    return -2;
                }
            }

            return -1;
        }
    }

    /// <summary>One scan of one file; <typeparamref name="T"/> is byte (8-bit text) or char (UTF-16 LE).</summary>
    private sealed class Scanner<T>(byte[] file, int length, int bom, IReadOnlySet<string> names, XmlBulkKind kind)
        where T : unmanaged, IBinaryInteger<T>
    {
        private static readonly int Width = Unsafe.SizeOf<T>();

        private readonly List<XmlBulkElement> _elements = [];

        // How many numbers the last taken digits element held: the leads of a record have one length, so the next
        // element is parsed straight into an array of that size (and copied only when it holds another count).
        private int _lastCount;

        // The document for the reader, built only once something is taken: segments of the file, line breaks for the taken content.
        private byte[]? _document;
        private int _documentLength;
        private int _copiedUpTo;

        // Decoded base64 of every taken element, one pooled buffer (base64 decodes to at most 3/4 of its text).
        private byte[]? _bytes;
        private int _bytesUsed;

        private ReadOnlySpan<T> Text => MemoryMarshal.Cast<byte, T>(file.AsSpan(bom, length - bom));

        public XmlBulkScan Run()
        {
            try
            {
                if (!Walk())
                {
                    Release();
                    return Unscanned(file, length);
                }

                if (_document is null)
                {
                    return new XmlBulkScan(file, length, null, _bytes, _elements, complete: true);
                }

                CopyUpTo(Text.Length);
                return new XmlBulkScan(_document, _documentLength, _document, _bytes, _elements, complete: true);
            }
            catch
            {
                Release();
                throw;
            }
        }

        private void Release()
        {
            if (_document is not null)
            {
                ArrayPool<byte>.Shared.Return(_document);
                _document = null;
            }

            if (_bytes is not null)
            {
                ArrayPool<byte>.Shared.Return(_bytes);
                _bytes = null;
            }
        }

        /// <summary>
        /// Walks the markup; false when the document is one the scan does not follow (a DTD internal subset, markup
        /// left open at the end of the file): then nothing counts and the reader reads, or rejects, the file as it is.
        /// </summary>
        private bool Walk()
        {
            var text = Text;
            var lt = T.CreateTruncating('<');
            var position = 0;
            while (position < text.Length)
            {
                var next = text[position..].IndexOf(lt);
                if (next < 0)
                {
                    return true;
                }

                position += next;
                int end;
                if (Lex<T>.At(text, position, "<!--"))
                {
                    end = Lex<T>.Find(text, position + 4, "-->");
                    if (end < 0)
                    {
                        return false;
                    }

                    position = end + 3;
                }
                else if (Lex<T>.At(text, position, "<![CDATA["))
                {
                    end = Lex<T>.Find(text, position + 9, "]]>");
                    if (end < 0)
                    {
                        return false;
                    }

                    position = end + 3;
                }
                else if (Lex<T>.At(text, position, "<?"))
                {
                    end = Lex<T>.Find(text, position + 2, "?>");
                    if (end < 0)
                    {
                        return false;
                    }

                    position = end + 2;
                }
                else if (Lex<T>.At(text, position, "<!"))
                {
                    // DOCTYPE: its internal subset could hold anything; the reader alone deals with it.
                    end = Lex<T>.TagEnd(text, position + 2, stopAtBracket: true);
                    if (end < 0)
                    {
                        return false;
                    }

                    position = end + 1;
                }
                else if (Lex<T>.At(text, position, "</"))
                {
                    end = Lex<T>.TagEnd(text, position + 2, stopAtBracket: false);
                    if (end < 0)
                    {
                        return false;
                    }

                    position = end + 1;
                }
                else
                {
                    end = Lex<T>.TagEnd(text, position + 1, stopAtBracket: false);
                    if (end < 0)
                    {
                        return false;
                    }

                    StartTag(text, position, end);
                    position = end + 1;
                }
            }

            return true;
        }

        /// <summary>A start tag from <paramref name="start"/> (its <c>&lt;</c>) to <paramref name="end"/> (its <c>&gt;</c>).</summary>
        private void StartTag(ReadOnlySpan<T> text, int start, int end)
        {
            var nameEnd = start + 1;
            while (nameEnd < end && !Lex<T>.IsSpace(text[nameEnd]) && !Lex<T>.Is(text[nameEnd], '/'))
            {
                nameEnd++;
            }

            var qualified = text[(start + 1)..nameEnd];
            var colon = qualified.LastIndexOf(T.CreateTruncating(':'));
            var local = qualified[(colon + 1)..];
            if (!Wanted(local))
            {
                return;
            }

            var name = Ascii(qualified);
            if (name is null)
            {
                return;
            }

            if (Lex<T>.Is(text[end - 1], '/'))
            {
                _elements.Add(new XmlBulkElement { QualifiedName = name });
                return;
            }

            var contentStart = end + 1;
            var contentLength = text[contentStart..].IndexOf(T.CreateTruncating('<'));
            var contentEnd = contentStart + contentLength;
            if (contentLength < 0 || !Lex<T>.At(text, contentEnd, "</") || !qualified.SequenceEqual(text.Slice(contentEnd + 2, Math.Min(qualified.Length, text.Length - contentEnd - 2))))
            {
                _elements.Add(new XmlBulkElement { QualifiedName = name });
                return;
            }

            // The end tag must be exactly this element's: the name, blanks, then '>'.
            var k = contentEnd + 2 + qualified.Length;
            while (k < text.Length && Lex<T>.IsSpace(text[k]))
            {
                k++;
            }

            if (k >= text.Length || !Lex<T>.Is(text[k], '>'))
            {
                _elements.Add(new XmlBulkElement { QualifiedName = name });
                return;
            }

            var content = text[contentStart..contentEnd];
            var element = kind == XmlBulkKind.Base64 ? Base64(content, name) : Numbers(content, name, _lastCount);
            _lastCount = element.Numbers?.Length ?? _lastCount;
            _elements.Add(element);
            if (element.Taken && contentLength > 0)
            {
                CopyUpTo(contentStart);
                KeepLineBreaks(content);
                _copiedUpTo = contentEnd;
            }
        }

        private bool Wanted(ReadOnlySpan<T> local)
        {
            foreach (var name in names)
            {
                if (Lex<T>.At(local, 0, name) && local.Length == name.Length)
                {
                    return true;
                }
            }

            return false;
        }

        private static string? Ascii(ReadOnlySpan<T> units)
        {
            Span<char> chars = units.Length <= 256 ? stackalloc char[units.Length] : new char[units.Length];
            for (var i = 0; i < units.Length; i++)
            {
                var unit = uint.CreateTruncating(units[i]);
                if (unit > 0x7F)
                {
                    return null;
                }

                chars[i] = (char)unit;
            }

            return chars.ToString();
        }

        /// <summary>Copies the file's text from where the last copy ended up to unit <paramref name="unit"/> into the reader's document.</summary>
        private void CopyUpTo(int unit)
        {
            if (_document is null)
            {
                _document = ArrayPool<byte>.Shared.Rent(length);
                file.AsSpan(0, bom).CopyTo(_document);
                _documentLength = bom;
            }

            var bytes = file.AsSpan(bom + (_copiedUpTo * Width), (unit - _copiedUpTo) * Width);
            bytes.CopyTo(_document.AsSpan(_documentLength));
            _documentLength += bytes.Length;
            _copiedUpTo = unit;
        }

        /// <summary>Writes the line breaks of taken content (CR and LF as they stand), so that line numbers do not move.</summary>
        private void KeepLineBreaks(ReadOnlySpan<T> content)
        {
            var output = MemoryMarshal.Cast<byte, T>(_document.AsSpan(_documentLength));
            var written = 0;
            T cr = T.CreateTruncating('\r'), lf = T.CreateTruncating('\n');
            var at = 0;
            while (at < content.Length)
            {
                var i = content[at..].IndexOfAny(cr, lf);
                if (i < 0)
                {
                    break;
                }

                output[written++] = content[at + i];
                at += i + 1;
            }

            _documentLength += written * Width;
        }

        private XmlBulkElement Base64(ReadOnlySpan<T> content, string name)
        {
            // The text without whitespace, as ASCII bytes, then one decode: the whitespace-tolerant decoders are far slower.
            var compact = ArrayPool<byte>.Shared.Rent(Math.Max(content.Length, 1));
            try
            {
                var n = Compact(content, compact);
                if (n < 0)
                {
                    return new XmlBulkElement { QualifiedName = name };
                }

                _bytes ??= ArrayPool<byte>.Shared.Rent(Math.Max((length / 4 * 3) + 3, 16));
                var target = _bytes.AsSpan(_bytesUsed);
                var status = System.Buffers.Text.Base64.DecodeFromUtf8(compact.AsSpan(0, n), target, out var consumed, out var written);
                if (status != OperationStatus.Done || consumed != n)
                {
                    return new XmlBulkElement { QualifiedName = name };
                }

                var element = new XmlBulkElement { QualifiedName = name, Taken = true, Bytes = _bytes.AsMemory(_bytesUsed, written) };
                _bytesUsed += written;
                return element;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(compact);
            }
        }

        /// <summary>The non-whitespace units of <paramref name="content"/> as ASCII bytes; -1 when one is not ASCII.</summary>
        private static int Compact(ReadOnlySpan<T> content, byte[] into)
        {
            if (typeof(T) == typeof(byte))
            {
                var bytes = MemoryMarshal.Cast<T, byte>(content);
                var n = 0;
                while (bytes.Length > 0)
                {
                    var run = bytes.IndexOfAny(XmlWhitespaceBytes);
                    var part = run < 0 ? bytes : bytes[..run];
                    part.CopyTo(into.AsSpan(n));
                    n += part.Length;
                    if (run < 0)
                    {
                        break;
                    }

                    bytes = bytes[(run + 1)..];
                }

                // Non-ASCII bytes are not base64 and fail the decode.
                return n;
            }
            else
            {
                var chars = MemoryMarshal.Cast<T, char>(content);
                var n = 0;
                while (chars.Length > 0)
                {
                    var run = chars.IndexOfAny(XmlWhitespaceChars);
                    var part = run < 0 ? chars : chars[..run];
                    if (System.Text.Ascii.FromUtf16(part, into.AsSpan(n), out var written) != OperationStatus.Done)
                    {
                        return -1;
                    }

                    n += written;
                    if (run < 0)
                    {
                        break;
                    }

                    chars = chars[(run + 1)..];
                }

                return n;
            }
        }

        private static XmlBulkElement Numbers(ReadOnlySpan<T> content, string name, int expected)
        {
            // Numbers are separated by whitespace: at most one per two units, and one more for an odd length.
            var most = (content.Length / 2) + 1;
            var pooled = !(expected > 0 && expected <= most);
            var values = pooled ? ArrayPool<double>.Shared.Rent(most) : GC.AllocateUninitializedArray<double>(expected);
            try
            {
                var count = 0;
                var k = 0;
                while (true)
                {
                    while (k < content.Length && IsSpace(content[k]))
                    {
                        k++;
                    }

                    if (k == content.Length)
                    {
                        break;
                    }

                    var start = k;
                    var unit = uint.CreateTruncating(content[k]);
                    var negative = unit == '-';
                    if (negative || unit == '+')
                    {
                        k++;
                    }

                    var digitStart = k;
                    long whole = 0;
                    uint digit;
                    while (k < content.Length && (digit = uint.CreateTruncating(content[k]) - '0') <= 9)
                    {
                        whole = (whole * 10) + digit;
                        k++;
                    }

                    double value;
                    if (k - digitStart is > 0 and <= 18 && (k == content.Length || IsSpace(content[k])))
                    {
                        value = negative ? -whole : whole;
                    }
                    else
                    {
                        while (k < content.Length && !IsSpace(content[k]))
                        {
                            k++;
                        }

                        if (k - start > MaxNumberToken || !TryParse(content[start..k], out value))
                        {
                            // The reader's own parse reports it, naming the digit.
                            return new XmlBulkElement { QualifiedName = name };
                        }
                    }

                    if (count == values.Length)
                    {
                        // More than the expected count: on in a pooled array big enough for any count.
                        var bigger = ArrayPool<double>.Shared.Rent(most);
                        values.CopyTo(bigger, 0);
                        if (pooled)
                        {
                            ArrayPool<double>.Shared.Return(values);
                        }

                        values = bigger;
                        pooled = true;
                    }

                    values[count++] = value;
                }

                var numbers = values;
                if (pooled || count != values.Length)
                {
                    numbers = GC.AllocateUninitializedArray<double>(count);
                    values.AsSpan(0, count).CopyTo(numbers);
                }

                return new XmlBulkElement { QualifiedName = name, Taken = true, Numbers = numbers };
            }
            finally
            {
                if (pooled)
                {
                    ArrayPool<double>.Shared.Return(values);
                }
            }
        }

        /// <summary>XML whitespace: space, tab, CR, LF.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool IsSpace(T unit)
        {
            var c = ulong.CreateTruncating(unit);
            return c <= ' ' && ((1UL << (int)c) & ((1UL << ' ') | (1UL << '\t') | (1UL << '\r') | (1UL << '\n'))) != 0;
        }

        /// <summary>
        /// A token that is not a plain integer, as <see cref="double"/> parses it, finite; only digits, signs, the
        /// decimal point and exponent letters are let through (the parser would also take blanks that XML forbids).
        /// </summary>
        private static bool TryParse(ReadOnlySpan<T> token, out double value)
        {
            value = 0;
            foreach (var unit in token)
            {
                var c = uint.CreateTruncating(unit);
                if (!(c - '0' <= 9 || c is '+' or '-' or '.' or 'e' or 'E'))
                {
                    return false;
                }
            }

            var parsed = typeof(T) == typeof(byte)
                ? double.TryParse(MemoryMarshal.Cast<T, byte>(token), NumberStyles.Float, CultureInfo.InvariantCulture, out value)
                : double.TryParse(MemoryMarshal.Cast<T, char>(token), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
            return parsed && double.IsFinite(value);
        }
    }

    private static readonly SearchValues<byte> XmlWhitespaceBytes = SearchValues.Create(" \t\r\n"u8);

    private static readonly SearchValues<char> XmlWhitespaceChars = SearchValues.Create(" \t\r\n");
}
