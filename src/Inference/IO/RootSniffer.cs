namespace HubertEcg.Inference.IO;

/// <summary>
/// Names the root element of an XML file from its first bytes without an <see cref="System.Xml.XmlReader"/>, for
/// the prologues ECG exports have: UTF-8 or 8-bit text (with or without a UTF-8 byte order mark) or UTF-16 LE with
/// its byte order mark; an XML declaration of version 1.0 naming UTF-8, ISO-8859-1, US-ASCII (or UTF-16 for UTF-16
/// text); whitespace, comments and processing instructions; a DOCTYPE with at most an external id (never followed);
/// then the root's start tag with ASCII names and attribute values without references. Whatever else it meets
/// (another encoding, an internal subset, a character outside ASCII, a construct an XML reader would reject, the end
/// of the bytes) it does not guess at: it answers "not sure", and the caller asks an XML reader.
/// </summary>
internal static class RootSniffer
{
    private const string XmlNamespace = "http://www.w3.org/XML/1998/namespace";
    private const string XmlnsNamespace = "http://www.w3.org/2000/xmlns/";

    /// <summary>
    /// The root element's local name and namespace; <paramref name="sure"/> is false when the bytes are not of the
    /// plain kind read here (the result is then null and means nothing).
    /// </summary>
    public static (string LocalName, string Namespace)? Sniff(ReadOnlySpan<byte> head, out bool sure)
    {
        var text = Text.Of(head);
        sure = false;
        if (text.Width == 0)
        {
            return null;
        }

        var at = 0;
        if (text.At(at, "<?xml") && text.IsSpace(at + 5))
        {
            if (!Declaration(text, ref at))
            {
                return null;
            }
        }

        var doctype = false;
        while (true)
        {
            at = text.SkipSpace(at);
            if (text.At(at, "<!--"))
            {
                // No "--" inside, and none right before the end.
                var dashes = text.Find(at + 4, "--");
                if (dashes < 0 || !text.Is(dashes + 2, '>'))
                {
                    return null;
                }

                at = dashes + 3;
            }
            else if (text.At(at, "<?"))
            {
                var nameEnd = text.NameEnd(at + 2, allowColon: false);
                if (nameEnd == at + 2 || (nameEnd - at - 2 == 3 && text.EqualsIgnoreCase(at + 2, "xml")))
                {
                    return null;
                }

                if (text.At(nameEnd, "?>"))
                {
                    at = nameEnd + 2;
                    continue;
                }

                var end = text.IsSpace(nameEnd) ? text.Find(nameEnd, "?>") : -1;
                if (end < 0)
                {
                    return null;
                }

                at = end + 2;
            }
            else if (text.At(at, "<!DOCTYPE"))
            {
                if (doctype || !DocType(text, ref at))
                {
                    return null;
                }

                doctype = true;
            }
            else if (text.Is(at, '<') && text.IsNameStart(at + 1))
            {
                var root = StartTag(text, at);
                sure = root is not null;
                return root;
            }
            else
            {
                return null;
            }
        }
    }

    /// <summary><c>&lt;?xml version="1.0" [encoding="..."] [standalone="yes|no"] ?&gt;</c> with an encoding this text can be in.</summary>
    private static bool Declaration(Text text, ref int at)
    {
        var k = at + 5;
        if (!Pseudo(text, ref k, "version", out var versionStart, out var versionEnd) || !text.Equals(versionStart, versionEnd, "1.0"))
        {
            return false;
        }

        var encodingStart = -1;
        var encodingEnd = -1;
        var save = k;
        if (!Pseudo(text, ref k, "encoding", out encodingStart, out encodingEnd))
        {
            k = save;
            encodingStart = -1;
        }

        save = k;
        if (Pseudo(text, ref k, "standalone", out var standaloneStart, out var standaloneEnd))
        {
            if (!text.Equals(standaloneStart, standaloneEnd, "yes") && !text.Equals(standaloneStart, standaloneEnd, "no"))
            {
                return false;
            }
        }
        else
        {
            k = save;
        }

        k = text.SkipSpace(k);
        if (!text.At(k, "?>"))
        {
            return false;
        }

        if (encodingStart >= 0)
        {
            var known = text.Width == 2
                ? text.EqualsIgnoreCase(encodingStart, encodingEnd, "utf-16")
                : text.EqualsIgnoreCase(encodingStart, encodingEnd, "utf-8")
                  || (!text.Utf8Bom && (text.EqualsIgnoreCase(encodingStart, encodingEnd, "iso-8859-1") || text.EqualsIgnoreCase(encodingStart, encodingEnd, "us-ascii")));
            if (!known)
            {
                return false;
            }
        }

        at = k + 2;
        return true;
    }

    /// <summary>Whitespace, <paramref name="name"/>, <c>=</c>, a quoted value (its bounds out); false when not there.</summary>
    private static bool Pseudo(Text text, ref int at, string name, out int valueStart, out int valueEnd)
    {
        valueStart = valueEnd = -1;
        if (!text.IsSpace(at))
        {
            return false;
        }

        var k = text.SkipSpace(at);
        if (!text.At(k, name))
        {
            return false;
        }

        k = text.SkipSpace(k + name.Length);
        if (!text.Is(k, '='))
        {
            return false;
        }

        k = text.SkipSpace(k + 1);
        if (!Quoted(text, k, out valueStart, out valueEnd))
        {
            return false;
        }

        at = valueEnd + 1;
        return true;
    }

