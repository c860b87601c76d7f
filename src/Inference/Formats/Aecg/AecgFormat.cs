using System.Buffers;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Xml;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;

namespace HubertEcg.Inference.Formats.Aecg;

/// <summary>
/// HL7 v3 annotated ECGs (<c>AnnotatedECG</c> in namespace <c>urn:hl7-org:v3</c>, the FDA's aECG, <c>.xml</c>). The
/// <c>RHYTHM</c> series' sequence set is scored: its <c>TIME_ABSOLUTE</c> (or <c>TIME_RELATIVE</c>) sequence gives the
/// sample interval as its increment, and each <c>SLIST_PQ</c> lead sequence (<c>MDC_ECG_LEAD_*</c>) gives
/// <c>origin + scale x digit</c> per sample. Read in one streaming pass through <see cref="SafeXml"/> (no DTD, no
/// entities); representative beats and annotations are skipped, and nothing about the subject is read.
/// </summary>
public sealed class AecgFormat : IRecordFormat
{
    public const string Suffix = ".xml";

    public const string Namespace = "urn:hl7-org:v3";

    public const string RootName = "AnnotatedECG";

    /// <summary>Largest file read: a 10 s, 12-lead aECG is ~0.5 MB; an hour of 8 leads at 500 Hz ~100 MB.</summary>
    public const long MaxFileBytes = 128L << 20;

    public string Name => "aecg";

    public IReadOnlyList<string> Suffixes { get; } = [Suffix];

    public string PrimarySuffix => Suffix;

    public bool Reads(IReadOnlySet<string> suffixes) => suffixes.Count == 1 && suffixes.Contains(Suffix);

    public bool Recognises(ReadOnlySpan<byte> head) =>
        SafeXml.RootElement(head) is ({ } name, { } ns) && name == RootName && ns == Namespace;

    public EcgRecord Read(IRecordFileSource files, string recordName, string recordId)
    {
        ArgumentNullException.ThrowIfNull(files);
        var fileName = recordName + Suffix;
        if (!files.Exists(fileName))
        {
            throw new EcgFormatException(recordId, $"file {fileName} is missing");
        }

        var length = files.Length(fileName);
        if (length > MaxFileBytes)
        {
            throw new EcgFormatException(recordId, $"file {fileName} is {length} bytes, more than the {MaxFileBytes} allowed");
        }

        try
        {
            using var stream = files.Open(fileName);
            return Load(stream, length, recordId);
        }
        catch (IOException e)
        {
            throw new EcgFormatException(recordId, $"file {fileName} cannot be read: {e.Message}", e);
        }
    }

    /// <summary>Reads an aECG document from <paramref name="stream"/>.</summary>
    public static EcgRecord Load(Stream stream, string recordId)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Load(stream, -1, recordId);
    }

    private static EcgRecord Load(Stream stream, long expectedLength, string recordId)
    {
        var (file, length, pooled) = XmlRecordFile.ReadAll(stream, expectedLength, MaxFileBytes, recordId);
        AecgDocument document;
        try
        {
            // The digits are taken out and parsed from the bytes; the reader parses the rest.
            using var scan = XmlBulkScanner.Scan(file, length, DigitsElements, XmlBulkKind.Numbers);
            using var documentStream = scan.OpenDocument();
            using var reader = SafeXml.Open(documentStream, MaxFileBytes);
            document = AecgDocument.Parse(reader, recordId, scan);
        }
        catch (XmlException e)
        {
            // The position only: an XML error message may quote the document's text.
            throw new EcgFormatException(recordId, $"not well-formed XML (line {e.LineNumber}, position {e.LinePosition})", e);
        }
        finally
        {
            if (pooled)
            {
                ArrayPool<byte>.Shared.Return(file);
            }
        }

        return document.ToRecord(recordId);
    }

    private static readonly HashSet<string> DigitsElements = new(StringComparer.Ordinal) { "digits" };
}

/// <summary>What one streaming pass over an aECG keeps: each series' code, device, filters and sequence sets.</summary>
internal sealed class AecgDocument
{
    private const int MaxSeries = 1000;
    private const int MaxSequences = 10_000;

