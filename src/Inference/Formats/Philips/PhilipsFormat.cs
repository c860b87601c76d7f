using System.Buffers.Binary;
using System.Numerics;
using System.Xml.Linq;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.IO;
using static HubertEcg.Inference.Formats.XmlRecordFile;

namespace HubertEcg.Inference.Formats.Philips;

/// <summary>
/// Philips resting ECGs as XML (root <c>restingecgdata</c>): SierraECG 1.03 (8-bit text) and PhilipsECG 1.04 and
/// 1.04.01/1.04.02 (UTF-16 LE). The strip in <c>parsedwaveforms</c> (base64, usually XLI-compressed, see
/// <see cref="XliCodec"/>) is 11 s whose last second is a 1 mV calibration pulse, so the record is its first 10 s
/// (and never the pulse: a shorter strip loses its last second). III, aVR, aVL and aVF are stored as residuals
/// and rebuilt with the format's integer formulas; samples are in steps of the file's resolution (µV).
/// Representative beats are not read. Patient data is never read out.
/// </summary>
public sealed class PhilipsFormat : IRecordFormat
{
    public const string Suffix = ".xml";

    public const string FormatName = "philips";

    /// <summary>The root element of every Philips XML ECG.</summary>
    public const string RootName = "restingecgdata";

    /// <summary>Longest strip read (s): resting strips are 10-11 s; the bound keeps corrupt durations from allocating.</summary>
    public const double MaxStripSeconds = 600;

    /// <summary>Most samples a lead may declare (the bound on what one lead decompresses to).</summary>
    public const int MaxSamplesPerLead = 1 << 20;

    /// <summary>Length of the calibration pulse ending each strip (s), and the most a record keeps (s).</summary>
    public const double CalibrationSeconds = 1, RecordSeconds = 10;

    // The strip is decoded while the document is read, never held as text.
    private static readonly HashSet<string> Base64Elements = new(StringComparer.Ordinal) { "parsedwaveforms" };

    private static readonly string[] LimbLeads = ["I", "II", "III", "aVR", "aVL", "aVF"];

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

    /// <summary>Reads a Philips record from an XML stream (the whole file).</summary>
    public static EcgRecord Read(Stream stream, string recordId) =>
        XmlRecordFile.Read(stream, recordId, Base64Elements, document => Read(document, recordId));

    private static EcgRecord Read(XDocument document, string recordId)
    {
        var root = document.Root;
        if (root is null || root.Name.LocalName != RootName)
        {
            throw new EcgFormatException(recordId, $"root element is {root?.Name.LocalName ?? "missing"}, not {RootName}");
        }

        var info = Child(root, "documentinfo");
        var type = Text(info, "documenttype");
        var version = Text(info, "documentversion")
            ?? throw new EcgFormatException(recordId, "documentinfo/documentversion is missing");
        if (version is not ("1.03" or "1.04" or "1.04.01" or "1.04.02"))
        {
            throw new EcgFormatException(recordId, $"document version {Safe(version)} is not one this reader knows (1.03, 1.04, 1.04.01, 1.04.02)");
        }

        var acquisition = Child(root, "dataacquisition");
        var signal = Child(acquisition, "signalcharacteristics");
        var waveforms = Find(root, "parsedwaveforms")
            ?? throw new EcgFormatException(recordId, "no parsedwaveforms element");

        var rate = Number(Text(signal, "samplingrate") ?? Attribute(waveforms, "samplespersecond"));
        if (rate is not { } fs || fs <= 0 || fs > 100_000)
        {
            throw new EcgFormatException(recordId, "sampling rate (signalcharacteristics/samplingrate) is missing or not a positive number up to 100 kHz");
        }

        var resolution = Number(Text(signal, "signalresolution") ?? Text(signal, "resolution") ?? Attribute(waveforms, "resolution"));
        if (resolution is not { } uvPerUnit || uvPerUnit <= 0)
        {
            throw new EcgFormatException(recordId, "resolution (signalresolution or resolution, in µV) is missing or not positive");
        }

        var duration = Number(Attribute(waveforms, "durationperchannel"));
        if (duration is not { } ms || ms <= 0 || ms > MaxStripSeconds * 1000)
        {
            throw new EcgFormatException(recordId, $"durationperchannel is missing or outside 0-{MaxStripSeconds * 1000} ms");
        }

        // A hair of tolerance: a duration in ms at an odd rate is rounded in the file.
        var declared = (int)Math.Floor((ms * fs / 1000) + 1e-6);
        var kept = (int)Math.Floor((Math.Min(RecordSeconds, (ms / 1000) - CalibrationSeconds) * fs) + 1e-6);
        if (declared > MaxSamplesPerLead)
        {
            throw new EcgFormatException(recordId, $"durationperchannel {Format(ms)} ms at {Format(fs)} Hz is {declared} samples per lead, more than the {MaxSamplesPerLead} read");
        }

        if (kept < 1)
        {
            throw new EcgFormatException(recordId, $"a strip of {Format(ms)} ms leaves no signal before its {CalibrationSeconds} s calibration pulse");
        }

        var labels = Labels(waveforms, signal, recordId);
        var encoding = Attribute(waveforms, "dataencoding") ?? "Base64";
        if (!string.Equals(encoding, "Base64", StringComparison.OrdinalIgnoreCase))
        {
            throw new EcgFormatException(recordId, $"parsedwaveforms data encoding {Safe(encoding)} is not supported (Base64)");
        }

        var compression = Compression(waveforms, recordId);
        var data = Binary(waveforms) is { } decoded ? decoded.Span : Base64(waveforms.Value, recordId, "parsedwaveforms");
        short[][] stored;
        if (compression == "XLI")
        {
            stored = XliCodec.Decode(data, labels.Count, declared, recordId);
        }
        else
        {
            stored = Uncompressed(data, labels.Count, declared, recordId);
        }

        for (var lead = 0; lead < stored.Length; lead++)
        {
            if (stored[lead].Length < kept)
            {
                throw new EcgFormatException(recordId, $"lead {labels[lead]} holds {stored[lead].Length} samples, fewer than the {kept} of the first {Format(kept / fs)} s");
            }
        }

        RebuildLimbLeads(labels, stored, recordId);
        var scale = uvPerUnit / 1000;
        var leads = new double[stored.Length][];
        for (var lead = 0; lead < stored.Length; lead++)
        {
            var values = GC.AllocateUninitializedArray<double>(kept);
            SampleScaling.Int16ToDouble(stored[lead].AsSpan(0, kept), values, scale);
            leads[lead] = values;
        }

        var units = Enumerable.Repeat("mV", leads.Length).ToList();
        return new EcgRecord
        {
            Format = FormatName,
            Container = $"{(compression == "XLI" ? "XLI-compressed" : "uncompressed")} strip, {labels.Count} leads x {declared} samples at {Format(fs)} Hz, {Format(uvPerUnit)} µV; first {Format(kept / fs)} s kept (calibration pulse dropped)",
            Signal = new EcgSignal(recordId, fs, labels, leads),
            Units = units,
            SourceUnits = Enumerable.Repeat("uV", leads.Length).ToList(),
            Description = new RecordDescription(
                $"{Safe(type ?? "Philips")} {version}",
                Device(acquisition),
                Filters(root, signal, waveforms)),
        };
    }