    /// <summary>
    /// A literal in single or double quotes at <paramref name="at"/> (its content's bounds out) of printable ASCII and
    /// XML whitespace, without <c>&lt;</c> or <c>&amp;</c>.
    /// </summary>
    private static bool Quoted(Text text, int at, out int start, out int end)
    {
        start = end = -1;
        if (!text.Is(at, '"') && !text.Is(at, '\''))
        {
            return false;
        }

        var quote = text[at];
        for (var k = at + 1; k < text.Length; k++)
        {
            var unit = text[k];
            if (unit == quote)
            {
                start = at + 1;
                end = k;
                return true;
            }

            if (unit is '<' or '&' or (< 0x20 and not ('\t' or '\r' or '\n')) or >= 0x7F)
            {
                return false;
            }
        }

        return false;
    }

    /// <summary><c>&lt;!DOCTYPE name [SYSTEM "..." | PUBLIC "..." "..."] &gt;</c>: no internal subset.</summary>
    private static bool DocType(Text text, ref int at)
    {
        var k = at + 9;
        if (!text.IsSpace(k))
        {
            return false;
        }

        k = text.SkipSpace(k);
        var nameEnd = text.NameEnd(k, allowColon: true);
        if (nameEnd == k)
        {
            return false;
        }

        k = text.SkipSpace(nameEnd);
        if (text.At(k, "SYSTEM") || text.At(k, "PUBLIC"))
        {
            var isPublic = text.At(k, "PUBLIC");
            k += 6;
            if (!text.IsSpace(k))
            {
                return false;
            }

            k = text.SkipSpace(k);
            if (!Quoted(text, k, out var firstStart, out var firstEnd))
            {
                return false;
            }

            if (isPublic && !text.PublicId(firstStart, firstEnd))
            {
                return false;
            }

            k = firstEnd + 1;
            if (isPublic)
            {
                if (!text.IsSpace(k))
                {
                    return false;
                }

                k = text.SkipSpace(k);
                if (!Quoted(text, k, out _, out var systemEnd))
                {
                    return false;
                }

                k = systemEnd + 1;
            }

            k = text.SkipSpace(k);
        }

        if (!text.Is(k, '>'))
        {
            return false;
        }

        at = k + 1;
        return true;
    }

    /// <summary>The root's start tag at <paramref name="at"/>: its local name and namespace, or null when not sure.</summary>
    private static (string LocalName, string Namespace)? StartTag(Text text, int at)
    {
        var nameStart = at + 1;
        var nameEnd = text.NameEnd(nameStart, allowColon: true);
        if (!text.QualifiedName(nameStart, nameEnd, out var colon))
        {
            return null;
        }

        var prefix = colon < 0 ? null : text.Ascii(nameStart, colon);
        var local = text.Ascii(colon < 0 ? nameStart : colon + 1, nameEnd);
        if (prefix is "xml" or "xmlns")
        {
            return null;
        }

        string? defaultNamespace = null;
        var prefixes = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var prefixedLocals = new HashSet<string>(StringComparer.Ordinal);
        var usedPrefixes = new List<string>();
        var k = nameEnd;
        while (true)
        {
            var spaced = text.IsSpace(k);
            k = text.SkipSpace(k);
            if (text.Is(k, '>') || text.At(k, "/>"))
            {
                break;
            }

            if (!spaced)
            {
                return null;
            }

            var attributeEnd = text.NameEnd(k, allowColon: true);
            if (!text.QualifiedName(k, attributeEnd, out var attributeColon))
            {
                return null;
            }

            var name = text.Ascii(k, attributeEnd);
            if (!names.Add(name))
            {
                return null;
            }

            k = text.SkipSpace(attributeEnd);
            if (!text.Is(k, '='))
            {
                return null;
            }

            k = text.SkipSpace(k + 1);
            if (!Quoted(text, k, out var valueStart, out var valueEnd))
            {
                return null;
            }

            k = valueEnd + 1;
            var value = text.Ascii(valueStart, valueEnd);
            if (value is XmlNamespace or XmlnsNamespace || (name.StartsWith("xmlns", StringComparison.Ordinal) && value.AsSpan().IndexOfAny("\t\r\n") >= 0))
            {
                // Reserved names, or a namespace the reader would normalise.
                return null;
            }

            if (attributeColon < 0)
            {
                if (name == "xmlns")
                {
                    defaultNamespace = value;
                }

                continue;
            }

            var attributePrefix = name[..name.IndexOf(':', StringComparison.Ordinal)];
            var attributeLocal = name[(attributePrefix.Length + 1)..];
            if (attributePrefix == "xmlns")
            {
                if (value.Length == 0 || attributeLocal is "xml" or "xmlns")
                {
                    return null;
                }

                prefixes[attributeLocal] = value;
            }
            else if (attributePrefix != "xml")
            {
                if (!prefixedLocals.Add(attributeLocal))
                {
                    return null;
                }

                usedPrefixes.Add(attributePrefix);
            }
        }

        foreach (var used in usedPrefixes)
        {
            if (!prefixes.ContainsKey(used))
            {
                return null;
            }
        }

        if (prefix is not null)
        {
            return prefixes.TryGetValue(prefix, out var bound) ? (local, bound) : null;
        }

        return (local, defaultNamespace ?? "");
    }

