using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Xml;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Muse;

/// <summary>What <see cref="MuseWriter"/> writes besides the signal.</summary>
public sealed class MuseWriterOptions
{
    /// <summary>Size of one stored unit, in <see cref="Units"/> (GE carts store 4.88 µV).</summary>
    public double UnitsPerBit { get; init; } = 4.88;

    /// <summary><c>MICROVOLTS</c> (the default) or <c>MILLIVOLTS</c>.</summary>
    public string Units { get; init; } = "MICROVOLTS";

    /// <summary>Write each lead's <c>LeadDataCRC32</c> (older exports have none).</summary>
    public bool Crc { get; init; } = true;

    /// <summary>The leads of the Rhythm waveform, by standard name (a cart stores I, II and V1-V6).</summary>
    public IReadOnlyList<string> Leads { get; init; } = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"];

    /// <summary>Patient fields written into the file (synthetic markers: tests check that none of them is read out).</summary>
    public string PatientId { get; init; } = "HUBERTECG-SYNTHETIC-PATIENT";

    public string PatientLastName { get; init; } = "Syntheticlastname";

    public string PatientFirstName { get; init; } = "Syntheticfirstname";

    public string BirthDate { get; init; } = "02-03-1901";
}

/// <summary>
/// Writes GE MUSE XML ECGs as MUSE exports them: ISO-8859-1 with the <c>restecg.dtd</c> DOCTYPE, a Median waveform
/// (the first 0.6 s of each lead standing in for the median beat) and the Rhythm waveform with the whole signal at
/// its own rate (<c>SampleBase</c>, exponent 0), each lead base64 with line breaks of little-endian int16 in steps of
/// 4.88 µV, with its CRC-32. Reading it back gives the signal quantised to the step, exactly.
/// </summary>
public static class MuseWriter
{
    /// <summary>The one file of record <paramref name="recordName"/>: <c>NAME.xml</c>.</summary>
    public static IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName, MuseWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(signal);
        options ??= new MuseWriterOptions();
        var standard = LeadMapping.ToStandard12(signal);
        var perMv = options.Units.ToUpperInvariant() switch
        {
            "MICROVOLTS" => 1000.0,
            "MILLIVOLTS" => 1.0,
            _ => throw new ArgumentException($"units {options.Units} are not written here", nameof(options)),
        };
        var leads = options.Leads
            .Select(name => (Name: name, Values: Digitise(standard.Leads[IndexOf(name)], perMv / options.UnitsPerBit)))
            .ToList();

        var settings = new XmlWriterSettings { Encoding = Encoding.Latin1, Indent = true };
        using var buffer = new MemoryStream();
        using (var w = XmlWriter.Create(buffer, settings))
        {
            w.WriteStartDocument();
            w.WriteDocType("RestingECG", null, "restecg.dtd", null);
            w.WriteStartElement("RestingECG");
            w.WriteStartElement("MuseInfo");
            w.WriteElementString("MuseVersion", "9.0.9.18167");
            w.WriteEndElement();

            w.WriteStartElement("PatientDemographics");
            w.WriteElementString("PatientID", options.PatientId);
            w.WriteElementString("DateofBirth", options.BirthDate);
            w.WriteElementString("Gender", "FEMALE");
            w.WriteElementString("PatientLastName", options.PatientLastName);
            w.WriteElementString("PatientFirstName", options.PatientFirstName);
            w.WriteEndElement();

            w.WriteStartElement("TestDemographics");
            w.WriteElementString("DataType", "RESTING");
            w.WriteElementString("AcquisitionDevice", "HubertEcg MuseWriter");
            w.WriteElementString("AcquisitionSoftwareVersion", "1");
            w.WriteEndElement();

            var median = (int)Math.Min(standard.SampleCount, Math.Round(0.6 * signal.SamplingRate));
            Waveform(w, "Median", signal.SamplingRate, leads.Select(l => (l.Name, l.Values[..median])), options);
            Waveform(w, "Rhythm", signal.SamplingRate, leads, options);
            w.WriteEndElement();
            w.WriteEndDocument();
        }

        return new Dictionary<string, byte[]>(StringComparer.Ordinal) { [recordName + MuseFormat.Suffix] = buffer.ToArray() };
    }

    private static void Waveform(XmlWriter w, string type, double fs, IEnumerable<(string Name, short[] Values)> leads, MuseWriterOptions options)
    {
        var list = leads.ToList();
        w.WriteStartElement("Waveform");
        w.WriteElementString("WaveformType", type);
        w.WriteElementString("WaveformStartTime", "0");
        w.WriteElementString("NumberofLeads", Text(list.Count));
        w.WriteElementString("SampleType", "CONTINUOUS_SAMPLES");
        w.WriteElementString("SampleBase", Text(fs));
        w.WriteElementString("SampleExponent", "0");
        w.WriteElementString("HighPassFilter", "5");
        w.WriteElementString("LowPassFilter", "150");
        w.WriteElementString("ACFilter", "50");
        foreach (var (name, values) in list)
        {
            var bytes = new byte[values.Length * 2];
            for (var t = 0; t < values.Length; t++)
            {
                BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(2 * t), values[t]);
            }

            w.WriteStartElement("LeadData");
            w.WriteElementString("LeadByteCountTotal", Text(bytes.Length));
            w.WriteElementString("LeadTimeOffset", "0");
            w.WriteElementString("LeadSampleCountTotal", Text(values.Length));
            w.WriteElementString("LeadAmplitudeUnitsPerBit", Text(options.UnitsPerBit));
            w.WriteElementString("LeadAmplitudeUnits", options.Units);
            w.WriteElementString("LeadHighLimit", "32767");
            w.WriteElementString("LeadLowLimit", "-32768");
            w.WriteElementString("LeadID", name);
            w.WriteElementString("LeadOffsetFirstSample", "0");
            w.WriteElementString("FirstSampleBaseline", "0");
            w.WriteElementString("LeadSampleSize", "2");
            w.WriteElementString("LeadOff", "FALSE");
            w.WriteElementString("BaselineSway", "FALSE");
            if (options.Crc)
            {
                w.WriteElementString("LeadDataCRC32", Crc32.Compute(bytes).ToString(CultureInfo.InvariantCulture));
            }

            w.WriteElementString("WaveFormData", Convert.ToBase64String(bytes, Base64FormattingOptions.InsertLineBreaks));
            w.WriteEndElement();
        }

        w.WriteEndElement();
    }

    private static short[] Digitise(double[] lead, double unitsPerMv)
    {
        var values = new short[lead.Length];
        for (var t = 0; t < lead.Length; t++)
        {
            values[t] = double.IsFinite(lead[t]) ? (short)Math.Clamp(Math.Round(lead[t] * unitsPerMv), -32767, 32767) : (short)0;
        }

        return values;
    }

    private static int IndexOf(string lead)
    {
        var index = StandardLeads.Names.ToList().IndexOf(LeadMapping.StandardName(lead) ?? lead);
        return index >= 0 ? index : throw new ArgumentException($"{lead} is not a standard lead");
    }

    private static string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>GE MUSE XML as the registry's writer: I, II and V1-V6 at 4.88 µV, with CRC-32.</summary>
public sealed class MuseRecordWriter : IRecordWriter
{
    public string Name => MuseFormat.FormatName;

    public IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName) => MuseWriter.Write(signal, recordName);
}
