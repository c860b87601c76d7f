using System.Globalization;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Aecg;

/// <summary>How <see cref="AecgWriter"/> encodes a record; the defaults are those of a resting-ECG cart's aECG export.</summary>
public sealed record AecgWriterOptions
{
    /// <summary>Store all 12 leads instead of I, II and V1-V6 (the default, as most carts' aECG exports do).</summary>
    public bool AllTwelveLeads { get; init; }

    /// <summary>
    /// The digits' scale in µV. 1 µV (the default) keeps the signal below its noise (carts use 1 to 5 µV) while the
    /// digits stay short: a 10 s, 8-lead record is ~200 KB.
    /// </summary>
    public double ScaleMicrovolts { get; init; } = 1.0;

    /// <summary>The origin in µV (0 in every export seen; other values test the reader's arithmetic).</summary>
    public double OriginMicrovolts { get; init; }

    /// <summary>The unit of the time increment: <c>s</c> (the default) or <c>ms</c>.</summary>
    public string IncrementUnit { get; init; } = "s";

    /// <summary>Digits per line (line breaks inside <c>digits</c> as carts write them).</summary>
    public int DigitsPerLine { get; init; } = 25;
}

/// <summary>
/// Writes a signal as an HL7 aECG document (<c>NAME.xml</c>, UTF-8): one <c>RHYTHM</c> series whose sequence set holds
/// a <c>TIME_ABSOLUTE</c> <c>GLIST_TS</c> and one <c>SLIST_PQ</c> per lead (MDC codes), with the device and filter
/// settings as control variables. No subject, no patient: the document's subject elements are left out.
/// </summary>
public sealed class AecgWriter(AecgWriterOptions? options = null) : IRecordWriter
{
    private static readonly string[] EightLeads = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"];

    private readonly AecgWriterOptions _options = options ?? new AecgWriterOptions();

    public string Name => "aecg";

    public IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName)
    {
        ArgumentNullException.ThrowIfNull(signal);
        return new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [recordName + AecgFormat.Suffix] = new UTF8Encoding(false).GetBytes(Document(signal, recordName)),
        };
    }

    /// <summary>The document's text.</summary>
    public string Document(EcgSignal signal, string recordName)
    {
        ArgumentNullException.ThrowIfNull(signal);
        var o = _options;
        var inv = CultureInfo.InvariantCulture;
        var increment = (o.IncrementUnit == "ms" ? 1000.0 : 1.0) / signal.SamplingRate;
        var text = new StringBuilder(64 + (signal.SampleCount * signal.Leads.Length * 6));
        text.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        text.Append("<AnnotatedECG xmlns=\"urn:hl7-org:v3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n");
        text.Append(inv, $"  <id root=\"{Guid(recordName)}\"/>\n");
        text.Append("  <code code=\"93000\" codeSystem=\"2.16.840.1.113883.6.12\" codeSystemName=\"CPT-4\"/>\n");
        text.Append("  <effectiveTime><center value=\"20000101000000\"/></effectiveTime>\n");
        text.Append("  <component>\n    <series>\n");
        text.Append("      <code code=\"RHYTHM\" codeSystem=\"2.16.840.1.113883.5.4\" codeSystemName=\"ActCode\" displayName=\"Rhythm Waveforms\"/>\n");
        text.Append("      <author><seriesAuthor><manufacturedSeriesDevice><manufacturerModelName>synthetic</manufacturerModelName></manufacturedSeriesDevice>");
        text.Append("<manufacturerOrganization><name>HubertEcg</name></manufacturerOrganization></seriesAuthor></author>\n");
        Filter(text, "MDC_ECG_CTL_VBL_ATTR_FILTER_HIGH_PASS", "MDC_ECG_CTL_VBL_ATTR_FILTER_CUTOFF_FREQ", "0.05");
        Filter(text, "MDC_ECG_CTL_VBL_ATTR_FILTER_LOW_PASS", "MDC_ECG_CTL_VBL_ATTR_FILTER_CUTOFF_FREQ", "150");
        text.Append("      <component>\n        <sequenceSet>\n");
        text.Append("          <component><sequence><code code=\"TIME_ABSOLUTE\" codeSystem=\"2.16.840.1.113883.5.4\"/>");
        text.Append(inv, $"<value xsi:type=\"GLIST_TS\"><head value=\"20000101000000.000\"/><increment value=\"{increment:R}\" unit=\"{o.IncrementUnit}\"/></value></sequence></component>\n");
        var scaleMv = o.ScaleMicrovolts / 1000.0;
        var originMv = o.OriginMicrovolts / 1000.0;
        for (var lead = 0; lead < signal.LeadNames.Count; lead++)
        {
            var name = signal.LeadNames[lead];
            if (!o.AllTwelveLeads && !EightLeads.Contains(name, StringComparer.Ordinal))
            {
                continue;
            }

            text.Append(inv, $"          <component><sequence><code code=\"{LeadCodes.MdcCode(name)}\" codeSystem=\"2.16.840.1.113883.6.24\" codeSystemName=\"MDC\"/>");
            text.Append(inv, $"<value xsi:type=\"SLIST_PQ\"><origin value=\"{o.OriginMicrovolts:R}\" unit=\"uV\"/><scale value=\"{o.ScaleMicrovolts:R}\" unit=\"uV\"/>\n<digits>");
            var values = signal.Leads[lead];
            for (var t = 0; t < values.Length; t++)
            {
                text.Append(t % o.DigitsPerLine == 0 ? '\n' : ' ');
                text.Append((long)Math.Round((values[t] - originMv) / scaleMv));
            }

            text.Append("\n</digits></value></sequence></component>\n");
        }

        text.Append("        </sequenceSet>\n      </component>\n    </series>\n  </component>\n</AnnotatedECG>\n");
        return text.ToString();
    }

    private static void Filter(StringBuilder text, string filter, string setting, string hz)
    {
        text.Append(CultureInfo.InvariantCulture, $"      <controlVariable><controlVariable><code code=\"{filter}\" codeSystem=\"2.16.840.1.113883.6.24\"/>");
        text.Append(CultureInfo.InvariantCulture, $"<component><controlVariable><code code=\"{setting}\" codeSystem=\"2.16.840.1.113883.6.24\"/><value xsi:type=\"PQ\" value=\"{hz}\" unit=\"Hz\"/></controlVariable></component></controlVariable></controlVariable>\n");
    }

    /// <summary>A document id stable for a record name, so the same record writes the same bytes.</summary>
    private static string Guid(string recordName)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(recordName));
        return new System.Guid(hash.AsSpan(0, 16)).ToString();
    }
}