    /// <summary>Longest digit token: an integer or decimal needs far fewer characters.</summary>
    private const int MaxToken = 32;

    private readonly List<Series> _series = [];

    /// <summary>
    /// One pass over <paramref name="reader"/>; the <c>digits</c> elements <paramref name="scan"/> took come parsed
    /// from it, the others are read here.
    /// </summary>
    public static AecgDocument Parse(XmlReader reader, string recordId, XmlBulkScan scan)
    {
        var document = new AecgDocument();
        var path = new List<string>();
        var open = new Stack<(int Depth, Series Series)>();
        Sequence? sequence = null;
        var sequenceDepth = -1;
        var sequences = 0;
        var expected = 0;
        var rootSeen = false;
        while (!reader.EOF)
        {
            if (reader.NodeType == XmlNodeType.EndElement)
            {
                path.RemoveAt(path.Count - 1);
                if (open.Count > 0 && open.Peek().Depth == path.Count)
                {
                    open.Pop();
                }

                if (sequence is not null && path.Count == sequenceDepth)
                {
                    sequence = null;
                }

                reader.Read();
                continue;
            }

            if (reader.NodeType != XmlNodeType.Element)
            {
                reader.Read();
                continue;
            }

            var name = reader.LocalName;
            if (!rootSeen)
            {
                rootSeen = true;
                if (name != AecgFormat.RootName || reader.NamespaceURI != AecgFormat.Namespace)
                {
                    throw new EcgFormatException(recordId, $"the root element is '{Short(name)}' in namespace '{Short(reader.NamespaceURI)}', not an HL7 AnnotatedECG ({AecgFormat.Namespace})");
                }
            }

            // Every digits element, wherever it stands, is the scan's next one.
            var bulk = name == "digits" ? scan.Next(reader.Name, recordId) : null;
            var parent = path.Count > 0 ? path[^1] : string.Empty;
            var series = open.Count > 0 ? open.Peek().Series : null;
            switch (name)
            {
                case "series" or "derivedSeries":
                    if (document._series.Count >= MaxSeries)
                    {
                        throw new EcgFormatException(recordId, $"more than {MaxSeries} series");
                    }

                    series = new Series(name == "derivedSeries");
                    document._series.Add(series);
                    if (!reader.IsEmptyElement)
                    {
                        open.Push((path.Count, series));
                    }

                    break;
                case "code" when series is not null && parent is "series" or "derivedSeries":
                    series!.Code ??= reader.GetAttribute("code");
                    break;
                case "code" when sequence is not null && parent == "sequence":
                    sequence.Code ??= reader.GetAttribute("code");
                    break;
                case "code" when series is not null && path.Contains("controlVariable"):
                    series.ControlCode(reader.GetAttribute("code"));
                    break;
                case "value" when series is not null && sequence is null && parent == "controlVariable":
                    series.ControlValue(Number(reader.GetAttribute("value")), reader.GetAttribute("unit"));
                    break;
                case "sequenceSet" when series is not null:
                    series.Sets.Add([]);
                    break;
                case "sequence" when series is { Sets.Count: > 0 } && path.Contains("sequenceSet"):
                    if (++sequences > MaxSequences)
                    {
                        throw new EcgFormatException(recordId, $"more than {MaxSequences} sequences");
                    }

                    sequence = new Sequence();
                    series.Sets[^1].Add(sequence);
                    sequenceDepth = path.Count;
                    break;
                case "value" when sequence is not null && parent == "sequence":
                    var type = reader.GetAttribute("type", "http://www.w3.org/2001/XMLSchema-instance") ?? string.Empty;
                    sequence.Type = type[(type.IndexOf(':', StringComparison.Ordinal) + 1)..];
                    break;
                case "head" or "increment" or "origin" or "scale" when sequence is not null && parent == "value":
                    var quantity = (Number(reader.GetAttribute("value")), reader.GetAttribute("unit"));
                    switch (name)
                    {
                        case "increment":
                            sequence.Increment = quantity;
                            break;
                        case "origin":
                            sequence.Origin = quantity;
                            break;
                        case "scale":
                            sequence.Scale = quantity;
                            break;
                    }

                    break;
                case "digits" when sequence is not null && parent == "value":
                    if (sequence.Digits is not null)
                    {
                        throw new EcgFormatException(recordId, $"sequence {Short(sequence.Code)} has two digits elements");
                    }

                    if (bulk is { Taken: true, Numbers: { } numbers })
                    {
                        // Its content (line breaks at most) was left out of what the reader reads.
                        sequence.Digits = numbers;
                        reader.Skip();
                    }
                    else
                    {
                        sequence.Digits = Digits(reader, recordId, sequence.Code, expected);
                    }

                    expected = sequence.Digits.Length;
                    continue;
                case "manufacturerModelName" when series is not null && path.Contains("author"):
                    var model = reader.ReadElementContentAsString();
                    series.Model ??= Clean(model);
                    continue;
                case "name" when series is not null && parent == "manufacturerOrganization" && path.Contains("author"):
                    var manufacturer = reader.ReadElementContentAsString();
                    series.Manufacturer ??= Clean(manufacturer);
                    continue;
            }

            if (!reader.IsEmptyElement)
            {
                path.Add(name);
            }

            reader.Read();
        }

        if (!rootSeen)
        {
            throw new EcgFormatException(recordId, "the document has no root element");
        }

        scan.CheckAllConsumed(recordId);
        return document;
    }

