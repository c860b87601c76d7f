using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Scp;

/// <summary>
/// Reads an SCP-ECG record (EN 1064:2005 / ISO 11073-91064, protocol versions 1.x to 3.0, little endian) from its
/// bytes: the record and section CRCs, section 0's pointers, section 1's device and filter tags (never its patient
/// tags), section 2's Huffman tables, section 3's leads, section 6's rhythm data, and where the file uses them the
/// reference beat (sections 4 and 5) added back into the subtraction zones and bimodal compression undone. Every count
/// and length is checked against the bytes that hold it before anything is allocated; bad input fails with an
/// <see cref="EcgFormatException"/> naming the section and the reason.
/// </summary>
public static class ScpReader
{
    /// <summary>The name of the format in the registry.</summary>
    public const string FormatName = "scp";

    private const int SectionHeaderBytes = 16;

    // Manufacturer codes of section 1 tag 14 byte 7 (EN 1064 table 8, as BioSig lists them).
    private static readonly string[] Manufacturers =
    [
        "", "Burdick", "Cambridge", "Compumed", "Datamed", "Fukuda", "Hewlett-Packard", "Marquette Electronics",
        "Mortara Instruments", "Nihon Kohden", "Okin", "Quinton", "Siemens", "Spacelabs", "Telemed", "Hellige",
        "ESA-OTE", "Schiller", "Picker-Schwarzer", "et medical devices", "Zwönitz",
    ];