    /// <summary>
    /// The residual limb leads rebuilt in place, as the format stores them (floor division, 16-bit wrap):
    /// III = II - I - r3, aVR = -r4 - floor((I + II) / 2), aVL = floor((I - III) / 2) - r5,
    /// aVF = floor((II + III) / 2) - r6, with III already rebuilt.
    /// </summary>
    private static void RebuildLimbLeads(List<string> labels, short[][] leads, string recordId)
    {
        var residuals = labels.Count(l => LimbLeads.AsSpan(2).Contains(l));
        if (residuals == 0)
        {
            return;
        }

        if (labels.Count < LimbLeads.Length || !labels.Take(LimbLeads.Length).SequenceEqual(LimbLeads, StringComparer.Ordinal))
        {
            throw new EcgFormatException(recordId, $"leads {string.Join(' ', labels.Take(LimbLeads.Length))} do not begin with I II III aVR aVL aVF, which the stored residuals need");
        }

        short[] i = leads[0], ii = leads[1], iii = leads[2], avr = leads[3], avl = leads[4], avf = leads[5];
        var n = new[] { i.Length, ii.Length, iii.Length, avr.Length, avl.Length, avf.Length }.Min();
        var t = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // The same 16-bit operations, several samples a step: sums and differences wrap, >> 1 is arithmetic.
            for (; t + Vector<short>.Count <= n; t += Vector<short>.Count)
            {
                var a = new Vector<short>(i, t);
                var b = new Vector<short>(ii, t);
                var c = b - a - new Vector<short>(iii, t);
                c.CopyTo(iii, t);
                (-new Vector<short>(avr, t) - Vector.ShiftRightArithmetic(a + b, 1)).CopyTo(avr, t);
                (Vector.ShiftRightArithmetic(a - c, 1) - new Vector<short>(avl, t)).CopyTo(avl, t);
                (Vector.ShiftRightArithmetic(b + c, 1) - new Vector<short>(avf, t)).CopyTo(avf, t);
            }
        }