    public EcgRecord ToRecord(string recordId)
    {
        var warnings = new List<string>();
        var rhythm = _series.FirstOrDefault(s => !s.Derived && string.Equals(s.Code, "RHYTHM", StringComparison.Ordinal) && s.Sets.Count > 0);
        if (rhythm is null)
        {
            rhythm = _series.FirstOrDefault(s => !s.Derived && s.Sets.Count > 0 && s.Code is not ("REPRESENTATIVE_BEAT" or "MEDIAN_BEAT"))
                ?? throw new EcgFormatException(recordId, "no RHYTHM series with a sequence set");
            warnings.Add($"no series is coded RHYTHM: read the first series (coded '{Short(rhythm.Code)}')");
        }

        var set = rhythm.Sets[0];
        var time = set.FirstOrDefault(s => s.Code is "TIME_ABSOLUTE" or "TIME_RELATIVE")
            ?? throw new EcgFormatException(recordId, "the rhythm sequence set has no TIME_ABSOLUTE or TIME_RELATIVE sequence");
        if (time.Increment is not ({ } increment, var incrementUnit))
        {
            throw new EcgFormatException(recordId, $"the {time.Code} sequence states no increment");
        }

        var seconds = incrementUnit?.Trim() switch
        {
            "s" or null or "" => 1.0,
            "ms" => 1e-3,
            "us" => 1e-6,
            _ => throw new EcgFormatException(recordId, $"time increment unit '{Short(incrementUnit)}' is not s, ms or us"),
        };
        var rate = 1.0 / (increment * seconds);
        if (!double.IsFinite(rate) || rate <= 0 || rate > 1e6)
        {
            throw new EcgFormatException(recordId, $"time increment {increment.ToString(CultureInfo.InvariantCulture)} {incrementUnit} gives no usable sampling rate");
        }

        var nearest = Math.Round(rate);
        if (Math.Abs(rate - nearest) <= 1e-9 * rate)
        {
            rate = nearest;
        }

        var names = new List<string>();
        var leads = new List<double[]>();
        var sourceUnits = new List<string>();
        foreach (var sequence in set)
        {
            if (sequence == time || sequence.Code is "TIME_ABSOLUTE" or "TIME_RELATIVE")
            {
                continue;
            }

            if (sequence.Type != "SLIST_PQ")
            {
                throw new EcgFormatException(recordId, $"sequence {Short(sequence.Code)} is of type '{Short(sequence.Type)}', not SLIST_PQ");
            }

            var code = sequence.Code ?? throw new EcgFormatException(recordId, $"sequence {names.Count + 1} has no code");
            var digits = sequence.Digits ?? throw new EcgFormatException(recordId, $"sequence {Short(code)} has no digits");
            var (originValue, originUnit) = sequence.Origin is ({ } ov, var ou) ? (ov, ou) : (0.0, sequence.Scale?.Unit);
            if (sequence.Scale is not ({ } scaleValue, var scaleUnit))
            {
                throw new EcgFormatException(recordId, $"sequence {Short(code)} states no scale");
            }

            var scaleToMv = Units.ToMillivolts(scaleUnit)
                ?? throw new EcgFormatException(recordId, $"sequence {Short(code)} is scaled in '{Short(scaleUnit)}', not a voltage");
            var originToMv = Units.ToMillivolts(originUnit)
                ?? throw new EcgFormatException(recordId, $"sequence {Short(code)} has its origin in '{Short(originUnit)}', not a voltage");
            if (leads.Count > 0 && digits.Length != leads[0].Length)
            {
                throw new EcgFormatException(recordId, $"sequence {Short(code)} has {digits.Length} samples, {Short(names[0])} has {leads[0].Length}");
            }

            var values = digits;
            if (originToMv == scaleToMv)
            {
                // (origin + scale x digit) in the shared unit, then mV: the same arithmetic as DICOM's raw x sensitivity + baseline.
                Affine(values, originValue, scaleValue, scaleToMv);
            }
            else
            {
                Affine(values, originValue * originToMv, scaleValue * scaleToMv, 1.0);
            }

            names.Add(LeadCodes.FromCode(code) ?? Short(code));
            leads.Add(values);
            sourceUnits.Add(scaleUnit ?? string.Empty);
        }

        if (leads.Count == 0)
        {
            throw new EcgFormatException(recordId, "the rhythm sequence set holds no lead sequences");
        }

        if (leads[0].Length == 0)
        {
            throw new EcgFormatException(recordId, "the rhythm sequences hold no samples");
        }

        var device = string.Join(' ', new[] { rhythm.Manufacturer, rhythm.Model }.Where(t => t is not null));
        return new EcgRecord
        {
            Format = "aecg",
            Container = $"HL7 aECG, {(rhythm.Code == "RHYTHM" ? "RHYTHM" : "first")} series, {leads.Count} leads",
            Signal = new EcgSignal(recordId, rate, names, leads.ToArray()),
            Units = Enumerable.Repeat("mV", leads.Count).ToList(),
            SourceUnits = sourceUnits,
            Warnings = warnings,
            Description = new RecordDescription(Device: device.Length == 0 ? null : device, Filters: rhythm.FilterText()),
        };
    }

