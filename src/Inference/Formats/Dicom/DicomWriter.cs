using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Dicom;

/// <summary>How <see cref="DicomWriter"/> encodes a record; the defaults are what ECG carts' DICOM exports usually hold.</summary>
public sealed record DicomWriterOptions
{
    /// <summary>Explicit VR Little Endian (the default) or Implicit VR Little Endian.</summary>
    public bool ExplicitVr { get; init; } = true;

    /// <summary>Name leads by MDC reference ids (<c>MDC_ECG_LEAD_I</c>) instead of SCPECG codes (<c>5.6.3-9-1</c>).</summary>
    public bool MdcCodes { get; init; }

    /// <summary>Write a General ECG object instead of a 12-lead ECG one.</summary>
    public bool GeneralEcg { get; init; }

    /// <summary>Store all 12 leads (the default) or only I, II and V1-V6.</summary>
    public bool AllTwelveLeads { get; init; } = true;

    /// <summary>Sequences and items of undefined length, closed by delimiters (as some toolkits write them).</summary>
    public bool UndefinedLengths { get; init; }

    /// <summary>Channel sensitivity in µV per unit: 1 µV resolves the signal far below its noise and spans ±32 mV.</summary>
    public double SensitivityMicrovolts { get; init; } = 1.0;

    /// <summary>The rhythm group's multiplex group label.</summary>
    public string GroupLabel { get; init; } = "RHYTHM";

    /// <summary>Write a 1.2 s median-beat group before the rhythm group, as carts do.</summary>
    public bool MedianGroup { get; init; }

    /// <summary>The transfer syntax named in the file meta; null names the one the data set is written in (tests of refusals).</summary>
    public string? TransferSyntaxOverride { get; init; }

    /// <summary>The SOP class named; null names the 12-lead or General ECG class (tests of refusals).</summary>
    public string? SopClassOverride { get; init; }
}

/// <summary>
/// Writes a signal as a DICOM Part 10 ECG waveform object (<c>NAME.dcm</c>): file meta in Explicit VR Little Endian,
/// one <c>RHYTHM</c> multiplex group of interleaved 16-bit samples with per-channel sensitivity in µV, lead codes,
/// filter settings, and device attributes naming this project. No patient module: the synthetic records have no
/// patient, and nothing identifying is ever written.
/// </summary>
public sealed class DicomWriter(DicomWriterOptions? options = null) : IRecordWriter
{
    private static readonly string[] EightLeads = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"];

    private readonly DicomWriterOptions _options = options ?? new DicomWriterOptions();

    public string Name => "dicom";

