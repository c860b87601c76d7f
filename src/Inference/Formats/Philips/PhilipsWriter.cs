using System.Globalization;
using System.Text;
using System.Xml;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Philips;

/// <summary>What <see cref="PhilipsWriter"/> writes besides the signal.</summary>
public sealed class PhilipsWriterOptions
{
    /// <summary><c>1.04</c> (PhilipsECG, UTF-16 LE, the default) or <c>1.03</c> (SierraECG, UTF-8).</summary>
    public string Version { get; init; } = "1.04";

    /// <summary>Size of one stored unit (µV).</summary>
    public double ResolutionMicrovolts { get; init; } = 5;

    /// <summary>Also write representative beats (<c>repbeats</c>), which readers of the strip must skip.</summary>
    public bool RepresentativeBeats { get; init; }

    /// <summary>
    /// The patient fields written into the file (synthetic markers: tests check that nothing of them is read out).
    /// </summary>
    public string PatientId { get; init; } = "HUBERTECG-SYNTHETIC-PATIENT";

    public string PatientLastName { get; init; } = "Syntheticlastname";

    public string PatientFirstName { get; init; } = "Syntheticfirstname";

    public string BirthDate { get; init; } = "1901-02-03";
}

/// <summary>
/// Writes Philips XML ECGs as a Philips cart would: the 12 leads as one XLI-compressed strip of up to 10 s followed
/// by a 1 s, 1 mV calibration pulse, III, aVR, aVL and aVF stored as the residuals the format's integer formulas
/// rebuild, in steps of the resolution (5 µV by default, values kept within +-8000 steps so every second difference
/// fits XLI's 16 bits). Reading it back gives the signal's first 10 s quantised to the resolution, exactly.
/// </summary>
public static class PhilipsWriter
{
    private const string Namespace = "http://www3.medical.philips.com";
    private const short Limit = 8000;

    /// <summary>The one file of record <paramref name="recordName"/>: <c>NAME.xml</c>.</summary>
    public static IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName, PhilipsWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(signal);
        options ??= new PhilipsWriterOptions();
        var legacy = options.Version == "1.03";
        if (!legacy && options.Version is not ("1.04" or "1.04.01"))
        {
            throw new ArgumentException($"version {options.Version} is not written here (1.03, 1.04, 1.04.01)", nameof(options));
        }

        var fs = signal.SamplingRate;
        var standard = LeadMapping.ToStandard12(signal);
        var kept = (int)Math.Min(standard.SampleCount, Math.Floor((PhilipsFormat.RecordSeconds * fs) + 1e-6));
        var calibration = (int)Math.Round(PhilipsFormat.CalibrationSeconds * fs);
        var total = kept + calibration;
        var res = options.ResolutionMicrovolts;
        var pulse = (short)Math.Clamp(Math.Round(1000 / res), -Limit, Limit);

        // Each lead digitised, then the calibration pulse: 1 mV from 0.1 s to 0.6 s into the last second.
        var digital = new short[12][];
        for (var lead = 0; lead < 12; lead++)
        {
            var values = new short[total];
            for (var t = 0; t < kept; t++)
            {
                var v = standard.Leads[lead][t];
                values[t] = double.IsFinite(v) ? (short)Math.Clamp(Math.Round(v * 1000 / res), -Limit, Limit) : (short)0;
            }

            for (var t = 0; t < calibration; t++)
            {
                values[kept + t] = t >= calibration / 10 && t < calibration * 6 / 10 ? pulse : (short)0;
            }

            digital[lead] = values;
        }

        var stored = StoreResiduals(digital);
        var xli = new MemoryStream();
        foreach (var lead in stored)
        {
            var chunk = XliCodec.Encode(lead);
            xli.Write(chunk);
        }