    /// <summary>
    /// values[t] = (origin + scale x values[t]) x unit, each operation rounded on its own (no fused multiply-add, and
    /// a product by 1.0 left out as it is exact), several samples a step where the hardware allows.
    /// </summary>
    private static void Affine(Span<double> values, double origin, double scale, double unit)
    {
        var t = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var o = new Vector<double>(origin);
            var s = new Vector<double>(scale);
            var u = new Vector<double>(unit);
            for (; t + Vector<double>.Count <= values.Length; t += Vector<double>.Count)
            {
                var x = o + (s * new Vector<double>(values[t..]));
                (unit == 1.0 ? x : x * u).CopyTo(values[t..]);
            }
        }

        for (; t < values.Length; t++)
        {
            var x = origin + (scale * values[t]);
            values[t] = unit == 1.0 ? x : x * unit;
        }
    }

    /// <summary>
    /// The whitespace-separated integers (decimals accepted) of the <c>digits</c> element the reader is on, as doubles,
    /// parsed from the text in chunks (no string of the whole element); the reader ends after the element. A token that
    /// is not a number, or an element inside, fails the read. <paramref name="expected"/> sizes the array (the
    /// previous lead's count).
    /// </summary>
    private static double[] Digits(XmlReader reader, string recordId, string? code, int expected)
    {
        if (reader.IsEmptyElement)
        {
            reader.Read();
            return [];
        }

        // Grown in a pooled buffer, copied out at its exact length: no garbage from growing.
        var values = ArrayPool<double>.Shared.Rent(Math.Max(expected, 1024));
        var count = 0;
        var depth = reader.Depth;
        var chunk = ArrayPool<char>.Shared.Rent(8192);
        Span<char> token = stackalloc char[MaxToken];
        var length = 0;
        long accumulated = 0;
        var negative = false;
        var integer = true;
        var digits = 0;
        try
        {
            reader.Read();
            while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
            {
                if (reader.NodeType is not (XmlNodeType.Text or XmlNodeType.Whitespace or XmlNodeType.SignificantWhitespace or XmlNodeType.CDATA))
                {
                    throw new EcgFormatException(recordId, $"sequence {Short(code)} digits hold {reader.NodeType} content");
                }

                var text = reader.CanReadValueChunk ? null : reader.Value;
                var offset = 0;
                while (true)
                {
                    int n;
                    if (text is null)
                    {
                        n = reader.ReadValueChunk(chunk, 0, chunk.Length);
                    }
                    else
                    {
                        n = Math.Min(chunk.Length, text.Length - offset);
                        text.CopyTo(offset, chunk, 0, n);
                        offset += n;
                    }

                    if (n == 0)
                    {
                        break;
                    }

                    var span = chunk.AsSpan(0, n);
                    var k = 0;
                    while (k < span.Length)
                    {
                        // Integers are accumulated as they are scanned; any other token is parsed whole at its end.
                        var ch = span[k];
                        if (ch is ' ' or '\n' or '\r' or '\t')
                        {
                            if (length > 0)
                            {
                                if (count == values.Length)
                                {
                                    values = Grow(values);
                                }

                                values[count] = integer && digits is > 0 and <= 18 ? (negative ? -accumulated : accumulated) : Parse(token[..length], recordId, code, count);
                                count++;
                                length = 0;
                                accumulated = 0;
                                negative = false;
                                integer = true;
                                digits = 0;
                            }

                            k++;
                            continue;
                        }

                        if (length == 0 && integer && k + MaxToken < span.Length)
                        {
                            // A whole token inside the chunk: scanned in place, copied out only when it is not an integer.
                            var end = k;
                            if (ch is '-' or '+')
                            {
                                end++;
                            }

                            var digitStart = end;
                            long whole = 0;
                            uint d;
                            while (end < span.Length && (d = (uint)(span[end] - '0')) <= 9)
                            {
                                whole = (whole * 10) + d;
                                end++;
                            }

                            var run = end - digitStart;
                            if (run is > 0 and <= 18 && end < span.Length && span[end] is ' ' or '\n' or '\r' or '\t')
                            {
                                if (count == values.Length)
                                {
                                    values = Grow(values);
                                }

                                values[count++] = ch == '-' ? -whole : whole;
                                k = end;
                                continue;
                            }
                        }

                        if (length == MaxToken)
                        {
                            throw new EcgFormatException(recordId, $"sequence {Short(code)} digit {count + 1} is not a number");
                        }

                        token[length++] = ch;
                        var digit = ch - '0';
                        if ((uint)digit <= 9)
                        {
                            accumulated = (accumulated * 10) + digit;
                            digits++;
                        }
                        else if (length == 1 && ch is '-' or '+')
                        {
                            negative = ch == '-';
                        }
                        else
                        {
                            integer = false;
                        }

                        k++;
                    }
                }

                if (length > 0)
                {
                    if (count == values.Length)
                    {
                        values = Grow(values);
                    }

                    values[count] = integer && digits is > 0 and <= 18 ? (negative ? -accumulated : accumulated) : Parse(token[..length], recordId, code, count);
                    count++;
                    length = 0;
                    accumulated = 0;
                    negative = false;
                    integer = true;
                    digits = 0;
                }

                reader.Read();
            }

            reader.Read();
            return values.AsSpan(0, count).ToArray();
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chunk);
            ArrayPool<double>.Shared.Return(values);
        }
    }

    /// <summary>A pooled array twice as long holding <paramref name="values"/>; the old one goes back to the pool.</summary>
    private static double[] Grow(double[] values)
    {
        var bigger = ArrayPool<double>.Shared.Rent(values.Length * 2);
        values.CopyTo(bigger, 0);
        ArrayPool<double>.Shared.Return(values);
        return bigger;
    }

    private static double Parse(ReadOnlySpan<char> token, string recordId, string? code, int index) =>
        (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
            ? value
            : throw new EcgFormatException(recordId, $"sequence {Short(code)} digit {index + 1} is not a number");

    private static double? Number(string? text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value : null;

    private static string? Clean(string text)
    {
        var trimmed = Short(text.Trim());
        return trimmed.Length == 0 ? null : trimmed;
    }

    /// <summary>Text from the file as shown in a reason: printable ASCII, at most 64 characters.</summary>
    internal static string Short(string? text)
    {
        if (text is null)
        {
            return string.Empty;
        }

        var builder = new StringBuilder(Math.Min(text.Length, 64));
        foreach (var ch in text.AsSpan(0, Math.Min(text.Length, 64)))
        {
            builder.Append(ch is >= ' ' and <= '~' ? ch : '?');
        }

        return builder.ToString();
    }

    private sealed class Series(bool derived)
    {
        private string? _filter;
        private string? _control;

        public bool Derived { get; } = derived;

        public string? Code { get; set; }

        public string? Model { get; set; }

        public string? Manufacturer { get; set; }

        public List<List<Sequence>> Sets { get; } = [];

        private double? LowPass { get; set; }

        private double? HighPass { get; set; }

        private double? Notch { get; set; }

        public void ControlCode(string? code)
        {
            switch (code)
            {
                case "MDC_ECG_CTL_VBL_ATTR_FILTER_LOW_PASS" or "MDC_ECG_CTL_VBL_ATTR_FILTER_HIGH_PASS" or "MDC_ECG_CTL_VBL_ATTR_FILTER_NOTCH":
                    _filter = code;
                    _control = null;
                    break;
                default:
                    _control = code;
                    break;
            }
        }

        public void ControlValue(double? value, string? unit)
        {
            if (value is not { } hz || unit != "Hz")
            {
                return;
            }

            switch (_filter, _control)
            {
                case ("MDC_ECG_CTL_VBL_ATTR_FILTER_LOW_PASS", "MDC_ECG_CTL_VBL_ATTR_FILTER_CUTOFF_FREQ"):
                    LowPass ??= hz;
                    break;
                case ("MDC_ECG_CTL_VBL_ATTR_FILTER_HIGH_PASS", "MDC_ECG_CTL_VBL_ATTR_FILTER_CUTOFF_FREQ"):
                    HighPass ??= hz;
                    break;
                case ("MDC_ECG_CTL_VBL_ATTR_FILTER_NOTCH", "MDC_ECG_CTL_VBL_ATTR_FILTER_NOTCH_FREQ"):
                    Notch ??= hz;
                    break;
            }
        }

        /// <summary>"0.05-150 Hz, notch 60 Hz", or what part of it the file states; null when it states none.</summary>
        public string? FilterText()
        {
            static string Hz(double v) => v.ToString(CultureInfo.InvariantCulture);

            var parts = new List<string>();
            if (HighPass is { } high && LowPass is { } low)
            {
                parts.Add($"{Hz(high)}-{Hz(low)} Hz");
            }
            else if (LowPass is { } lowOnly)
            {
                parts.Add($"low-pass {Hz(lowOnly)} Hz");
            }
            else if (HighPass is { } highOnly)
            {
                parts.Add($"high-pass {Hz(highOnly)} Hz");
            }

            if (Notch is { } notch)
            {
                parts.Add($"notch {Hz(notch)} Hz");
            }

            return parts.Count == 0 ? null : string.Join(", ", parts);
        }
    }

    private sealed class Sequence
    {
        public string? Code { get; set; }

        public string? Type { get; set; }

        public (double? Value, string? Unit)? Increment { get; set; }

        public (double? Value, string? Unit)? Origin { get; set; }

        public (double? Value, string? Unit)? Scale { get; set; }

        public double[]? Digits { get; set; }
    }
}