    public IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName)
    {
        ArgumentNullException.ThrowIfNull(signal);
        return new Dictionary<string, byte[]>(StringComparer.Ordinal) { [recordName + DicomFormat.Suffix] = Encode(signal, recordName) };
    }

    /// <summary>The bytes of the Part 10 file holding <paramref name="signal"/> (12 standard leads in standard order, mV).</summary>
    public byte[] Encode(EcgSignal signal, string recordName)
    {
        ArgumentNullException.ThrowIfNull(signal);
        var o = _options;
        var sopClass = o.SopClassOverride ?? (o.GeneralEcg ? DicomFormat.GeneralEcgSopClass : DicomFormat.TwelveLeadEcgSopClass);
        var syntax = o.ExplicitVr ? DicomFormat.ExplicitVrLittleEndian : DicomFormat.ImplicitVrLittleEndian;
        var instance = InstanceUid(recordName);

        var meta = new DicomBuffer(explicitVr: true);
        meta.Element(0x0002_0001, "OB", [0, 1]);
        meta.Text(DicomTags.MediaStorageSopClassUid, "UI", sopClass);
        meta.Text(DicomTags.MediaStorageSopInstanceUid, "UI", instance);
        meta.Text(DicomTags.TransferSyntaxUid, "UI", o.TransferSyntaxOverride ?? syntax);
        meta.Text(DicomTags.ImplementationClassUid, "UI", "2.25.31415926535897932384626433832795");
        var metaBytes = meta.ToArray();
        var groupLength = new DicomBuffer(explicitVr: true);
        groupLength.Element(0x0002_0000, "UL", BitConverter.GetBytes((uint)metaBytes.Length));

        var body = new DicomBuffer(o.ExplicitVr);
        body.Text(DicomTags.SopClassUid, "UI", sopClass);
        body.Text(DicomTags.SopInstanceUid, "UI", instance);
        body.Text(DicomTags.Modality, "CS", "ECG");
        body.Text(DicomTags.Manufacturer, "LO", "HubertEcg");
        body.Text(DicomTags.ManufacturerModelName, "LO", "synthetic");
        var groups = new List<byte[]>();
        if (o.MedianGroup)
        {
            var beat = (int)Math.Round(signal.SamplingRate * 1.2);
            var median = new EcgSignal(signal.RecordId, signal.SamplingRate, signal.LeadNames, signal.Leads.Select(l => l[..Math.Min(beat, l.Length)]).ToArray());
            groups.Add(Group(median, "MEDIAN BEAT", "DERIVED"));
        }

        groups.Add(Group(signal, o.GroupLabel, "ORIGINAL"));
        body.Sequence(DicomTags.WaveformSequence, groups, o.UndefinedLengths);

        using var file = new MemoryStream();
        file.Write(new byte[128]);
        file.Write("DICM"u8);
        file.Write(groupLength.ToArray());
        file.Write(metaBytes);
        file.Write(body.ToArray());
        return file.ToArray();
    }

    private byte[] Group(EcgSignal signal, string label, string originality)
    {
        var o = _options;
        var leads = new List<(string Name, double[] Values)>();
        for (var i = 0; i < signal.LeadNames.Count; i++)
        {
            if (o.AllTwelveLeads || EightLeads.Contains(signal.LeadNames[i], StringComparer.Ordinal))
            {
                leads.Add((signal.LeadNames[i], signal.Leads[i]));
            }
        }

        var n = signal.SampleCount;
        var perUnitMv = o.SensitivityMicrovolts / 1000.0;
        var data = new byte[leads.Count * n * 2];
        for (var t = 0; t < n; t++)
        {
            for (var c = 0; c < leads.Count; c++)
            {
                var digital = Math.Clamp(Math.Round(leads[c].Values[t] / perUnitMv), short.MinValue, short.MaxValue);
                BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(((t * leads.Count) + c) * 2), (short)digital);
            }
        }

        var definitions = new List<byte[]>();
        foreach (var (name, _) in leads)
        {
            var code = new DicomBuffer(o.ExplicitVr);
            code.Text(DicomTags.CodeValue, "SH", o.MdcCodes ? LeadCodes.MdcCode(name) : LeadCodes.ScpCodePrefix + LeadCodes.ScpNumber(name).ToString(CultureInfo.InvariantCulture));
            code.Text(DicomTags.CodingSchemeDesignator, "SH", o.MdcCodes ? "MDC" : "SCPECG");
            code.Text(DicomTags.CodingSchemeVersion, "SH", o.MdcCodes ? "2004" : "1.3");
            code.Text(DicomTags.CodeMeaning, "LO", "Lead " + name);

            var unit = new DicomBuffer(o.ExplicitVr);
            unit.Text(DicomTags.CodeValue, "SH", "uV");
            unit.Text(DicomTags.CodingSchemeDesignator, "SH", "UCUM");
            unit.Text(DicomTags.CodingSchemeVersion, "SH", "1.4");
            unit.Text(DicomTags.CodeMeaning, "LO", "microvolt");

            var definition = new DicomBuffer(o.ExplicitVr);
            definition.Sequence(DicomTags.ChannelSourceSequence, [code.ToArray()], o.UndefinedLengths);
            definition.Text(DicomTags.ChannelSensitivity, "DS", o.SensitivityMicrovolts.ToString("R", CultureInfo.InvariantCulture));
            definition.Sequence(DicomTags.ChannelSensitivityUnitsSequence, [unit.ToArray()], o.UndefinedLengths);
            definition.Text(DicomTags.ChannelSensitivityCorrectionFactor, "DS", "1");
            definition.Text(DicomTags.ChannelBaseline, "DS", "0");
            definition.Element(DicomTags.WaveformBitsStored, "US", BitConverter.GetBytes((ushort)16));
            definition.Text(DicomTags.FilterLowFrequency, "DS", "0.05");
            definition.Text(DicomTags.FilterHighFrequency, "DS", "150");
            definitions.Add(definition.ToArray());
        }

        var group = new DicomBuffer(o.ExplicitVr);
        group.Text(DicomTags.WaveformOriginality, "CS", originality);
        group.Element(DicomTags.NumberOfWaveformChannels, "US", BitConverter.GetBytes((ushort)leads.Count));
        group.Element(DicomTags.NumberOfWaveformSamples, "UL", BitConverter.GetBytes((uint)n));
        group.Text(DicomTags.SamplingFrequency, "DS", signal.SamplingRate.ToString("R", CultureInfo.InvariantCulture));
        group.Text(DicomTags.MultiplexGroupLabel, "SH", label);
        group.Sequence(DicomTags.ChannelDefinitionSequence, definitions, o.UndefinedLengths);
        group.Element(DicomTags.WaveformBitsAllocated, "US", BitConverter.GetBytes((ushort)16));
        group.Text(DicomTags.WaveformSampleInterpretation, "CS", "SS");
        group.Element(DicomTags.WaveformData, "OW", data);
        return group.ToArray();
    }

    /// <summary>A UID under the 2.25 (UUID-derived) root, stable for a record name, so the same record writes the same bytes.</summary>
    private static string InstanceUid(string recordName)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(recordName));
        var value = new System.Numerics.BigInteger(hash.AsSpan(0, 16), isUnsigned: true);
        return "2.25." + value.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Little-endian data elements, in Explicit or Implicit VR, values padded to even length.</summary>
    private sealed class DicomBuffer(bool explicitVr)
    {
        private static readonly HashSet<string> LongVrs = new(StringComparer.Ordinal) { "OB", "OD", "OF", "OL", "OW", "SQ", "UC", "UN", "UR", "UT" };

        private readonly ArrayBufferWriter<byte> _buffer = new();

        public void Text(uint tag, string vr, string value)
        {
            var bytes = Encoding.ASCII.GetBytes(value);
            if (bytes.Length % 2 == 1)
            {
                bytes = [.. bytes, vr == "UI" ? (byte)0 : (byte)' '];
            }

            Element(tag, vr, bytes);
        }

        public void Element(uint tag, string vr, byte[] value)
        {
            if (value.Length % 2 == 1)
            {
                value = [.. value, 0];
            }

            Header(tag, vr, (uint)value.Length);
            _buffer.Write(value);
        }

        public void Sequence(uint tag, IReadOnlyList<byte[]> items, bool undefined)
        {
            var length = undefined ? 0xFFFFFFFF : (uint)items.Sum(i => 8 + i.Length);
            Header(tag, "SQ", length);
            foreach (var item in items)
            {
                Tag(DicomTags.Item);
                Uint(undefined ? 0xFFFFFFFF : (uint)item.Length);
                _buffer.Write(item);
                if (undefined)
                {
                    Tag(DicomTags.ItemDelimitation);
                    Uint(0);
                }
            }

            if (undefined)
            {
                Tag(DicomTags.SequenceDelimitation);
                Uint(0);
            }
        }

        public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

        private void Header(uint tag, string vr, uint length)
        {
            Tag(tag);
            if (!explicitVr)
            {
                Uint(length);
                return;
            }

            _buffer.Write(Encoding.ASCII.GetBytes(vr));
            if (LongVrs.Contains(vr))
            {
                _buffer.Write([(byte)0, (byte)0]);
                Uint(length);
            }
            else
            {
                Span<byte> two = stackalloc byte[2];
                BinaryPrimitives.WriteUInt16LittleEndian(two, checked((ushort)length));
                _buffer.Write(two);
            }
        }

        private void Tag(uint tag)
        {
            Span<byte> four = stackalloc byte[4];
            BinaryPrimitives.WriteUInt16LittleEndian(four, (ushort)(tag >> 16));
            BinaryPrimitives.WriteUInt16LittleEndian(four[2..], (ushort)(tag & 0xFFFF));
            _buffer.Write(four);
        }

        private void Uint(uint value)
        {
            Span<byte> four = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(four, value);
            _buffer.Write(four);
        }
    }
}