        var durationMs = total * 1000 / fs;
        var xml = Document(options, legacy, fs, res, durationMs, xli.ToArray(), digital);
        return new Dictionary<string, byte[]>(StringComparer.Ordinal) { [recordName + PhilipsFormat.Suffix] = xml };
    }

    /// <summary>The leads as stored: I, II and V1-V6 as they are, III/aVR/aVL/aVF as residuals the reader rebuilds.</summary>
    private static short[][] StoreResiduals(short[][] leads)
    {
        var stored = leads.Select(l => (short[])l.Clone()).ToArray();
        short[] i = leads[0], ii = leads[1], iii = leads[2], avr = leads[3], avl = leads[4], avf = leads[5];
        for (var t = 0; t < i.Length; t++)
        {
            stored[2][t] = (short)(ii[t] - i[t] - iii[t]);
            stored[3][t] = (short)(-avr[t] - ((short)(i[t] + ii[t]) >> 1));
            stored[4][t] = (short)(((short)(i[t] - iii[t]) >> 1) - avl[t]);
            stored[5][t] = (short)(((short)(ii[t] + iii[t]) >> 1) - avf[t]);
        }

        return stored;
    }

    private static byte[] Document(PhilipsWriterOptions options, bool legacy, double fs, double res, double durationMs, byte[] xli, short[][] digital)
    {
        var settings = new XmlWriterSettings
        {
            Encoding = legacy ? new UTF8Encoding(false) : new UnicodeEncoding(bigEndian: false, byteOrderMark: true),
            Indent = true,
        };
        using var buffer = new MemoryStream();
        using (var w = XmlWriter.Create(buffer, settings))
        {
            w.WriteStartDocument();
            w.WriteStartElement("restingecgdata", Namespace);
            w.WriteAttributeString("status", "Not yet determined");
            w.WriteAttributeString("lang", "en");

            w.WriteStartElement("documentinfo", Namespace);
            w.WriteElementString("documentname", Namespace, "hubertecg-synthetic.xml");
            w.WriteElementString("documenttype", Namespace, legacy ? "SierraECG" : "PhilipsECG");
            w.WriteElementString("documentversion", Namespace, options.Version);
            w.WriteEndElement();

            w.WriteStartElement("reportinfo", Namespace);
            w.WriteStartElement("reportbandwidth", Namespace);
            w.WriteElementString("highpassfiltersetting", Namespace, "0.05");
            w.WriteElementString("lowpassfiltersetting", Namespace, "150");
            w.WriteElementString("notchfiltersetting", Namespace, "50");
            w.WriteEndElement();
            w.WriteEndElement();

            w.WriteStartElement("dataacquisition", Namespace);
            w.WriteStartElement("machine", Namespace);
            w.WriteAttributeString("machineid", "0001");
            w.WriteAttributeString("detaildescription", "HubertEcg synthetic writer");
            w.WriteString("HubertEcg PhilipsWriter");
            w.WriteEndElement();
            w.WriteStartElement("signalcharacteristics", Namespace);
            w.WriteElementString("samplingrate", Namespace, Text(fs));
            w.WriteElementString(legacy ? "signalresolution" : "resolution", Namespace, Text(res));
            if (legacy)
            {
                w.WriteElementString("signalbandwidth", Namespace, "0.05-150");
            }
            else
            {
                w.WriteElementString("hipass", Namespace, "0.05");
                w.WriteElementString("lowpass", Namespace, "150");
                w.WriteElementString("acsetting", Namespace, "50");
                w.WriteElementString("notchfiltered", Namespace, "False");
            }

            w.WriteElementString("acquisitiontype", Namespace, "STD-12");
            w.WriteElementString("bitspersample", Namespace, "16");
            w.WriteElementString("signaloffset", Namespace, "0");
            w.WriteElementString("signalsigned", Namespace, "True");
            w.WriteElementString("numberchannelsallocated", Namespace, "12");
            w.WriteElementString("numberchannelsvalid", Namespace, "12");
            w.WriteEndElement();
            w.WriteEndElement();

            w.WriteStartElement("patient", Namespace);
            w.WriteStartElement("generalpatientdata", Namespace);
            w.WriteElementString("patientid", Namespace, options.PatientId);
            w.WriteStartElement("name", Namespace);
            w.WriteElementString("lastname", Namespace, options.PatientLastName);
            w.WriteElementString("firstname", Namespace, options.PatientFirstName);
            w.WriteEndElement();
            w.WriteStartElement("age", Namespace);
            w.WriteElementString("dateofbirth", Namespace, options.BirthDate);
            w.WriteEndElement();
            w.WriteElementString("sex", Namespace, "Female");
            w.WriteEndElement();
            w.WriteEndElement();

            w.WriteStartElement("waveforms", Namespace);
            w.WriteStartElement("parsedwaveforms", Namespace);
            if (legacy)
            {
                w.WriteAttributeString("compressflag", "True");
                w.WriteAttributeString("compressmethod", "XLI");
                w.WriteAttributeString("dataencoding", "Base64");
                w.WriteAttributeString("durationperchannel", Text(durationMs));
            }
            else
            {
                w.WriteAttributeString("dataencoding", "Base64");
                w.WriteAttributeString("compression", "XLI");
                w.WriteAttributeString("numberofleads", "12");
                w.WriteAttributeString("leadlabels", string.Join(' ', StandardLeads.Names));
                w.WriteAttributeString("durationperchannel", Text(durationMs));
                w.WriteAttributeString("samplespersecond", Text(fs));
                w.WriteAttributeString("resolution", Text(res));
            }

            w.WriteString(Convert.ToBase64String(xli, Base64FormattingOptions.InsertLineBreaks));
            w.WriteEndElement();
            if (options.RepresentativeBeats)
            {
                RepresentativeBeats(w, legacy, fs, res, digital);
            }

            w.WriteEndElement();
            w.WriteEndElement();
            w.WriteEndDocument();
        }

        return buffer.ToArray();
    }

    /// <summary>One "beat" per lead (its first 1.2 s at half the resolution, plain int16): something a reader must skip.</summary>
    private static void RepresentativeBeats(XmlWriter w, bool legacy, double fs, double res, short[][] digital)
    {
        w.WriteStartElement("repbeats", Namespace);
        w.WriteAttributeString("dataencoding", "Base64");
        w.WriteAttributeString("samplespersec", Text(fs));
        w.WriteAttributeString("resolution", Text(res / 2));
        w.WriteAttributeString("repbeatmethod", "mean");
        var n = Math.Min(digital[0].Length, (int)Math.Round(1.2 * fs));
        for (var lead = 0; lead < 12; lead++)
        {
            var bytes = new byte[2 * n];
            for (var t = 0; t < n; t++)
            {
                BitConverter.TryWriteBytes(bytes.AsSpan(2 * t), (short)(digital[lead][t] * 2));
            }

            w.WriteStartElement("repbeat", Namespace);
            w.WriteAttributeString("leadname", StandardLeads.Names[lead]);
            if (!legacy)
            {
                w.WriteElementString("pdur", Namespace, "100");
                w.WriteStartElement("waveform", Namespace);
            }

            w.WriteAttributeString("duration", Text(n * 1000 / fs));
            w.WriteString(Convert.ToBase64String(bytes, Base64FormattingOptions.InsertLineBreaks));
            if (!legacy)
            {
                w.WriteEndElement();
            }

            w.WriteEndElement();
        }

        w.WriteEndElement();
    }

    private static string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>Philips XML as the registry's writer: PhilipsECG 1.04 (UTF-16 LE), XLI, 5 µV.</summary>
public sealed class PhilipsRecordWriter : IRecordWriter
{
    public string Name => PhilipsFormat.FormatName;

    public IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName) => PhilipsWriter.Write(signal, recordName);
}
