using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Xml.Linq;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;
using static HubertEcg.Inference.Formats.XmlRecordFile;

namespace HubertEcg.Inference.Formats.Muse;

/// <summary>
/// GE MUSE resting ECGs as XML (root <c>RestingECG</c>, ISO-8859-1, with a <c>DOCTYPE</c> naming <c>restecg.dtd</c>,
/// which is skipped, never fetched). Of the <c>Waveform</c>s (<c>Median</c>, <c>Rhythm</c>) the record is the
/// <c>Rhythm</c> one: rate <c>SampleBase</c> x 2^<c>SampleExponent</c>; per <c>LeadData</c>, <c>WaveFormData</c> is
/// base64 of little-endian int16 samples, <c>LeadSampleCountTotal</c> of them, each <c>LeadAmplitudeUnitsPerBit</c>
/// <c>LeadAmplitudeUnits</c> (microvolts usually); a <c>LeadDataCRC32</c>, where given, must be the CRC-32 of the
/// decoded bytes, or the record is rejected. Usually I, II and V1-V6 are stored; the rest is derived downstream.
/// Patient demographics are never read out.
/// </summary>
public sealed class MuseFormat : IRecordFormat
{
    public const string Suffix = ".xml";

    public const string FormatName = "muse";

    /// <summary>The root element of every MUSE XML ECG.</summary>
    public const string RootName = "RestingECG";

    /// <summary>Most samples one lead may claim (10 minutes at 1 kHz): far above resting ECGs, and a bound on corrupt counts.</summary>
    public const long MaxSamplesPerLead = 600_000;

    // Lead data is decoded while the document is read, never held as text.
    private static readonly HashSet<string> Base64Elements = new(StringComparer.Ordinal) { "WaveFormData" };

    public string Name => FormatName;

    public IReadOnlyList<string> Suffixes { get; } = [Suffix];

    public string PrimarySuffix => Suffix;

    public bool Reads(IReadOnlySet<string> suffixes) => suffixes.Count == 1 && suffixes.Contains(Suffix);

    public bool Recognises(ReadOnlySpan<byte> head) => SafeXml.RootElement(head) is { LocalName: RootName };

    public EcgRecord Read(IRecordFileSource files, string recordName, string recordId)
    {
        ArgumentNullException.ThrowIfNull(files);
        return XmlRecordFile.Read(files, recordName + Suffix, recordId, Base64Elements, document => Read(document, recordId));
    }

    /// <summary>Reads a MUSE record from an XML stream (the whole file).</summary>
    public static EcgRecord Read(Stream stream, string recordId) =>
        XmlRecordFile.Read(stream, recordId, Base64Elements, document => Read(document, recordId));

    private static EcgRecord Read(XDocument document, string recordId)
    {
        var root = document.Root;
        if (root is null || root.Name.LocalName != RootName)
        {
            throw new EcgFormatException(recordId, $"root element is {root?.Name.LocalName ?? "missing"}, not {RootName}");
        }

        var rhythm = Children(root, "Waveform").FirstOrDefault(w => string.Equals(Text(w, "WaveformType"), "Rhythm", StringComparison.OrdinalIgnoreCase))
            ?? throw new EcgFormatException(recordId, "no Waveform of WaveformType Rhythm");

        var sampleBase = Number(Text(rhythm, "SampleBase"));
        var exponent = Integer(Text(rhythm, "SampleExponent")) ?? 0;
        if (sampleBase is not { } b || b <= 0 || exponent is < -16 or > 16)
        {
            throw new EcgFormatException(recordId, "Rhythm SampleBase is missing or not positive, or SampleExponent is outside -16..16");
        }

        var fs = b * Math.Pow(2, exponent);
        if (fs > 100_000)
        {
            throw new EcgFormatException(recordId, $"sampling rate {Format(fs)} Hz is above 100 kHz");
        }

        var names = new List<string>();
        var leads = new List<double[]>();
        var sourceUnits = new List<string>();
        var warnings = new List<string>();
        foreach (var leadData in Children(rhythm, "LeadData"))
        {
            var (name, values, unit) = Lead(leadData, names.Count + 1, recordId);
            if (leads.Count > 0 && values.Length != leads[0].Length)
            {
                throw new EcgFormatException(recordId, $"lead {name} has {values.Length} samples, lead {names[0]} {leads[0].Length}");
            }

            names.Add(name);
            leads.Add(values);
            sourceUnits.Add(unit);
        }

        if (leads.Count == 0)
        {
            throw new EcgFormatException(recordId, "the Rhythm waveform has no LeadData");
        }

        if (Integer(Text(rhythm, "NumberofLeads")) is { } declaredLeads && declaredLeads != leads.Count)
        {
            warnings.Add($"NumberofLeads says {declaredLeads}, the Rhythm waveform holds {leads.Count}");
        }

        return new EcgRecord
        {
            Format = FormatName,
            Container = $"Rhythm waveform, {leads.Count} leads x {leads[0].Length} samples at {Format(fs)} Hz",
            Signal = new EcgSignal(recordId, fs, names, [.. leads]),
            Units = Enumerable.Repeat("mV", leads.Count).ToList(),
            SourceUnits = sourceUnits,
            Warnings = warnings,
            Description = new RecordDescription(Version(root), Device(root), Filters(rhythm)),
        };
    }

