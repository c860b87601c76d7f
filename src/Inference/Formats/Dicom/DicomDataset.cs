using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Dicom;

/// <summary>
/// The DICOM tags the ECG reader and writer use, as <c>(group &lt;&lt; 16) | element</c>. Patient name, id and birth
/// date are deliberately absent: nothing here reads them.
/// </summary>
internal static class DicomTags
{
    public const uint MediaStorageSopClassUid = 0x0002_0002;
    public const uint MediaStorageSopInstanceUid = 0x0002_0003;
    public const uint TransferSyntaxUid = 0x0002_0010;
    public const uint ImplementationClassUid = 0x0002_0012;
    public const uint SopClassUid = 0x0008_0016;
    public const uint SopInstanceUid = 0x0008_0018;
    public const uint Modality = 0x0008_0060;
    public const uint Manufacturer = 0x0008_0070;
    public const uint CodeValue = 0x0008_0100;
    public const uint CodingSchemeDesignator = 0x0008_0102;
    public const uint CodingSchemeVersion = 0x0008_0103;
    public const uint CodeMeaning = 0x0008_0104;
    public const uint ManufacturerModelName = 0x0008_1090;
    public const uint SoftwareVersions = 0x0018_1020;
    public const uint WaveformOriginality = 0x003A_0004;
    public const uint NumberOfWaveformChannels = 0x003A_0005;
    public const uint NumberOfWaveformSamples = 0x003A_0010;
    public const uint SamplingFrequency = 0x003A_001A;
    public const uint MultiplexGroupLabel = 0x003A_0020;
    public const uint ChannelDefinitionSequence = 0x003A_0200;
    public const uint ChannelSourceSequence = 0x003A_0208;
    public const uint ChannelSensitivity = 0x003A_0210;
    public const uint ChannelSensitivityUnitsSequence = 0x003A_0211;
    public const uint ChannelSensitivityCorrectionFactor = 0x003A_0212;
    public const uint ChannelBaseline = 0x003A_0213;
    public const uint WaveformBitsStored = 0x003A_021A;
    public const uint FilterLowFrequency = 0x003A_0220;
    public const uint FilterHighFrequency = 0x003A_0221;
    public const uint NotchFilterFrequency = 0x003A_0222;
    public const uint WaveformSequence = 0x5400_0100;
    public const uint WaveformBitsAllocated = 0x5400_1004;
    public const uint WaveformSampleInterpretation = 0x5400_1006;
    public const uint WaveformData = 0x5400_1010;
    public const uint Item = 0xFFFE_E000;
    public const uint ItemDelimitation = 0xFFFE_E00D;
    public const uint SequenceDelimitation = 0xFFFE_E0DD;

    /// <summary>Sequences the reader descends into when the transfer syntax (Implicit VR) does not say an element is one.</summary>
    public static bool IsKnownSequence(uint tag) =>
        tag is WaveformSequence or ChannelDefinitionSequence or ChannelSourceSequence or ChannelSensitivityUnitsSequence;

    public static string Format(uint tag) => $"({tag >> 16:X4},{tag & 0xFFFF:X4})";
}

/// <summary>One data element: where its value lies in the file, or the items of a sequence.</summary>
internal sealed record DicomElement(uint Tag, string Vr, int Offset, int Length, IReadOnlyList<DicomDataset>? Items);

/// <summary>
/// A parsed DICOM data set (the file meta group, the main data set or a sequence item): its elements in file order,
/// values left in the file's bytes. Only what a caller asks for is decoded.
/// </summary>
internal sealed class DicomDataset(byte[] data, string recordId)
{
    private readonly List<DicomElement> _elements = [];

    public IReadOnlyList<DicomElement> Elements => _elements;

    /// <summary>The file's bytes, which the elements' offsets point into.</summary>
    public byte[] Bytes => data;

    public void Add(DicomElement element) => _elements.Add(element);

    public DicomElement? Find(uint tag)
    {
        foreach (var element in _elements)
        {
            if (element.Tag == tag)
            {
                return element;
            }
        }

        return null;
    }