    /// <summary>Reads a whole SCP-ECG file.</summary>
    public static EcgRecord Read(ReadOnlySpan<byte> file, string recordId)
    {
        var warnings = new List<string>();
        var record = RecordBytes(file, recordId, warnings);
        var sections = Sections(record, recordId);
        var version = sections[0].ProtocolVersion;

        if (!sections.TryGetValue(3, out var s3))
        {
            throw new EcgFormatException(recordId, "section 3 (lead definition) is missing");
        }

        if (!sections.TryGetValue(6, out var s6))
        {
            throw new EcgFormatException(recordId, "section 6 (rhythm data) is missing");
        }

        var leads = LeadDefinitions(Data(record, s3), recordId, out var referenceBeatUsed);
        var huffman = sections.TryGetValue(2, out var s2) ? ScpHuffmanTables.Parse(Data(record, s2), recordId) : null;

        var rhythm = Data(record, s6);
        if (rhythm.Length < 6 + (2 * leads.Length))
        {
            throw new EcgFormatException(recordId, $"section 6 is {rhythm.Length} bytes, too short for its header and {leads.Length} lead lengths");
        }

        var avm = BinaryPrimitives.ReadUInt16LittleEndian(rhythm);
        var interval = BinaryPrimitives.ReadUInt16LittleEndian(rhythm[2..]);
        var encoding = rhythm[4];
        var bimodal = rhythm[5] != 0;
        if (avm == 0 || interval == 0)
        {
            throw new EcgFormatException(recordId, $"section 6: amplitude multiplier {avm} nV or sample interval {interval} us is zero");
        }

        if (encoding > 2)
        {
            throw new EcgFormatException(recordId, $"section 6: difference encoding {encoding} is none of 0, 1, 2");
        }

        var first = leads[0];
        if (leads.Any(l => l.Start != first.Start || l.End != first.End))
        {
            throw new EcgFormatException(recordId, "section 3: leads span different sample ranges (leads not recorded simultaneously are not read)");
        }

        var samples = (int)(first.End - first.Start + 1);
        ReferenceBeat? reference = null;
        if (referenceBeatUsed || bimodal)
        {
            reference = ReadReferenceBeat(record, sections, leads, huffman, referenceBeatUsed, bimodal, first, recordId);
        }

        var rate = 1e6 / interval;
        var decimation = 1;
        if (bimodal)
        {
            // Bimodal compression: section 6's interval is the decimated one, section 5's the full rate
            // (SCP-DECODE: decimation factor = section 6 interval / section 5 interval).
            if (reference is null || reference.Interval == 0 || interval % reference.Interval != 0 || interval / reference.Interval < 1)
            {
                throw new EcgFormatException(recordId, $"section 6: bimodal compression at {interval} us needs a reference beat whose interval divides it");
            }

            decimation = interval / reference.Interval;
            rate = 1e6 / reference.Interval;
        }
        else if (reference is not null && referenceBeatUsed && reference.Interval != interval)
        {
            throw new EcgFormatException(recordId, $"section 5's sample interval {reference.Interval} us differs from section 6's {interval} us without bimodal compression");
        }

        var stored = decimation > 1 ? BimodalStoredCount(first, reference!.Protected, decimation, recordId) : samples;
        var values = DecodeLeads(rhythm, leads, huffman, stored, "section 6", recordId);
        var names = new string[leads.Length];
        var physical = new double[leads.Length][];
        for (var l = 0; l < leads.Length; l++)
        {
            Undifference(values[l], encoding);
            var full = decimation > 1 ? Interpolate(values[l], first, reference!.Protected, decimation, samples) : values[l];
            var mv = GC.AllocateUninitializedArray<double>(samples);
            if (referenceBeatUsed)
            {
                // Rhythm and reference beat each scaled by their own AVM, summed in whole nV.
                var nanovolts = new long[samples];
                for (var t = 0; t < samples; t++)
                {
                    nanovolts[t] = (long)full[t] * avm;
                }

                reference!.AddTo(nanovolts, l, first.Start, recordId);
                for (var t = 0; t < samples; t++)
                {
                    mv[t] = nanovolts[t] * 1e-6;
                }
            }
            else
            {
                ToMillivolts(full.AsSpan(0, samples), avm, mv);
            }

            physical[l] = mv;
            names[l] = LeadCodes.FromScpNumber(leads[l].Id) ?? $"SCP lead {leads[l].Id}";
        }

        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
        {
            throw new EcgFormatException(recordId, "section 3 names a lead twice");
        }

        var units = Enumerable.Repeat("mV", leads.Length).ToList();
        var description = Describe(record, sections, version);
        return new EcgRecord
        {
            Format = FormatName,
            Container = Container(sections.Keys, huffman, encoding, avm, referenceBeatUsed, decimation),
            Signal = new EcgSignal(recordId, rate, names, physical),
            Units = units,
            SourceUnits = Enumerable.Repeat("nV", leads.Length).ToList(),
            Warnings = warnings,
            Description = description,
        };
    }

    /// <summary>What <c>ecg inspect</c> shows of the encoding, e.g. "SCP-ECG sections 0-7; default Huffman table, second differences, 2500 nV".</summary>
    private static string Container(IEnumerable<int> sections, ScpHuffmanTables? huffman, int encoding, int avm, bool referenceBeat, int decimation)
    {
        var parts = new List<string>
        {
            huffman is null ? "no Huffman coding" : huffman.IsDefault ? "default Huffman table" : $"{huffman.Tables.Count} Huffman tables",
            encoding switch { 0 => "no differences", 1 => "first differences", _ => "second differences" },
            $"{avm} nV",
        };
        if (referenceBeat)
        {
            parts.Add("reference beat subtraction");
        }

        if (decimation > 1)
        {
            parts.Add($"bimodal compression (1:{decimation})");
        }

        return $"SCP-ECG sections {string.Join(",", sections)}; {string.Join(", ", parts)}";
    }