    private static (string Name, double[] Values, string Unit) Lead(XElement leadData, int index, string recordId)
    {
        var id = Text(leadData, "LeadID") ?? throw new EcgFormatException(recordId, $"LeadData {index} has no LeadID");
        var name = LeadMapping.StandardName(id) ?? Safe(id);
        var count = Integer(Text(leadData, "LeadSampleCountTotal"));
        if (count is not { } n || n < 1 || n > MaxSamplesPerLead)
        {
            throw new EcgFormatException(recordId, $"lead {name}: LeadSampleCountTotal is missing or outside 1-{MaxSamplesPerLead}");
        }

        var size = Integer(Text(leadData, "LeadSampleSize")) ?? 2;
        if (size != 2)
        {
            throw new EcgFormatException(recordId, $"lead {name}: LeadSampleSize {size} is not supported (2)");
        }

        var perBit = Number(Text(leadData, "LeadAmplitudeUnitsPerBit"));
        if (perBit is not { } gain || gain <= 0)
        {
            throw new EcgFormatException(recordId, $"lead {name}: LeadAmplitudeUnitsPerBit is missing or not positive");
        }

        var unit = Text(leadData, "LeadAmplitudeUnits") ?? "MICROVOLTS";
        // Value in the file's unit first, then to mV (µV / 1000), as reference readers compute it.
        var (times, over) = unit.ToUpperInvariant() switch
        {
            "MICROVOLTS" or "MICROVOLT" or "UV" => (1.0, 1000.0),
            "MILLIVOLTS" or "MILLIVOLT" or "MV" => (1.0, 1.0),
            "VOLTS" or "VOLT" or "V" => (1000.0, 1.0),
            _ => throw new EcgFormatException(recordId, $"lead {name}: LeadAmplitudeUnits {Safe(unit)} is not a voltage unit"),
        };

        var data = Child(leadData, "WaveFormData") ?? throw new EcgFormatException(recordId, $"lead {name} has no WaveFormData");
        var bytes = Binary(data) is { } decoded ? decoded.Span : Base64(data.Value, recordId, $"lead {name} WaveFormData");

        if (Text(leadData, "LeadDataCRC32") is { } crcText)
        {
            if (!long.TryParse(crcText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var expected) || expected < int.MinValue || expected > uint.MaxValue)
            {
                throw new EcgFormatException(recordId, $"lead {name}: LeadDataCRC32 is not a 32-bit number");
            }

            var actual = Crc32.Compute(bytes);
            if (actual != (uint)expected)
            {
                throw new EcgFormatException(recordId, $"lead {name}: CRC-32 of its data is {actual}, LeadDataCRC32 says {(uint)expected}");
            }
        }

        // A count the data cannot hold is caught before the samples are allocated.
        if (bytes.Length < n * 2)
        {
            throw new EcgFormatException(recordId, $"lead {name} holds {bytes.Length / 2} samples, LeadSampleCountTotal says {n}");
        }

        var values = GC.AllocateUninitializedArray<double>((int)n);
        Scale(bytes[..((int)n * 2)], values, gain, times, over);
        return (name, values, unit);
    }

    /// <summary>values[t] = sample t (little-endian int16) * gain * times / over, each step rounded as written.</summary>
    private static void Scale(ReadOnlySpan<byte> bytes, Span<double> values, double gain, double times, double over)
    {
        if (BitConverter.IsLittleEndian)
        {
            SampleScaling.Int16ToDouble(MemoryMarshal.Cast<byte, short>(bytes), values, gain, times, over);
            return;
        }

        for (var t = 0; t < values.Length; t++)
        {
            values[t] = BinaryPrimitives.ReadInt16LittleEndian(bytes[(2 * t)..]) * gain * times / over;
        }
    }

    private static string? Version(XElement root)
    {
        var muse = Text(Child(root, "MuseInfo"), "MuseVersion");
        return muse is null ? "RestingECG" : $"MUSE {Safe(muse)}";
    }

    private static string? Device(XElement root)
    {
        var test = Child(root, "TestDemographics");
        var parts = new List<string>();
        if (Text(test, "AcquisitionDevice") is { } device)
        {
            parts.Add(Safe(device));
        }

        if (Text(test, "AcquisitionSoftwareVersion") is { } software)
        {
            parts.Add($"software {Safe(software)}");
        }

        if ((Text(test, "MachineID") ?? Find(root, "MachineID")?.Value) is { } machine && machine.Trim().Length > 0)
        {
            parts.Add($"machine {Safe(machine)}");
        }

        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    /// <summary>MUSE states the high-pass corner in hundredths of Hz (16 = 0.16 Hz), the low-pass and AC filters in Hz.</summary>
    private static string? Filters(XElement waveform)
    {
        var parts = new List<string>();
        var high = Number(Text(waveform, "HighPassFilter"));
        var low = Number(Text(waveform, "LowPassFilter"));
        if (high is not null || low is not null)
        {
            parts.Add($"{(high is { } h ? Format(h / 100) : "?")}-{(low is { } l ? Format(l) : "?")} Hz");
        }

        if (Text(waveform, "ACFilter") is { } ac)
        {
            parts.Add(Number(ac) is { } hz ? $"AC {Format(hz)} Hz" : $"AC {Safe(ac)}");
        }

        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    private static string Safe(string text)
    {
        var line = new string(text.Where(c => !char.IsControl(c)).ToArray()).Trim();
        return line.Length <= 64 ? line : line[..64];
    }
}

/// <summary>
/// The CRC-32 of MUSE's <c>LeadDataCRC32</c> (IEEE 802.3: reflected polynomial 0xEDB88320, initial and final XOR all
/// ones, as zlib computes it), through System.IO.Hashing, which folds many bytes a step with carry-less multiplication
/// where the processor has it, so that checking a record costs little next to reading it.
/// </summary>
public static class Crc32
{
    public static uint Compute(ReadOnlySpan<byte> data) => System.IO.Hashing.Crc32.HashToUInt32(data);
}