        for (; t < n; t++)
        {
            iii[t] = (short)(ii[t] - i[t] - iii[t]);
            avr[t] = (short)(-avr[t] - ((short)(i[t] + ii[t]) >> 1));
            avl[t] = (short)(((short)(i[t] - iii[t]) >> 1) - avl[t]);
            avf[t] = (short)(((short)(ii[t] + iii[t]) >> 1) - avf[t]);
        }
    }

    private static List<string> Labels(XElement waveforms, XElement? signal, string recordId)
    {
        var text = Attribute(waveforms, "leadlabels");
        if (text is not null)
        {
            var labels = text.Split([' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries).ToList();
            if (Integer(Attribute(waveforms, "numberofleads")) is { } count)
            {
                if (count < 1 || count > labels.Count)
                {
                    throw new EcgFormatException(recordId, $"numberofleads {count} does not match the {labels.Count} lead labels");
                }

                labels = labels.Take((int)count).ToList();
            }

            return labels.Select(Safe).ToList();
        }

        // 1.03: no labels; the channel count and the lead set name them.
        var channels = Integer(Text(signal, "numberchannelsallocated") ?? Attribute(waveforms, "numberofleads"));
        if (channels is not { } c || c < 1 || c > 64)
        {
            throw new EcgFormatException(recordId, "number of channels (numberchannelsallocated) is missing or outside 1-64");
        }

        var leadSet = Text(signal, "acquisitiontype") ?? Text(signal, "leadset");
        var standard = leadSet is not null && (leadSet.Equals("STD-12", StringComparison.OrdinalIgnoreCase) || leadSet.Equals("10-WIRE", StringComparison.OrdinalIgnoreCase));
        return Enumerable.Range(0, (int)c)
            .Select(k => standard && k < StandardLeads.Names.Count ? StandardLeads.Names[k] : $"Channel {k + 1}")
            .ToList();
    }

    private static string Compression(XElement waveforms, string recordId)
    {
        // 1.04: compression="XLI"; 1.03: compressflag="True" compressmethod="XLI".
        var method = Attribute(waveforms, "compression");
        if (method is null && Attribute(waveforms, "compressflag") is { } flag)
        {
            method = bool.TryParse(flag, out var compressed) && !compressed ? "None" : Attribute(waveforms, "compressmethod") ?? "XLI";
        }

        method ??= "None";
        return method.ToUpperInvariant() switch
        {
            "XLI" => "XLI",
            "NONE" or "UNCOMPRESSED" => "None",
            _ => throw new EcgFormatException(recordId, $"parsedwaveforms compression {Safe(method)} is not supported (XLI or none)"),
        };
    }

    private static short[][] Uncompressed(ReadOnlySpan<byte> data, int leadCount, int samples, string recordId)
    {
        if ((long)leadCount * samples * 2 > data.Length)
        {
            throw new EcgFormatException(recordId, $"uncompressed parsedwaveforms hold {data.Length} bytes, fewer than {leadCount} leads x {samples} samples");
        }

        var leads = new short[leadCount][];
        for (var lead = 0; lead < leadCount; lead++)
        {
            var values = GC.AllocateUninitializedArray<short>(samples);
            for (var t = 0; t < samples; t++)
            {
                values[t] = BinaryPrimitives.ReadInt16LittleEndian(data[(((lead * samples) + t) * 2)..]);
            }

            leads[lead] = values;
        }

        return leads;
    }

    private static string? Device(XElement? acquisition)
    {
        var machine = Child(acquisition, "machine");
        var model = machine?.Value.Trim();
        var detail = Attribute(machine, "detaildescription");
        var parts = new[] { model, detail is null ? null : $"({detail})" }.Where(p => !string.IsNullOrEmpty(p)).Select(p => Safe(p!));
        var device = string.Join(' ', parts);
        return device.Length == 0 ? null : device;
    }

    private static string? Filters(XElement root, XElement? signal, XElement waveforms)
    {
        var parts = new List<string>();
        var high = Text(signal, "hipass") ?? Attribute(waveforms, "hipass");
        var low = Text(signal, "lowpass") ?? Attribute(waveforms, "lowpass");
        if (high is not null || low is not null)
        {
            parts.Add($"{Safe(high ?? "?")}-{Safe(low ?? "?")} Hz");
        }
        else if (Text(signal, "signalbandwidth") is { } band)
        {
            parts.Add($"{Safe(band)} Hz");
        }

        if (string.Equals(Text(signal, "notchfiltered") ?? Attribute(waveforms, "notchfiltered"), "True", StringComparison.OrdinalIgnoreCase))
        {
            var notch = Text(signal, "notchfilterfreqs") ?? Attribute(waveforms, "notchfilterfreqs") ?? Text(signal, "acsetting");
            parts.Add($"notch {Safe(notch ?? "?")} Hz");
        }

        var report = Find(Child(root, "reportinfo"), "reportbandwidth");
        if (report is not null)
        {
            var rh = Text(report, "highpassfiltersetting");
            var rl = Text(report, "lowpassfiltersetting");
            var rn = Text(report, "notchfiltersetting");
            var text = new List<string>();
            if (rh is not null || rl is not null)
            {
                text.Add($"{Safe(rh ?? "?")}-{Safe(rl ?? "?")} Hz");
            }

            if (rn is not null)
            {
                text.Add($"notch {Safe(rn)} Hz");
            }

            if (text.Count > 0)
            {
                parts.Add("report " + string.Join(", ", text));
            }
        }

        return parts.Count == 0 ? null : string.Join("; ", parts);
    }

    // Text from the file that goes into a reason or description: short, one line.
    private static string Safe(string text)
    {
        var line = new string(text.Where(c => !char.IsControl(c)).ToArray()).Trim();
        return line.Length <= 64 ? line : line[..64];
    }
}