    /// <summary>The items of sequence <paramref name="tag"/>, empty when absent.</summary>
    public IReadOnlyList<DicomDataset> Items(uint tag) => Find(tag)?.Items ?? [];

    /// <summary>A text value (first of several), trimmed of padding; null when absent or empty.</summary>
    public string? Text(uint tag)
    {
        if (Find(tag) is not { Items: null } element || element.Length == 0)
        {
            return null;
        }

        // Only short attributes are read as text (codes, labels, UIDs, device names): a long one is cut, not copied whole.
        var text = Encoding.Latin1.GetString(data, element.Offset, Math.Min(element.Length, 1024));
        var backslash = text.IndexOf('\\', StringComparison.Ordinal);
        if (backslash >= 0)
        {
            text = text[..backslash];
        }

        text = text.Trim(' ', '\0', '\t', '\r', '\n');
        return text.Length == 0 ? null : text;
    }

    /// <summary>A decimal string (DS) or integer string value; null when absent; an error when not a finite number.</summary>
    public double? Decimal(uint tag, string what)
    {
        var text = Text(tag);
        if (text is null)
        {
            return null;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value
            : throw new EcgFormatException(recordId, $"{what} {DicomTags.Format(tag)} is not a number");
    }

    /// <summary>An unsigned binary value (US or UL); null when absent.</summary>
    public long? Unsigned(uint tag, string what)
    {
        if (Find(tag) is not { Items: null } element)
        {
            return null;
        }

        var span = data.AsSpan(element.Offset, element.Length);
        return element.Length switch
        {
            2 => BinaryPrimitives.ReadUInt16LittleEndian(span),
            4 => BinaryPrimitives.ReadUInt32LittleEndian(span),
            _ => throw new EcgFormatException(recordId, $"{what} {DicomTags.Format(tag)} has {element.Length} bytes, not 2 or 4"),
        };
    }
}

/// <summary>
/// Parses DICOM data sets in little endian, Explicit or Implicit VR: sequences of defined and undefined length
/// (item and sequence delimiters), nested to a bounded depth. Every length is checked against the bytes left before
/// anything is read or allocated; values are not copied (elements point into the file's bytes).
/// </summary>
internal sealed class DicomParser(byte[] data, string recordId)
{
    private const int MaxDepth = 16;

    /// <summary>Explicit VR elements whose length field is 4 bytes (after 2 reserved bytes).</summary>
    private static readonly HashSet<string> LongVrs = new(StringComparer.Ordinal) { "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV" };

    /// <summary>
    /// Parses elements from <paramref name="start"/>: to <paramref name="end"/>, or (with <paramref name="untilItemEnd"/>)
    /// up to an item delimiter, or (with <paramref name="metaOnly"/>) while the elements are of group 0002. Returns the
    /// data set and where parsing stopped (after the delimiter, if any).
    /// </summary>
    public (DicomDataset Dataset, int End) Parse(int start, int end, bool explicitVr, bool untilItemEnd = false, bool metaOnly = false, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw Error($"sequences nested deeper than {MaxDepth} levels at byte {start}");
        }

