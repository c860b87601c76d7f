using System.Buffers.Binary;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Scp;

/// <summary>
/// Reference beat subtraction for <see cref="ScpWriter"/>: the QRS fiducials (sample numbers from 1), the reference
/// beat window around each, the subtraction and protected zones, and an optional bimodal decimation factor.
/// </summary>
/// <param name="Fiducials">QRS fiducial samples (1-based, increasing); every QRS is of type 0 (the reference beat's).</param>
/// <param name="BeatBefore">Samples of the reference beat before its fiducial.</param>
/// <param name="BeatAfter">Samples of the reference beat after its fiducial.</param>
/// <param name="SubtractBefore">Subtraction zone: samples before each fiducial (at most <paramref name="BeatBefore"/>).</param>
/// <param name="SubtractAfter">Subtraction zone: samples after each fiducial (at most <paramref name="BeatAfter"/>).</param>
/// <param name="ProtectBefore">Protected zone: samples before each fiducial.</param>
/// <param name="ProtectAfter">Protected zone: samples after each fiducial.</param>
/// <param name="Decimation">Bimodal compression: outside protected zones one value per this many samples (1: none).</param>
public sealed record ScpReferenceBeatOptions(
    IReadOnlyList<int> Fiducials,
    int BeatBefore = 100,
    int BeatAfter = 199,
    int SubtractBefore = 40,
    int SubtractAfter = 60,
    int ProtectBefore = 50,
    int ProtectAfter = 80,
    int Decimation = 1);

/// <summary>
/// How <see cref="ScpWriter"/> encodes a record. The defaults are what carts usually write: the default Huffman table,
/// second differences, the 8 independent leads I, II, V1-V6.
/// </summary>
public sealed record ScpWriterOptions
{
    /// <summary>Huffman tables written to section 2 and used for sections 5 and 6; null writes no section 2 (16-bit values).</summary>
    public ScpHuffmanTables? Huffman { get; init; } = ScpHuffmanTables.Default;

    /// <summary>Difference encoding: 0 none, 1 first differences, 2 second differences.</summary>
    public int DifferenceEncoding { get; init; } = 2;

    /// <summary>Amplitude value multiplier in nV per unit (1000 nV = 1 µV, finer than the 5 µV carts often use).</summary>
    public ushort AmplitudeNanovolts { get; init; } = 1000;

    /// <summary>Store all 12 leads (III, aVR, aVL, aVF as SCP leads 61-64) instead of I, II, V1-V6.</summary>
    public bool AllTwelveLeads { get; init; }

    /// <summary>Reference beat subtraction (sections 4 and 5) and, with a decimation factor above 1, bimodal compression.</summary>
    public ScpReferenceBeatOptions? ReferenceBeat { get; init; }
}

/// <summary>
/// Writes SCP-ECG 2.0 records (EN 1064:2005) from signals in mV: section 0 (pointers to sections 0-11), a minimal
/// section 1 (an empty patient id, tag 2, which the standard requires; the acquiring device, tag 14, as "HubertEcg
/// synth"; a placeholder date and time, tags 25 and 26; no other patient data), section 2 (Huffman tables; absent when
/// none are used), section 3 (leads, all sample 1 to N), sections 4 and 5 when reference beat subtraction is used, and
/// section 6 (rhythm data). Samples are 16-bit: the signal is rounded to the AVM and clamped to ±32767.
/// </summary>
public static class ScpWriter
{
    private static readonly string[] EightLeads = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"];
    private static readonly string[] TwelveLeads = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF"];

