using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Dicom;

/// <summary>
/// DICOM waveform objects (PS3.3 A.34): 12-lead ECG (<see cref="TwelveLeadEcgSopClass"/>) and General ECG
/// (<see cref="GeneralEcgSopClass"/>) as Part 10 files (<c>.dcm</c>) in Implicit or Explicit VR Little Endian. The
/// <c>RHYTHM</c> multiplex group is scored; its interleaved 16-bit samples become physical values as
/// <c>raw x ChannelSensitivity x ChannelSensitivityCorrectionFactor + ChannelBaseline</c> in the channel's unit, then mV.
/// Leads are named by their SCPECG or MDC code (their meaning as a fallback). Other transfer syntaxes and SOP classes
/// are refused with the reason. Patient module attributes are never read.
/// </summary>
public sealed class DicomFormat : IRecordFormat
{
    public const string Suffix = ".dcm";

    public const string TwelveLeadEcgSopClass = "1.2.840.10008.5.1.4.1.1.9.1.1";

    public const string GeneralEcgSopClass = "1.2.840.10008.5.1.4.1.1.9.1.2";

    public const string ImplicitVrLittleEndian = "1.2.840.10008.1.2";

    public const string ExplicitVrLittleEndian = "1.2.840.10008.1.2.1";

    /// <summary>Largest file read: a 10-minute 12-lead rhythm at 1 kHz is ~14 MB.</summary>
    public const long MaxFileBytes = 64L << 20;

    private const int PreambleLength = 128;

    private static readonly Dictionary<string, string> KnownTransferSyntaxes = new(StringComparer.Ordinal)
    {
        ["1.2.840.10008.1.2.1.99"] = "Deflated Explicit VR Little Endian",
        ["1.2.840.10008.1.2.2"] = "Explicit VR Big Endian",
        ["1.2.840.10008.1.2.5"] = "RLE Lossless",
        ["1.2.840.10008.1.2.4.50"] = "JPEG Baseline",
        ["1.2.840.10008.1.2.4.70"] = "JPEG Lossless",
        ["1.2.840.10008.1.2.4.90"] = "JPEG 2000 Lossless",
        ["1.2.840.10008.1.2.4.91"] = "JPEG 2000",
    };

    private static readonly Dictionary<string, string> KnownSopClasses = new(StringComparer.Ordinal)
    {
        [TwelveLeadEcgSopClass] = "12-Lead ECG Waveform Storage",
        [GeneralEcgSopClass] = "General ECG Waveform Storage",
        ["1.2.840.10008.5.1.4.1.1.9.1.3"] = "Ambulatory ECG Waveform Storage",
        ["1.2.840.10008.5.1.4.1.1.9.2.1"] = "Hemodynamic Waveform Storage",
        ["1.2.840.10008.5.1.4.1.1.9.3.1"] = "Cardiac Electrophysiology Waveform Storage",
        ["1.2.840.10008.5.1.4.1.1.9.4.1"] = "Basic Voice Audio Waveform Storage",
        ["1.2.840.10008.5.1.4.1.1.7"] = "Secondary Capture Image Storage",
        ["1.2.840.10008.5.1.4.1.1.104.1"] = "Encapsulated PDF Storage",
    };

    public string Name => "dicom";

    public IReadOnlyList<string> Suffixes { get; } = [Suffix];

    public string PrimarySuffix => Suffix;

    public bool Reads(IReadOnlySet<string> suffixes) => suffixes.Count == 1 && suffixes.Contains(Suffix);

    public bool Recognises(ReadOnlySpan<byte> head) =>
        head.Length >= PreambleLength + 4 && head.Slice(PreambleLength, 4).SequenceEqual("DICM"u8);

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

        // Read into a pooled buffer: the elements point into it only while the record is decoded.
        var (buffer, filled) = RecordFileReader.ReadRange(files, fileName, 0, MaxFileBytes + 1, recordId);
        try
        {
            if (filled > MaxFileBytes)
            {
                throw new EcgFormatException(recordId, $"file {fileName} is more than the {MaxFileBytes} bytes allowed");
            }

            return Load(buffer, filled, recordId);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads a DICOM Part 10 ECG waveform object from its bytes.</summary>
    public static EcgRecord Load(byte[] bytes, string recordId)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Load(bytes, bytes.Length, recordId);
    }