    private static ReadOnlySpan<byte> RecordBytes(ReadOnlySpan<byte> file, string recordId, List<string> warnings)
    {
        if (file.Length < 6 + SectionHeaderBytes)
        {
            throw new EcgFormatException(recordId, $"the file is {file.Length} bytes, too short for an SCP-ECG record");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(file[2..]);
        if (length > file.Length || length < 6 + SectionHeaderBytes)
        {
            throw new EcgFormatException(recordId, $"the record length {length} does not fit the file's {file.Length} bytes");
        }

        if (length < file.Length)
        {
            warnings.Add($"{file.Length - length} bytes after the record's end ignored");
        }

        var record = file[..(int)length];
        var crc = ScpCrc.Compute(record[2..]);
        var stated = BinaryPrimitives.ReadUInt16LittleEndian(record);
        if (crc != stated)
        {
            throw new EcgFormatException(recordId, $"record CRC mismatch (stored 0x{stated:X4}, computed 0x{crc:X4})");
        }

        return record;
    }

    private static SortedDictionary<int, Section> Sections(ReadOnlySpan<byte> record, string recordId)
    {
        var zero = SectionAt(record, 6, 0, null, recordId);
        var pointers = Data(record, zero);
        var sections = new SortedDictionary<int, Section> { [0] = zero };
        for (var p = 0; p + 10 <= pointers.Length; p += 10)
        {
            var id = BinaryPrimitives.ReadUInt16LittleEndian(pointers[p..]);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(pointers[(p + 2)..]);
            var index = BinaryPrimitives.ReadUInt32LittleEndian(pointers[(p + 6)..]);
            if (id == 0 || length == 0)
            {
                continue;
            }

            if (index < 7 || index - 1 + (long)length > record.Length)
            {
                throw new EcgFormatException(recordId, $"section 0 points section {id} at byte {index} with {length} bytes, outside the {record.Length}-byte record");
            }

            if (sections.ContainsKey(id))
            {
                throw new EcgFormatException(recordId, $"section 0 points section {id} twice");
            }

            sections[id] = SectionAt(record, (int)(index - 1), id, length, recordId);
        }

        return sections;
    }

    private static Section SectionAt(ReadOnlySpan<byte> record, int offset, int id, uint? pointedLength, string recordId)
    {
        if (offset + SectionHeaderBytes > record.Length)
        {
            throw new EcgFormatException(recordId, $"section {id}: header beyond the record's end");
        }

        var header = record[offset..];
        var storedId = BinaryPrimitives.ReadUInt16LittleEndian(header[2..]);
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        if (storedId != id)
        {
            throw new EcgFormatException(recordId, $"section {id}: the header there is of section {storedId}");
        }

        if (length < SectionHeaderBytes || offset + (long)length > record.Length || (pointedLength is { } p && p != length))
        {
            throw new EcgFormatException(recordId, $"section {id}: length {length} does not fit the record (section 0 says {pointedLength?.ToString(CultureInfo.InvariantCulture) ?? "-"}, {record.Length - offset} bytes left)");
        }

        var bytes = record.Slice(offset, (int)length);
        var crc = ScpCrc.Compute(bytes[2..]);
        var stated = BinaryPrimitives.ReadUInt16LittleEndian(bytes);
        if (crc != stated)
        {
            throw new EcgFormatException(recordId, $"section {id}: CRC mismatch (stored 0x{stated:X4}, computed 0x{crc:X4})");
        }

        return new Section(id, offset, (int)length, bytes[8], bytes[9]);
    }

    private static ReadOnlySpan<byte> Data(ReadOnlySpan<byte> record, Section section) =>
        record.Slice(section.Offset + SectionHeaderBytes, section.Length - SectionHeaderBytes);

    private static Lead[] LeadDefinitions(ReadOnlySpan<byte> data, string recordId, out bool referenceBeatUsed)
    {
        if (data.Length < 2)
        {
            throw new EcgFormatException(recordId, "section 3 is too short for its lead count");
        }

        int count = data[0];
        var flags = data[1];
        if (count == 0)
        {
            throw new EcgFormatException(recordId, "section 3 defines no lead");
        }

        if (2 + (9 * count) > data.Length)
        {
            throw new EcgFormatException(recordId, $"section 3 declares {count} leads, which its {data.Length} bytes do not hold");
        }

        // Flags (EN 1064 5.6): bit 0 reference beat subtraction used; bit 2 all leads recorded simultaneously.
        referenceBeatUsed = (flags & 0x01) != 0;
        var leads = new Lead[count];
        for (var l = 0; l < count; l++)
        {
            var entry = data.Slice(2 + (9 * l), 9);
            var start = BinaryPrimitives.ReadUInt32LittleEndian(entry);
            var end = BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]);
            if (start < 1 || end < start || end - start + 1 > int.MaxValue / 2)
            {
                throw new EcgFormatException(recordId, $"section 3: lead {l + 1} spans samples {start} to {end}");
            }

            leads[l] = new Lead(start, end, entry[8]);
        }