    /// <summary>The bytes of an SCP-ECG file holding <paramref name="signal"/> (its standard leads, found by name).</summary>
    public static byte[] Write(EcgSignal signal, ScpWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(signal);
        options ??= new ScpWriterOptions();
        if (options.DifferenceEncoding is < 0 or > 2)
        {
            throw new ArgumentException($"difference encoding {options.DifferenceEncoding} is none of 0, 1, 2", nameof(options));
        }

        var interval = 1e6 / signal.SamplingRate;
        if (Math.Abs(interval - Math.Round(interval)) > 1e-9 || interval < 1 || interval > ushort.MaxValue)
        {
            throw new ArgumentException($"{signal.SamplingRate} Hz has no whole sample interval in microseconds", nameof(signal));
        }

        var names = options.AllTwelveLeads ? TwelveLeads : EightLeads;
        var samples = signal.SampleCount;
        var avm = options.AmplitudeNanovolts;
        var digital = names.Select(name =>
        {
            var index = signal.LeadNames.ToList().IndexOf(name);
            if (index < 0)
            {
                throw new ArgumentException($"the signal has no lead {name}", nameof(signal));
            }

            return signal.Leads[index].Select(v => (int)Math.Clamp(Math.Round(v * 1e6 / avm), -32767, 32767)).ToArray();
        }).ToArray();

        var sections = new SortedDictionary<int, byte[]>
        {
            [1] = Section1(),
            [3] = Section3(names, samples, options.ReferenceBeat is not null),
        };
        if (options.Huffman is { } huffman)
        {
            sections[2] = huffman.Serialise();
        }

        var rhythmInterval = (ushort)Math.Round(interval);
        var stored = digital;
        var bimodal = false;
        if (options.ReferenceBeat is { } beat)
        {
            var (section4, section5, residuals, protectedZones) = ReferenceBeat(digital, beat, samples, rhythmInterval, avm, options);
            sections[4] = section4;
            sections[5] = section5;
            stored = residuals;
            if (beat.Decimation > 1)
            {
                bimodal = true;
                stored = residuals.Select(r => Decimate(r, protectedZones, beat.Decimation)).ToArray();
                rhythmInterval = (ushort)checked(rhythmInterval * beat.Decimation);
            }
        }

        sections[6] = LeadData(stored, avm, rhythmInterval, options.DifferenceEncoding, bimodal ? (byte)1 : (byte)0, options.Huffman);
        return Assemble(sections);
    }

    /// <summary>Differences of a lead as EN 1064 5.7.2 defines them, wrapped to 16 bits (the reader sums them alike).</summary>
    internal static int[] Difference(int[] values, int encoding)
    {
        var result = new int[values.Length];
        for (var t = 0; t < values.Length; t++)
        {
            result[t] = encoding switch
            {
                1 when t >= 1 => (short)(values[t] - values[t - 1]),
                2 when t >= 2 => (short)(values[t] - (2 * values[t - 1]) + values[t - 2]),
                _ => values[t],
            };
        }

        return result;
    }

    /// <summary>Section 5 or 6's data: AVM, interval, encoding, a flag byte, per lead byte counts, then each lead's bytes.</summary>
    private static byte[] LeadData(int[][] leads, ushort avm, ushort interval, int encoding, byte flag, ScpHuffmanTables? huffman)
    {
        var coded = leads.Select(lead =>
        {
            var values = Difference(lead, encoding);
            if (huffman is null)
            {
                var raw = new byte[values.Length * 2];
                for (var t = 0; t < values.Length; t++)
                {
                    BinaryPrimitives.WriteInt16LittleEndian(raw.AsSpan(2 * t), (short)values[t]);
                }

                return raw;
            }

            var writer = new ScpBitWriter();
            huffman.Encode(values, writer);
            return writer.ToArray();
        }).ToArray();

        var data = new List<byte>();
        Add16(data, avm);
        Add16(data, interval);
        data.Add((byte)encoding);
        data.Add(flag);
        foreach (var lead in coded)
        {
            if (lead.Length > ushort.MaxValue)
            {
                throw new ArgumentException($"a lead codes to {lead.Length} bytes, more than SCP-ECG's 16-bit byte count holds", nameof(leads));
            }

            Add16(data, (ushort)lead.Length);
        }

        foreach (var lead in coded)
        {
            data.AddRange(lead);
        }

        return data.ToArray();
    }