        var dataset = new DicomDataset(data, recordId);
        var p = start;
        while (p < end)
        {
            if (end - p < 8)
            {
                throw Error($"element header at byte {p} runs past the end of {(depth == 0 ? "the file" : "its item")}");
            }

            var tag = ReadTag(p);
            if (metaOnly && tag >> 16 != 0x0002)
            {
                return (dataset, p);
            }

            if (tag == DicomTags.ItemDelimitation)
            {
                if (!untilItemEnd)
                {
                    throw Error($"item delimiter outside an item of undefined length at byte {p}");
                }

                return (dataset, p + 8);
            }

            if (tag is DicomTags.Item or DicomTags.SequenceDelimitation)
            {
                throw Error($"item tag {DicomTags.Format(tag)} outside a sequence at byte {p}");
            }

            string vr;
            long length;
            int header;
            if (explicitVr)
            {
                var v0 = data[p + 4];
                var v1 = data[p + 5];
                if (v0 is < (byte)'A' or > (byte)'Z' || v1 is < (byte)'A' or > (byte)'Z')
                {
                    throw Error($"element {DicomTags.Format(tag)} at byte {p} has no valid value representation");
                }

                vr = string.Create(2, (v0, v1), static (s, b) => { s[0] = (char)b.v0; s[1] = (char)b.v1; });
                if (LongVrs.Contains(vr))
                {
                    if (end - p < 12)
                    {
                        throw Error($"element {DicomTags.Format(tag)} header at byte {p} runs past the end");
                    }

                    length = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(p + 8));
                    header = 12;
                }
                else
                {
                    length = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(p + 6));
                    header = 8;
                }
            }
            else
            {
                vr = DicomTags.IsKnownSequence(tag) ? "SQ" : "UN";
                length = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(p + 4));
                header = 8;
            }

            var valueStart = p + header;
            if (length == 0xFFFFFFFF)
            {
                // Undefined length: a sequence (SQ, an Implicit VR element, or UN whose content is Implicit VR).
                if (vr is not ("SQ" or "UN"))
                {
                    throw Error($"element {DicomTags.Format(tag)} ({vr}) has undefined length (encapsulated data is not read)");
                }

                var (items, after) = ParseItems(valueStart, end, vr == "SQ" && explicitVr, undefined: true, depth);
                dataset.Add(new DicomElement(tag, "SQ", valueStart, after - valueStart, items));
                p = after;
                continue;
            }

            if (length > end - valueStart)
            {
                throw Error($"element {DicomTags.Format(tag)} at byte {p} claims {length} bytes but only {end - valueStart} are left");
            }

            var valueEnd = valueStart + (int)length;
            if (vr == "SQ")
            {
                var (items, _) = ParseItems(valueStart, valueEnd, explicitVr, undefined: false, depth);
                dataset.Add(new DicomElement(tag, vr, valueStart, (int)length, items));
            }
            else
            {
                dataset.Add(new DicomElement(tag, vr, valueStart, (int)length, null));
            }

            p = valueEnd;
        }

        if (untilItemEnd)
        {
            throw Error("an item of undefined length has no item delimiter before the end");
        }

        return (dataset, p);
    }

    private (List<DicomDataset> Items, int End) ParseItems(int start, int end, bool explicitVr, bool undefined, int depth)
    {
        var items = new List<DicomDataset>();
        var p = start;
        while (p < end)
        {
            if (end - p < 8)
            {
                throw Error($"sequence item header at byte {p} runs past the end");
            }

            var tag = ReadTag(p);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(p + 4));
            if (tag == DicomTags.SequenceDelimitation)
            {
                if (!undefined)
                {
                    throw Error($"sequence delimiter in a sequence of defined length at byte {p}");
                }

                return (items, p + 8);
            }

            if (tag != DicomTags.Item)
            {
                throw Error($"sequence holds {DicomTags.Format(tag)} at byte {p} where an item was expected");
            }

            if (length == 0xFFFFFFFF)
            {
                var (item, after) = Parse(p + 8, end, explicitVr, untilItemEnd: true, depth: depth + 1);
                items.Add(item);
                p = after;
            }
            else
            {
                if (length > end - (p + 8))
                {
                    throw Error($"sequence item at byte {p} claims {length} bytes but only {end - (p + 8)} are left");
                }

                var (item, _) = Parse(p + 8, p + 8 + (int)length, explicitVr, depth: depth + 1);
                items.Add(item);
                p += 8 + (int)length;
            }
        }

        if (undefined)
        {
            throw Error("a sequence of undefined length has no sequence delimiter before the end");
        }

        return (items, p);
    }

    private uint ReadTag(int p) =>
        ((uint)BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(p)) << 16) | BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(p + 2));

    private EcgFormatException Error(string reason) => new(recordId, reason);
}