        return leads;
    }

    /// <summary>
    /// Decodes every lead's bytes (after the section's 6-byte header and per-lead byte counts) into
    /// <paramref name="samples"/> values each: Huffman-coded with <paramref name="huffman"/>, or 16-bit little-endian
    /// values without section 2. Lengths are checked before any lead is allocated.
    /// </summary>
    private static int[][] DecodeLeads(ReadOnlySpan<byte> data, Lead[] leads, ScpHuffmanTables? huffman, int samples, string section, string recordId)
    {
        var counts = new int[leads.Length];
        long total = 0;
        for (var l = 0; l < leads.Length; l++)
        {
            counts[l] = BinaryPrimitives.ReadUInt16LittleEndian(data[(6 + (2 * l))..]);
            total += counts[l];
        }

        var position = 6 + (2 * leads.Length);
        if (position + total > data.Length)
        {
            throw new EcgFormatException(recordId, $"{section}: the leads' byte counts add up to {total}, more than the {data.Length - position} bytes it holds");
        }

        for (var l = 0; l < leads.Length; l++)
        {
            // Every Huffman code takes at least one bit; an uncompressed sample two bytes.
            var most = huffman is null ? counts[l] / 2L : counts[l] * 8L;
            if (samples > most)
            {
                throw new EcgFormatException(recordId, $"{section}: lead {l + 1} has {counts[l]} bytes, too few for {samples} samples");
            }
        }

        var values = new int[leads.Length][];
        for (var l = 0; l < leads.Length; l++)
        {
            var bytes = data.Slice(position, counts[l]);
            position += counts[l];
            var lead = GC.AllocateUninitializedArray<int>(samples);
            if (huffman is { IsDefault: true } && l + 1 < leads.Length)
            {
                // Two leads at a time: their codes decode side by side.
                var next = GC.AllocateUninitializedArray<int>(samples);
                huffman.DecodeDefaultPair(
                    bytes, lead, $"{section} lead {l + 1}",
                    data.Slice(position, counts[l + 1]), next, $"{section} lead {l + 2}",
                    recordId);
                position += counts[l + 1];
                values[l] = lead;
                values[l + 1] = next;
                l++;
                continue;
            }

            if (huffman is null)
            {
                for (var t = 0; t < samples; t++)
                {
                    lead[t] = BinaryPrimitives.ReadInt16LittleEndian(bytes[(2 * t)..]);
                }
            }
            else
            {
                huffman.Decode(bytes, lead, recordId, $"{section} lead {l + 1}");
            }

            values[l] = lead;
        }

        return values;
    }

    /// <summary>
    /// Undoes first or second differences (EN 1064 5.7.2; the first one or two values are stored as they are). Samples
    /// are 16-bit: the sums wrap as 16-bit integers, as ECG Toolkit's decoder computes them, so that a writer whose
    /// differences wrapped reads back exactly.
    /// </summary>
    /// <summary>
    /// mv[t] = (raw[t] x avm nV) x 1e-6: the product in whole nanovolts, then one rounding; several samples a step
    /// where the product is exact in a double (|raw| &lt; 2^31 and |avm| &lt; 2^21), else one at a time in integers.
    /// </summary>
    private static void ToMillivolts(ReadOnlySpan<int> raw, int avm, Span<double> mv)
    {
        var t = 0;
        if (Vector.IsHardwareAccelerated && Math.Abs((long)avm) < (1L << 21))
        {
            var factor = new Vector<double>(avm);
            var nano = new Vector<double>(1e-6);
            var step = Vector<double>.Count;
            for (; t + Vector<int>.Count <= raw.Length; t += Vector<int>.Count)
            {
                Vector.Widen(new Vector<int>(raw[t..]), out var low, out var high);
                (Vector.ConvertToDouble(low) * factor * nano).CopyTo(mv[t..]);
                (Vector.ConvertToDouble(high) * factor * nano).CopyTo(mv[(t + step)..]);
            }
        }

        for (; t < raw.Length; t++)
        {
            mv[t] = ((long)raw[t] * avm) * 1e-6;
        }
    }

    internal static void Undifference(int[] values, int encoding)
    {
        unchecked
        {
            if (encoding == 1)
            {
                for (var t = 1; t < values.Length; t++)
                {
                    values[t] = (short)(values[t] + values[t - 1]);
                }
            }
            else if (encoding == 2 && values.Length > 2)
            {
                // v + 2 a - b is a + (a - b) + v: a running step and a running value, whose low 16 bits are those of
                // the 16-bit sums taken one at a time (the int sums may wrap; only the low bits are kept).
                var step = values[1] - values[0];
                var value = values[1];
                for (var t = 2; t < values.Length; t++)
                {
                    step += values[t];
                    value += step;
                    values[t] = (short)value;
                }
            }
        }
    }

    private static ReferenceBeat ReadReferenceBeat(
        ReadOnlySpan<byte> record, SortedDictionary<int, Section> sections, Lead[] leads, ScpHuffmanTables? huffman, bool subtraction, bool bimodal, Lead span, string recordId)
    {
        if (!sections.TryGetValue(4, out var s4))
        {
            throw new EcgFormatException(recordId, "section 4 (QRS locations) is missing though reference beat subtraction or bimodal compression is used");
        }

        if (!sections.TryGetValue(5, out var s5))
        {
            throw new EcgFormatException(recordId, "section 5 (reference beat) is missing though reference beat subtraction or bimodal compression is used");
        }

        // Section 4 (EN 1064 5.8): reference beat length in ms, its fiducial sample, the QRS count; per QRS its type,
        // subtraction zone start, fiducial and end (14 bytes); then per QRS its protected zone start and end (8 bytes),
        // absent in version 1.0/1.1 files, where the subtraction zones serve (SCP-DECODE section_4). Only bimodal
        // compression needs the protected zones, so only then are they checked (in order, within the leads).
        var qrs = Data(record, s4);
        if (qrs.Length < 6)
        {
            throw new EcgFormatException(recordId, "section 4 is too short for its header");
        }

        var lengthMs = BinaryPrimitives.ReadUInt16LittleEndian(qrs);
        var fiducial = BinaryPrimitives.ReadUInt16LittleEndian(qrs[2..]);
        var count = BinaryPrimitives.ReadUInt16LittleEndian(qrs[4..]);
        var hasProtected = 6 + (22L * count) <= qrs.Length;
        if (6 + (14L * count) > qrs.Length)
        {
            throw new EcgFormatException(recordId, $"section 4 declares {count} QRS complexes, which its {qrs.Length} bytes do not hold");
        }

        var zones = new Zone[count];
        var protectedZones = new (long Start, long End)[count];
        for (var q = 0; q < count; q++)
        {
            var z = qrs.Slice(6 + (14 * q), 14);
            zones[q] = new Zone(
                BinaryPrimitives.ReadUInt16LittleEndian(z),
                BinaryPrimitives.ReadUInt32LittleEndian(z[2..]),
                BinaryPrimitives.ReadUInt32LittleEndian(z[6..]),
                BinaryPrimitives.ReadUInt32LittleEndian(z[10..]));
            if (hasProtected)
            {
                var p = qrs.Slice(6 + (14 * count) + (8 * q), 8);
                protectedZones[q] = (BinaryPrimitives.ReadUInt32LittleEndian(p), BinaryPrimitives.ReadUInt32LittleEndian(p[4..]));
            }
            else
            {
                protectedZones[q] = (zones[q].Start, zones[q].End);
            }
        }

        for (var q = 0; q < count && bimodal; q++)
        {
            var (start, end) = protectedZones[q];
            if (start < span.Start || end > span.End || end < start || (q > 0 && start <= protectedZones[q - 1].End))
            {
                throw new EcgFormatException(recordId, $"section 4: protected zone {q + 1} ({start}-{end}) is not an ordered zone within samples {span.Start}-{span.End}");
            }
        }

        // Section 5 (EN 1064 5.9): AVM, sample interval, difference encoding, a reserved byte, per lead byte counts,
        // then each lead's reference beat coded as the rhythm data are.
        var beat = Data(record, s5);
        if (beat.Length < 6 + (2 * leads.Length))
        {
            throw new EcgFormatException(recordId, $"section 5 is {beat.Length} bytes, too short for its header and {leads.Length} lead lengths");
        }

        var avm = BinaryPrimitives.ReadUInt16LittleEndian(beat);
        var interval = BinaryPrimitives.ReadUInt16LittleEndian(beat[2..]);
        var encoding = beat[4];
        if (interval == 0 || encoding > 2)
        {
            throw new EcgFormatException(recordId, $"section 5: sample interval {interval} us or difference encoding {encoding} is invalid");
        }

        int[][] values = [];
        if (subtraction)
        {
            var samples = (int)(lengthMs * 1000L / interval);
            if (samples == 0 || fiducial < 1 || fiducial > samples)
            {
                throw new EcgFormatException(recordId, $"section 4: a reference beat of {lengthMs} ms at {interval} us with fiducial sample {fiducial}");
            }

            values = DecodeLeads(beat, leads, huffman, samples, "section 5", recordId);
            foreach (var lead in values)
            {
                Undifference(lead, encoding);
            }
        }

        return new ReferenceBeat(avm, interval, fiducial, zones, protectedZones, values);
    }

    /// <summary>
    /// How many values a bimodally compressed lead stores: inside protected zones every sample; in each stretch
    /// between them, one value per <paramref name="decimation"/> samples and the remainder as they are.
    /// </summary>
    private static int BimodalStoredCount(Lead span, (long Start, long End)[] protectedZones, int decimation, string recordId)
    {
        long stored = 0;
        foreach (var (from, to, isProtected) in Stretches(span, protectedZones))
        {
            var length = to - from + 1;
            stored += isProtected ? length : (length / decimation) + (length % decimation);
        }

        return stored > int.MaxValue ? throw new EcgFormatException(recordId, "section 4: too many samples") : (int)stored;
    }

    /// <summary>The lead's sample range cut into stretches outside and inside protected zones, in order (1-based, inclusive).</summary>
    private static IEnumerable<(long From, long To, bool Protected)> Stretches(Lead span, (long Start, long End)[] protectedZones)
    {
        var next = (long)span.Start;
        foreach (var (start, end) in protectedZones)
        {
            if (start > next)
            {
                yield return (next, start - 1, false);
            }

            yield return (start, end, true);
            next = end + 1;
        }

        if (next <= span.End)
        {
            yield return (next, span.End, false);
        }
    }

    /// <summary>
    /// Undoes bimodal compression (EN 1064 5.7.4, reconstruction as BioSig's SCP-DECODE <c>Interpolate</c>): a stretch
    /// outside protected zones of n samples holds n / D values, each standing for D samples, then the n mod D last
    /// samples as they are. The k-th value is placed at sample kD + D/2 of the stretch and the samples between two
    /// placed values are interpolated linearly (truncated toward zero), before the first and after the last held.
    /// Protected zones are stored at full rate. The optional low-pass smoothing SCP-DECODE applies afterwards is not.
    /// </summary>
    private static int[] Interpolate(int[] stored, Lead span, (long Start, long End)[] protectedZones, int decimation, int samples)
    {
        var full = new int[samples];
        var input = 0;
        var output = 0;
        foreach (var (from, to, isProtected) in Stretches(span, protectedZones))
        {
            var length = (int)(to - from + 1);
            if (isProtected)
            {
                Array.Copy(stored, input, full, output, length);
                input += length;
                output += length;
                continue;
            }

            var groups = length / decimation;
            var anchor = decimation / 2;
            for (var p = 0; p < groups * decimation; p++)
            {
                int value;
                if (p <= anchor)
                {
                    value = stored[input];
                }
                else if (p >= ((groups - 1) * decimation) + anchor)
                {
                    value = stored[input + groups - 1];
                }
                else
                {
                    var k = (p - anchor) / decimation;
                    var j = (p - anchor) % decimation;
                    var a = stored[input + k];
                    var b = stored[input + k + 1];
                    value = (int)(a + (j * (double)(b - a) / decimation));
                }

                full[output + p] = value;
            }

            input += groups;
            output += groups * decimation;
            for (var r = 0; r < length % decimation; r++)
            {
                full[output++] = stored[input++];
            }
        }

        return full;
    }

    private static RecordDescription Describe(ReadOnlySpan<byte> record, SortedDictionary<int, Section> sections, int version)
    {
        // Section 0's protocol version: 10-13 for 1.x, 20 for 2.0, 29-30 for 3.0; older files may leave it 0.
        var versionText = version >= 10 ? $"SCP-ECG {version / 10}.{version % 10}" : "SCP-ECG";
        if (!sections.TryGetValue(1, out var s1))
        {
            return new RecordDescription(versionText);
        }

        // Section 1 (EN 1064 5.5): tag (1 byte), length (2 bytes), value; tag 255 ends it. Only the device (tag 14,
        // else the analysing device of tag 15) and filter tags (27, 28, 29) are looked at: patient tags 0-9 and the
        // clinical ones are never read.
        var data = Data(record, s1);
        string? device = null;
        int? highPass = null, lowPass = null, filterBits = null;
        var position = 0;
        while (position + 3 <= data.Length)
        {
            var tag = data[position];
            var length = BinaryPrimitives.ReadUInt16LittleEndian(data[(position + 1)..]);
            if (tag == 255 || position + 3 + length > data.Length)
            {
                break;
            }

            var value = data.Slice(position + 3, length);
            switch (tag)
            {
                case 14:
                case 15 when device is null:
                    device = Device(value) ?? device;
                    break;
                case 27 when length >= 2:
                    highPass = BinaryPrimitives.ReadUInt16LittleEndian(value);
                    break;
                case 28 when length >= 2:
                    lowPass = BinaryPrimitives.ReadUInt16LittleEndian(value);
                    break;
                case 29 when length >= 1:
                    filterBits = value[0];
                    break;
            }

            position += 3 + length;
        }

        return new RecordDescription(versionText, device, Filters(highPass, lowPass, filterBits));
    }

    /// <summary>
    /// Tag 14/15 (EN 1064 5.5.3.3.14): bytes 8-13 the model description; from byte 36 five zero-terminated strings
    /// (analysing program revision, serial number, system software, SCP implementation software, manufacturer name);
    /// byte 7 a manufacturer code used when the name is empty.
    /// </summary>
    private static string? Device(ReadOnlySpan<byte> value)
    {
        if (value.Length < 14)
        {
            return null;
        }

        var model = Text(value.Slice(8, 6));
        var manufacturer = "";
        if (value.Length > 36)
        {
            var strings = value[36..];
            for (var s = 0; s < 5 && strings.Length > 0; s++)
            {
                var end = strings.IndexOf((byte)0);
                var text = end < 0 ? strings : strings[..end];
                if (s == 4)
                {
                    manufacturer = Text(text);
                }

                strings = end < 0 ? [] : strings[(end + 1)..];
            }
        }

        if (manufacturer.Length == 0 && value[7] < Manufacturers.Length)
        {
            manufacturer = Manufacturers[value[7]];
        }

        var device = $"{manufacturer} {model}".Trim();
        return device.Length == 0 ? null : device;
    }

    private static string? Filters(int? highPass, int? lowPass, int? bits)
    {
        var parts = new List<string>();
        if (highPass is > 0 || lowPass is > 0)
        {
            // Tag 27: high-pass cut-off in 0.01 Hz; tag 28: low-pass cut-off in Hz.
            var high = highPass is > 0 ? (highPass.Value / 100.0).ToString(CultureInfo.InvariantCulture) : "?";
            var low = lowPass is > 0 ? lowPass.Value.ToString(CultureInfo.InvariantCulture) : "?";
            parts.Add($"{high}-{low} Hz");
        }

        // Tag 29: bit 0 a 60 Hz notch, bit 1 a 50 Hz notch.
        if (bits is { } b && (b & 0x01) != 0)
        {
            parts.Add("notch 60 Hz");
        }

        if (bits is { } c && (c & 0x02) != 0)
        {
            parts.Add("notch 50 Hz");
        }

        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    private static string Text(ReadOnlySpan<byte> bytes)
    {
        var end = bytes.IndexOf((byte)0);
        var text = new StringBuilder();
        foreach (var b in end < 0 ? bytes : bytes[..end])
        {
            if (b is >= 0x20 and < 0x7F)
            {
                text.Append((char)b);
            }
        }

        return text.ToString().Trim();
    }

    private sealed record Section(int Id, int Offset, int Length, byte SectionVersion, byte ProtocolVersion);

    private sealed record Lead(uint Start, uint End, byte Id);

    private sealed record Zone(ushort Type, uint Start, uint Fiducial, uint End);

    /// <summary>Sections 4 and 5: the QRS zones and the reference beat of every lead (empty without subtraction).</summary>
    private sealed class ReferenceBeat(ushort avm, ushort interval, ushort fiducial, Zone[] zones, (long Start, long End)[] protectedZones, int[][] leads)
    {
        public ushort Interval => interval;

        public (long Start, long End)[] Protected => protectedZones;

        /// <summary>
        /// Adds the reference beat back into lead <paramref name="lead"/> (in nV) in every subtraction zone of a QRS of
        /// type 0: sample s of the zone gets reference sample fiducial - (F - s), with F the QRS's fiducial (EN 1064
        /// 5.8; ECG Toolkit's AddMedians and SCP-DECODE's DoAdd place it alike). Both are scaled by their own AVM.
        /// </summary>
        public void AddTo(long[] nanovolts, int lead, uint leadStart, string recordId)
        {
            var beat = leads[lead];
            foreach (var zone in zones.Where(z => z.Type == 0))
            {
                var first = (long)fiducial - 1 - ((long)zone.Fiducial - zone.Start);
                var from = (long)zone.Start - leadStart;
                var length = (long)zone.End - zone.Start + 1;
                if (zone.End < zone.Start || from < 0 || from + length > nanovolts.Length || first < 0 || first + length > beat.Length)
                {
                    throw new EcgFormatException(recordId, $"section 4: subtraction zone {zone.Start}-{zone.End} (fiducial {zone.Fiducial}) falls outside the rhythm data or the reference beat");
                }

                for (var k = 0; k < length; k++)
                {
                    nanovolts[from + k] += (long)beat[first + k] * avm;
                }
            }
        }
    }
}