    /// <summary>
    /// Sections 4 and 5 and the residual rhythm: the reference beat is each lead's mean (rounded) over the windows
    /// around every fiducial; it is subtracted in each subtraction zone, sample s of a zone taking reference sample
    /// fiducial(ref) - (F - s), as the reader adds it back (EN 1064 5.8).
    /// </summary>
    private static (byte[] Section4, byte[] Section5, int[][] Residuals, (long Start, long End)[] Protected) ReferenceBeat(
        int[][] digital, ScpReferenceBeatOptions beat, int samples, ushort interval, ushort avm, ScpWriterOptions options)
    {
        var length = beat.BeatBefore + beat.BeatAfter + 1;
        var lengthMs = length * interval / 1000.0;
        if (lengthMs != Math.Floor(lengthMs) || lengthMs > ushort.MaxValue)
        {
            throw new ArgumentException($"a reference beat of {length} samples at {interval} us is not a whole number of ms", nameof(beat));
        }

        if (beat.SubtractBefore > beat.BeatBefore || beat.SubtractAfter > beat.BeatAfter || beat.Decimation < 1)
        {
            throw new ArgumentException("subtraction zones must lie within the reference beat, and the decimation be at least 1", nameof(beat));
        }

        var fiducials = beat.Fiducials;
        for (var q = 0; q < fiducials.Count; q++)
        {
            var f = fiducials[q];
            if (f - beat.BeatBefore < 1 || f + beat.BeatAfter > samples
                || f - beat.ProtectBefore < 1 || f + beat.ProtectAfter > samples
                || (q > 0 && f - beat.ProtectBefore <= fiducials[q - 1] + beat.ProtectAfter)
                || (q > 0 && f - beat.SubtractBefore <= fiducials[q - 1] + beat.SubtractAfter))
            {
                throw new ArgumentException($"QRS {q + 1} at sample {f}: its windows leave the signal or overlap the previous QRS's", nameof(beat));
            }
        }

        var reference = digital.Select(lead =>
        {
            var mean = new int[length];
            for (var k = 0; k < length; k++)
            {
                var sum = 0L;
                foreach (var f in fiducials)
                {
                    sum += lead[f - 1 - beat.BeatBefore + k];
                }

                mean[k] = fiducials.Count == 0 ? 0 : (int)Math.Round(sum / (double)fiducials.Count, MidpointRounding.AwayFromZero);
            }

            return mean;
        }).ToArray();

        var residuals = digital.Select((lead, l) =>
        {
            var residual = (int[])lead.Clone();
            foreach (var f in fiducials)
            {
                for (var s = f - beat.SubtractBefore; s <= f + beat.SubtractAfter; s++)
                {
                    var value = residual[s - 1] - reference[l][beat.BeatBefore - (f - s)];
                    if (value is < short.MinValue or > short.MaxValue)
                    {
                        throw new ArgumentException($"a residual of {value} at sample {s} does not fit 16 bits", nameof(digital));
                    }

                    residual[s - 1] = value;
                }
            }

            return residual;
        }).ToArray();

        var section4 = new List<byte>();
        Add16(section4, (ushort)lengthMs);
        Add16(section4, (ushort)(beat.BeatBefore + 1));
        Add16(section4, (ushort)fiducials.Count);
        foreach (var f in fiducials)
        {
            Add16(section4, 0);
            Add32(section4, (uint)(f - beat.SubtractBefore));
            Add32(section4, (uint)f);
            Add32(section4, (uint)(f + beat.SubtractAfter));
        }

        var protectedZones = fiducials.Select(f => ((long)(f - beat.ProtectBefore), (long)(f + beat.ProtectAfter))).ToArray();
        foreach (var (start, end) in protectedZones)
        {
            Add32(section4, (uint)start);
            Add32(section4, (uint)end);
        }

        var section5 = LeadData(reference, avm, interval, options.DifferenceEncoding, 0, options.Huffman);
        return (section4.ToArray(), section5, residuals, protectedZones);
    }

    /// <summary>
    /// Bimodal compression of one lead (the reader's <c>Interpolate</c> undoes it): protected zones kept whole; each
    /// stretch between them stored as the rounded means of consecutive groups of <paramref name="decimation"/> samples,
    /// then its last (length mod decimation) samples as they are.
    /// </summary>
    private static int[] Decimate(int[] lead, (long Start, long End)[] protectedZones, int decimation)
    {
        var stored = new List<int>();
        var next = 1L;
        foreach (var (start, end) in protectedZones.Append((lead.Length + 1L, lead.Length + 1L)))
        {
            var length = (int)(start - next);
            var groups = length / decimation;
            for (var g = 0; g < groups; g++)
            {
                var sum = 0L;
                for (var k = 0; k < decimation; k++)
                {
                    sum += lead[next - 1 + (g * decimation) + k];
                }

                stored.Add((int)Math.Round(sum / (double)decimation, MidpointRounding.AwayFromZero));
            }

            for (var r = groups * decimation; r < length; r++)
            {
                stored.Add(lead[next - 1 + r]);
            }

            for (var s = start; s <= end && s <= lead.Length; s++)
            {
                stored.Add(lead[s - 1]);
            }

            next = end + 1;
        }

        return stored.ToArray();
    }