    /// <summary>Reads a DICOM Part 10 ECG waveform object from the first <paramref name="length"/> bytes of <paramref name="bytes"/>.</summary>
    public static EcgRecord Load(byte[] bytes, int length, string recordId)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, bytes.Length);
        if (length < PreambleLength + 4 || !bytes.AsSpan(PreambleLength, 4).SequenceEqual("DICM"u8))
        {
            throw new EcgFormatException(recordId, "not a DICOM Part 10 file (no DICM after the 128-byte preamble)");
        }

        var parser = new DicomParser(bytes, recordId);
        var (meta, metaEnd) = parser.Parse(PreambleLength + 4, length, explicitVr: true, metaOnly: true);
        var syntax = meta.Text(DicomTags.TransferSyntaxUid)
            ?? throw new EcgFormatException(recordId, "the file meta information names no transfer syntax (0002,0010)");
        var explicitVr = syntax switch
        {
            ExplicitVrLittleEndian => true,
            ImplicitVrLittleEndian => false,
            _ => throw new EcgFormatException(
                recordId,
                $"transfer syntax {Printable(syntax)}{(KnownTransferSyntaxes.TryGetValue(syntax, out var n) ? $" ({n})" : string.Empty)} is not read: only Implicit VR Little Endian and Explicit VR Little Endian are"),
        };

        var (dataset, _) = parser.Parse(metaEnd, length, explicitVr);
        var sopClass = dataset.Text(DicomTags.SopClassUid) ?? meta.Text(DicomTags.MediaStorageSopClassUid)
            ?? throw new EcgFormatException(recordId, "the file names no SOP class (0008,0016)");
        if (sopClass is not (TwelveLeadEcgSopClass or GeneralEcgSopClass))
        {
            throw new EcgFormatException(
                recordId,
                $"SOP class {Printable(sopClass)}{(KnownSopClasses.TryGetValue(sopClass, out var s) ? $" ({s})" : string.Empty)} is not an ECG waveform: only 12-Lead ECG and General ECG Waveform Storage are read");
        }

        var warnings = new List<string>();
        var group = ChooseGroup(dataset.Items(DicomTags.WaveformSequence), recordId, warnings);
        var (signal, sourceUnits, filters) = ReadGroup(group, recordId);
        var manufacturer = dataset.Text(DicomTags.Manufacturer);
        var model = dataset.Text(DicomTags.ManufacturerModelName);
        var device = string.Join(' ', new[] { manufacturer, model }.Where(t => t is not null));
        var sopName = KnownSopClasses[sopClass];
        return new EcgRecord
        {
            Format = "dicom",
            Container = $"DICOM {sopName}, {(explicitVr ? "Explicit" : "Implicit")} VR Little Endian, {signal.LeadNames.Count} channels",
            Signal = signal,
            Units = Enumerable.Repeat("mV", signal.LeadNames.Count).ToList(),
            SourceUnits = sourceUnits,
            Warnings = warnings,
            Description = new RecordDescription(
                Version: dataset.Text(DicomTags.SoftwareVersions) is { } software ? $"software {software}" : null,
                Device: device.Length == 0 ? null : device,
                Filters: filters),
        };
    }

    private static DicomDataset ChooseGroup(IReadOnlyList<DicomDataset> groups, string recordId, List<string> warnings)
    {
        if (groups.Count == 0)
        {
            throw new EcgFormatException(recordId, "no waveform: the Waveform Sequence (5400,0100) is missing or empty");
        }

        foreach (var group in groups)
        {
            if (string.Equals(group.Text(DicomTags.MultiplexGroupLabel), "RHYTHM", StringComparison.OrdinalIgnoreCase))
            {
                return group;
            }
        }

        for (var i = 0; i < groups.Count; i++)
        {
            var label = groups[i].Text(DicomTags.MultiplexGroupLabel) ?? string.Empty;
            if (!IsBeat(label))
            {
                warnings.Add($"no multiplex group is labelled RHYTHM: read group {i + 1} of {groups.Count}{(label.Length > 0 ? $" ('{Printable(label)}')" : string.Empty)}");
                return groups[i];
            }
        }

        throw new EcgFormatException(recordId, $"no rhythm waveform: the {groups.Count} multiplex group(s) are median or representative beats");
    }

    private static bool IsBeat(string label) =>
        label.Contains("MEDIAN", StringComparison.OrdinalIgnoreCase)
        || label.Contains("REPRESENTATIVE", StringComparison.OrdinalIgnoreCase)
        || label.Contains("BEAT", StringComparison.OrdinalIgnoreCase);

    private static (EcgSignal Signal, List<string> SourceUnits, string? Filters) ReadGroup(DicomDataset group, string recordId)
    {
        var channels = group.Unsigned(DicomTags.NumberOfWaveformChannels, "Number of Waveform Channels")
            ?? throw new EcgFormatException(recordId, "the rhythm group has no Number of Waveform Channels (003A,0005)");
        var samples = group.Unsigned(DicomTags.NumberOfWaveformSamples, "Number of Waveform Samples")
            ?? throw new EcgFormatException(recordId, "the rhythm group has no Number of Waveform Samples (003A,0010)");
        var rate = group.Decimal(DicomTags.SamplingFrequency, "Sampling Frequency")
            ?? throw new EcgFormatException(recordId, "the rhythm group has no Sampling Frequency (003A,001A)");
        if (channels == 0 || samples == 0)
        {
            throw new EcgFormatException(recordId, $"the rhythm group has {channels} channels of {samples} samples");
        }

        if (rate <= 0)
        {
            throw new EcgFormatException(recordId, $"sampling frequency {rate.ToString(CultureInfo.InvariantCulture)} Hz is not positive");
        }

        var bits = group.Unsigned(DicomTags.WaveformBitsAllocated, "Waveform Bits Allocated") ?? 16;
        var interpretation = group.Text(DicomTags.WaveformSampleInterpretation) ?? "SS";
        if (bits != 16 || interpretation != "SS")
        {
            throw new EcgFormatException(recordId, $"samples of {bits} bits interpreted as '{Printable(interpretation)}' are not read (only 16-bit signed, SS)");
        }

        var definitions = group.Items(DicomTags.ChannelDefinitionSequence);
        if (definitions.Count != channels)
        {
            throw new EcgFormatException(recordId, $"{definitions.Count} channel definitions for {channels} channels");
        }

        var data = group.Find(DicomTags.WaveformData) is { Items: null } element
            ? element
            : throw new EcgFormatException(recordId, "the rhythm group has no Waveform Data (5400,1010)");

        // Check the data holds what the header says before allocating the leads.
        var needed = channels * samples * 2;
        if (needed > data.Length)
        {
            throw new EcgFormatException(recordId, $"Waveform Data holds {data.Length} bytes, fewer than {channels} channels x {samples} samples x 2");
        }

        var names = new string[channels];
        var sourceUnits = new List<string>((int)channels);
        var scale = new double[channels];
        var baseline = new double[channels];
        var toMv = new double[channels];
        var lows = new HashSet<double>();
        var highs = new HashSet<double>();
        var notches = new HashSet<double>();
        for (var c = 0; c < channels; c++)
        {
            var definition = definitions[c];
            names[c] = LeadName(definition, c);
            var sensitivity = definition.Decimal(DicomTags.ChannelSensitivity, $"channel {c + 1} sensitivity")
                ?? throw new EcgFormatException(recordId, $"channel {c + 1} ({names[c]}) has no Channel Sensitivity (003A,0210)");
            var correction = definition.Decimal(DicomTags.ChannelSensitivityCorrectionFactor, $"channel {c + 1} sensitivity correction factor") ?? 1.0;
            baseline[c] = definition.Decimal(DicomTags.ChannelBaseline, $"channel {c + 1} baseline") ?? 0.0;
            scale[c] = sensitivity * correction;
            var unit = definition.Items(DicomTags.ChannelSensitivityUnitsSequence) is [var units, ..] ? units.Text(DicomTags.CodeValue) : null;
            if (unit is null)
            {
                throw new EcgFormatException(recordId, $"channel {c + 1} ({names[c]}) states no sensitivity unit (003A,0211)");
            }

            toMv[c] = Units.ToMillivolts(unit)
                ?? throw new EcgFormatException(recordId, $"channel {c + 1} ({names[c]}) is in '{Printable(unit)}', not a voltage");
            sourceUnits.Add(unit);
            AddIfStated(lows, definition.Decimal(DicomTags.FilterLowFrequency, $"channel {c + 1} low filter"));
            AddIfStated(highs, definition.Decimal(DicomTags.FilterHighFrequency, $"channel {c + 1} high filter"));
            AddIfStated(notches, definition.Decimal(DicomTags.NotchFilterFrequency, $"channel {c + 1} notch filter"));
        }

        var n = (int)samples;
        var leads = new double[channels][];
        for (var c = 0; c < channels; c++)
        {
            leads[c] = GC.AllocateUninitializedArray<double>(n);
        }

        var raw = data.Offset;
        var bytes = DataOf(group);
        var frame = (int)channels * 2;
        for (var t = 0; t < n; t++)
        {
            var at = raw + (t * frame);
            for (var c = 0; c < channels; c++)
            {
                var value = BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(at + (c * 2), 2));
                leads[c][t] = ((value * scale[c]) + baseline[c]) * toMv[c];
            }
        }

        var signal = new EcgSignal(recordId, rate, names, leads);
        return (signal, sourceUnits, FilterText(lows, highs, notches));
    }

    private static byte[] DataOf(DicomDataset dataset) => dataset.Bytes;

    private static string LeadName(DicomDataset definition, int index)
    {
        if (definition.Items(DicomTags.ChannelSourceSequence) is [var source, ..])
        {
            var code = source.Text(DicomTags.CodeValue);
            var meaning = source.Text(DicomTags.CodeMeaning);
            if (LeadCodes.FromCode(code) is { } coded)
            {
                return coded;
            }

            if (LeadMapping.StandardName(meaning) is { } named)
            {
                return named;
            }

            if (code is not null || meaning is not null)
            {
                return Printable(code ?? meaning!);
            }
        }

        return $"channel {index + 1}";
    }

    private static void AddIfStated(HashSet<double> values, double? value)
    {
        if (value is { } v)
        {
            values.Add(v);
        }
    }

    /// <summary>"0.05-150 Hz, notch 60 Hz" when every channel states the same settings; null when none are stated.</summary>
    private static string? FilterText(HashSet<double> lows, HashSet<double> highs, HashSet<double> notches)
    {
        static string Hz(HashSet<double> values) =>
            string.Join('/', values.Order().Select(v => v.ToString(CultureInfo.InvariantCulture)));

        var parts = new List<string>();
        if (lows.Count > 0 && highs.Count > 0)
        {
            parts.Add($"{Hz(lows)}-{Hz(highs)} Hz");
        }
        else if (lows.Count > 0)
        {
            parts.Add($"high-pass {Hz(lows)} Hz");
        }
        else if (highs.Count > 0)
        {
            parts.Add($"low-pass {Hz(highs)} Hz");
        }

        if (notches.Count > 0)
        {
            parts.Add($"notch {Hz(notches)} Hz");
        }

        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    /// <summary>A label or code as shown in a reason or warning: printable ASCII, at most 64 characters.</summary>
    private static string Printable(string text)
    {
        var builder = new StringBuilder(Math.Min(text.Length, 64));
        foreach (var ch in text.AsSpan(0, Math.Min(text.Length, 64)))
        {
            builder.Append(ch is >= ' ' and <= '~' ? ch : '?');
        }

        return builder.ToString();
    }
}