    /// <summary>The head as units: bytes, or UTF-16 LE code units after a byte order mark; Width 0 when neither.</summary>
    private readonly ref struct Text
    {
        private readonly ReadOnlySpan<byte> _bytes;

        private Text(ReadOnlySpan<byte> bytes, int width, bool utf8Bom)
        {
            _bytes = bytes;
            Width = width;
            Utf8Bom = utf8Bom;
            Length = width == 0 ? 0 : bytes.Length / width;
        }

        public int Width { get; }

        public bool Utf8Bom { get; }

        public int Length { get; }

        /// <summary>Unit <paramref name="i"/>; 0 past the end (which no test accepts).</summary>
        public int this[int i] =>
            (uint)i >= (uint)Length ? 0
            : Width == 1 ? _bytes[i]
            : _bytes[2 * i] | (_bytes[(2 * i) + 1] << 8);

        public static Text Of(ReadOnlySpan<byte> head)
        {
            if (head.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            {
                return new Text(head[3..], 1, true);
            }

            if (head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]))
            {
                // FF FE 00 00 is UTF-32 LE's mark.
                return head.Length >= 4 && head[2] == 0 && head[3] == 0 ? default : new Text(head[2..], 2, false);
            }

            // Other marks, UTF-16 or UTF-32 without a mark (a zero byte among the first two), EBCDIC: not here.
            return head.Length < 2 || head[0] != '<' || head[1] == 0 ? default : new Text(head, 1, false);
        }

        public bool Is(int i, char c) => this[i] == c;

        public bool IsSpace(int i) => this[i] is ' ' or '\t' or '\r' or '\n';

        public int SkipSpace(int i)
        {
            while (IsSpace(i))
            {
                i++;
            }

            return i;
        }

        public bool At(int i, string s)
        {
            for (var k = 0; k < s.Length; k++)
            {
                if (this[i + k] != s[k])
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>Where <paramref name="s"/> next starts from <paramref name="from"/>, or -1; -1 too at a unit that is not printable ASCII or XML whitespace.</summary>
        public int Find(int from, string s)
        {
            for (var i = from; i + s.Length <= Length; i++)
            {
                var unit = this[i];
                if (unit is (< 0x20 and not ('\t' or '\r' or '\n')) or >= 0x7F)
                {
                    return -1;
                }

                if (At(i, s))
                {
                    return i;
                }
            }

            return -1;
        }

        public bool IsNameStart(int i) => this[i] is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or '_';

        /// <summary>The end of the ASCII name from <paramref name="i"/> (letters, digits, <c>. - _</c>, and colons if allowed).</summary>
        public int NameEnd(int i, bool allowColon)
        {
            if (!IsNameStart(i))
            {
                return i;
            }

            var k = i + 1;
            while (this[k] is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-' or '_' || (allowColon && this[k] == ':'))
            {
                k++;
            }

            return k;
        }

        /// <summary>A name with at most one colon, not first or last, each part starting as a name starts; the colon's index out (-1 when none).</summary>
        public bool QualifiedName(int start, int end, out int colon)
        {
            colon = -1;
            if (end <= start)
            {
                return false;
            }

            for (var k = start; k < end; k++)
            {
                if (this[k] == ':')
                {
                    if (colon >= 0 || k == start || k == end - 1 || !IsNameStart(k + 1))
                    {
                        return false;
                    }

                    colon = k;
                }
            }

            return true;
        }

        public bool Equals(int start, int end, string s) => end - start == s.Length && At(start, s);

        public bool EqualsIgnoreCase(int start, int end, string s)
        {
            if (end - start != s.Length)
            {
                return false;
            }

            for (var k = 0; k < s.Length; k++)
            {
                if (char.ToLowerInvariant((char)this[start + k]) != s[k])
                {
                    return false;
                }
            }

            return true;
        }

        public bool EqualsIgnoreCase(int start, string s) => EqualsIgnoreCase(start, start + s.Length, s);

        /// <summary>A public id literal's characters (XML's PubidChar).</summary>
        public bool PublicId(int start, int end)
        {
            for (var k = start; k < end; k++)
            {
                var c = this[k];
                if (!(c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or ' ' or '\r' or '\n'
                      || "-'()+,./:=?;!*#@$_%".Contains((char)c, StringComparison.Ordinal)))
                {
                    return false;
                }
            }

            return true;
        }

        public string Ascii(int start, int end)
        {
            var chars = new char[end - start];
            for (var k = 0; k < chars.Length; k++)
            {
                chars[k] = (char)this[start + k];
            }

            return new string(chars);
        }
    }
}