    private static byte[] Section1()
    {
        var data = new List<byte>();

        // Tag 2, patient id: required by the standard, written empty.
        Tag(data, 2, [0]);

        // Tag 14, acquiring device: institution, department, device id, type (0 cart), manufacturer code 255 (other),
        // model "synth", protocol revision 20, compatibility level 0xA0 (II), language 0 (ASCII), capabilities 0xD0,
        // mains frequency 0, 16 reserved bytes, then the length of the first string and five strings.
        var device = new List<byte> { 0, 0, 0, 0, 0, 0, 0, 255 };
        device.AddRange(Encoding.ASCII.GetBytes("synth\0"));
        device.AddRange([20, 0xA0, 0, 0xD0, 0]);
        device.AddRange(new byte[16]);
        device.Add(4);
        foreach (var text in new[] { "1.0", "0", "HubertEcg", "HubertEcg", "HubertEcg" })
        {
            device.AddRange(Encoding.ASCII.GetBytes(text + "\0"));
        }

        Tag(data, 14, device.ToArray());

        // Tags 25 and 26, date and time of acquisition: a fixed placeholder (2000-01-01 00:00:00).
        Tag(data, 25, [0xD0, 0x07, 1, 1]);
        Tag(data, 26, [0, 0, 0]);
        Tag(data, 255, []);
        return data.ToArray();
    }

    private static byte[] Section3(string[] names, int samples, bool subtraction)
    {
        var data = new List<byte>
        {
            (byte)names.Length,

            // Bit 0: reference beat subtraction; bit 2: all leads simultaneous; bits 3-7: simultaneous lead count.
            (byte)((subtraction ? 0x01 : 0) | 0x04 | (names.Length << 3)),
        };
        foreach (var name in names)
        {
            Add32(data, 1);
            Add32(data, (uint)samples);
            data.Add((byte)LeadCodes.ScpNumber(name));
        }

        return data.ToArray();
    }

    /// <summary>The record: CRC and length, then section 0 (pointers to sections 0-11) and the other sections in order.</summary>
    private static byte[] Assemble(SortedDictionary<int, byte[]> sections)
    {
        const int PointerCount = 12;
        var section0Length = Even(16 + (PointerCount * 10));
        var lengths = sections.ToDictionary(kv => kv.Key, kv => Even(16 + kv.Value.Length));
        var index = new Dictionary<int, long> { [0] = 7 };
        var offset = 6L + section0Length;
        foreach (var id in sections.Keys)
        {
            index[id] = offset + 1;
            offset += lengths[id];
        }

        var pointers = new List<byte>();
        for (var id = 0; id < PointerCount; id++)
        {
            Add16(pointers, (ushort)id);
            Add32(pointers, id == 0 ? (uint)section0Length : sections.ContainsKey(id) ? (uint)lengths[id] : 0);
            Add32(pointers, id == 0 || sections.ContainsKey(id) ? (uint)index[id] : 0);
        }

        var record = new List<byte>(new byte[6]);
        record.AddRange(Section(0, pointers.ToArray()));
        foreach (var (id, data) in sections)
        {
            record.AddRange(Section(id, data));
        }

        var bytes = record.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(2), (uint)bytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, ScpCrc.Compute(bytes.AsSpan(2)));
        return bytes;
    }

    /// <summary>A section: CRC, id, length, section and protocol version 2.0, reserved bytes ("SCPECG" in section 0), data padded to even length.</summary>
    private static byte[] Section(int id, byte[] data)
    {
        var bytes = new byte[Even(16 + data.Length)];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)id);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)bytes.Length);
        bytes[8] = 20;
        bytes[9] = 20;
        if (id == 0)
        {
            Encoding.ASCII.GetBytes("SCPECG").CopyTo(bytes, 10);
        }

        data.CopyTo(bytes, 16);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, ScpCrc.Compute(bytes.AsSpan(2)));
        return bytes;
    }

    private static void Tag(List<byte> data, byte tag, byte[] value)
    {
        data.Add(tag);
        Add16(data, (ushort)value.Length);
        data.AddRange(value);
    }

    private static int Even(int length) => length + (length & 1);

    private static void Add16(List<byte> bytes, ushort value)
    {
        bytes.Add((byte)value);
        bytes.Add((byte)(value >> 8));
    }

    private static void Add32(List<byte> bytes, uint value)
    {
        for (var b = 0; b < 4; b++)
        {
            bytes.Add((byte)(value >> (8 * b)));
        }
    }
}

/// <summary>SCP-ECG as the registry's writer: <see cref="ScpWriter"/>'s defaults (default Huffman table, second differences, I, II, V1-V6, 1 µV).</summary>
public sealed class ScpRecordWriter : IRecordWriter
{
    public string Name => ScpReader.FormatName;

    public IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName) =>
        new Dictionary<string, byte[]>(StringComparer.Ordinal) { [recordName + ScpFormat.Suffix] = ScpWriter.Write(signal) };
}
