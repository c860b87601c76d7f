using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats.Aecg;
using HubertEcg.Inference.Formats.Dicom;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// Seeded fuzzing of the DICOM and aECG readers: the shared samples and files the writers make, mutated (byte flips,
/// truncation, lying lengths and counts for DICOM; element, attribute and digit corruption and truncation for XML).
/// Every case either reads or fails with an <see cref="EcgFormatException"/> naming the record; no other exception,
/// no allocation far beyond the file's size, no case taking seconds.
/// </summary>
public sealed class ClinicalFuzzTests
{
    private const int DicomCases = 600;
    private const int AecgCases = 600;
    private const long AllocationLimit = 64L << 20;
    private static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(5);

    private static readonly uint[] DicomTagsToLieAbout =
    [
        DicomTags.WaveformSequence, DicomTags.ChannelDefinitionSequence, DicomTags.ChannelSourceSequence,
        DicomTags.ChannelSensitivityUnitsSequence, DicomTags.WaveformData, DicomTags.NumberOfWaveformChannels,
        DicomTags.NumberOfWaveformSamples, DicomTags.SamplingFrequency, DicomTags.ChannelSensitivity, DicomTags.Item,
        DicomTags.ItemDelimitation, DicomTags.SequenceDelimitation, DicomTags.TransferSyntaxUid, DicomTags.MultiplexGroupLabel,
        DicomTags.CodeValue, DicomTags.WaveformBitsAllocated,
    ];

    private static readonly uint[] Lies = [0, 1, 2, 3, 7, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF];

    private static readonly string[] XmlJunk =
    [
        "", "0", "-1", "1e999", "NaN", "Infinity", "abc", "99999999999999999999", "-", "1.5", "&amp;", "&xxe;", "&#0;", "<", ">",
        "\"", "0.0", "1e-320", "ms", "mV", "V", "MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II", "RHYTHM", "TIME_ABSOLUTE", "SLIST_PQ", "GLIST_TS",
        "</digits>", "<digits>", "]]>", "\u00e9", "\ud83d\ude00",
    ];

    [Fact]
    public void MutatedDicomFilesReadOrFailWithAReason()
    {
        var signal = DicomTests.Synthetic(seed: 8, seconds: 2);
        byte[][] originals =
        [
            File.ReadAllBytes(ClinicalGoldens.Sample("dicom", "ECGToolkit_Example.dcm")),
            new DicomWriter(new DicomWriterOptions { MdcCodes = true, UndefinedLengths = true }).Encode(signal, "a"),
            new DicomWriter(new DicomWriterOptions { ExplicitVr = false, AllTwelveLeads = false, MedianGroup = true }).Encode(signal, "b"),
            new DicomWriter(new DicomWriterOptions { GeneralEcg = true, UndefinedLengths = true, ExplicitVr = false }).Encode(signal, "c"),
        ];
        var random = new Random(20261205);
        var outcomes = new int[2];
        for (var i = 0; i < DicomCases; i++)
        {
            var bytes = (byte[])originals[random.Next(originals.Length)].Clone();
            var what = MutateDicom(random, ref bytes);
            outcomes[Run($"dicom case {i} ({what})", $"fuzz{i}", bytes.Length, () => DicomFormat.Load(bytes, $"fuzz{i}"))]++;
        }

        Assert.True(outcomes[0] > 50, $"only {outcomes[0]} mutated DICOM files read");
        Assert.True(outcomes[1] > 50, $"only {outcomes[1]} mutated DICOM files rejected");
    }

    [Fact]
    public void MutatedAecgFilesReadOrFailWithAReason()
    {
        var signal = DicomTests.Synthetic(seed: 9, seconds: 2);
        string[] originals =
        [
            File.ReadAllText(ClinicalGoldens.Sample("aecg", "FDA_Example_aECG.xml")),
            new AecgWriter().Document(signal, "a"),
            new AecgWriter(new AecgWriterOptions { AllTwelveLeads = true, IncrementUnit = "ms", ScaleMicrovolts = 2.5 }).Document(signal, "b"),
        ];
        var random = new Random(20261206);
        var outcomes = new int[2];
        for (var i = 0; i < AecgCases; i++)
        {
            // The 0.5 MB sample one case in five, so that hundreds of cases run in seconds.
            var text = originals[random.Next(5) == 0 ? 0 : 1 + random.Next(originals.Length - 1)];
            var (bytes, what) = MutateXml(random, text);
            outcomes[Run($"aecg case {i} ({what})", $"fuzz{i}", bytes.Length, () => AecgFormat.Load(new MemoryStream(bytes), $"fuzz{i}"))]++;
        }

        Assert.True(outcomes[0] > 50, $"only {outcomes[0]} mutated aECG files read");
        Assert.True(outcomes[1] > 50, $"only {outcomes[1]} mutated aECG files rejected");
    }

    /// <summary>Reads one case: 0 when it read (and gave its 12 leads or a typed error), 1 when it was rejected.</summary>
    private static int Run(string what, string recordId, long size, Func<EcgRecord> read)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        var outcome = 0;
        try
        {
            var record = read();
            Assert.Equal(recordId, record.RecordId);
            try
            {
                record.ToStandard12Lead();
            }
            catch (EcgFormatException e)
            {
                // Read, but not scorable (a lead missing, no valid samples): a reason all the same.
                Assert.Equal(recordId, e.RecordId);
            }
        }
        catch (EcgFormatException e)
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Reason), $"{what}: empty reason");
            Assert.Equal(recordId, e.RecordId);
            outcome = 1;
        }
        catch (Exception e)
        {
            Assert.Fail($"{what} threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
        }

        Assert.True(watch.Elapsed < CaseLimit, $"{what} took {watch.Elapsed}");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < AllocationLimit + (16 * size), $"{what} allocated {allocated} bytes");
        return outcome;
    }

    private static string MutateDicom(Random random, ref byte[] bytes)
    {
        // Most of a file is waveform samples: aim most mutations at the elements before and around them.
        var structure = Math.Min(bytes.Length, 4096);
        switch (random.Next(8))
        {
            case 0:
            {
                var flips = 1 + random.Next(8);
                for (var k = 0; k < flips; k++)
                {
                    bytes[128 + random.Next(structure - 128)] = (byte)random.Next(256);
                }

                return $"{flips} header bytes changed";
            }

            case 1:
            {
                var flips = 1 + random.Next(64);
                for (var k = 0; k < flips; k++)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }

                return $"{flips} bytes changed";
            }

            case 2:
            {
                var length = random.Next(2) == 0 ? random.Next(structure) : random.Next(bytes.Length);
                bytes = bytes[..length];
                return $"truncated to {length}";
            }

            case 3:
            case 4:
            case 5:
            {
                // A length field (Implicit VR and items: 4 bytes at +4; Explicit VR: 2 bytes at +6 or 4 at +8), or a count.
                var tag = DicomTagsToLieAbout[random.Next(DicomTagsToLieAbout.Length)];
                Span<byte> pattern = stackalloc byte[4];
                BinaryPrimitives.WriteUInt16LittleEndian(pattern, (ushort)(tag >> 16));
                BinaryPrimitives.WriteUInt16LittleEndian(pattern[2..], (ushort)tag);
                var hits = new List<int>();
                for (var at = bytes.AsSpan().IndexOf(pattern); at >= 0 && hits.Count < 64;)
                {
                    hits.Add(at);
                    var next = bytes.AsSpan(at + 1).IndexOf(pattern);
                    at = next < 0 ? -1 : at + 1 + next;
                }

                if (hits.Count == 0)
                {
                    bytes = bytes[..^1];
                    return $"{DicomTags.Format(tag)} absent; last byte cut";
                }

                var hit = hits[random.Next(hits.Count)];
                var lie = random.Next(3) == 0 ? (uint)random.Next() : Lies[random.Next(Lies.Length)];
                var offset = random.Next(3) switch { 0 => 4, 1 => 6, _ => 8 };
                if (hit + offset + 4 <= bytes.Length)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(hit + offset), lie);
                }

                return $"{DicomTags.Format(tag)} at {hit}+{offset} -> {lie}";
            }

            case 6:
            {
                // Bytes inserted into or removed from the elements: every later offset shifts.
                var at = 132 + random.Next(structure - 132);
                var count = 1 + random.Next(8);
                bytes = random.Next(2) == 0
                    ? [.. bytes[..at], .. Enumerable.Range(0, count).Select(_ => (byte)random.Next(256)), .. bytes[at..]]
                    : [.. bytes[..at], .. bytes[Math.Min(bytes.Length, at + count)..]];
                return $"{count} bytes inserted or removed at {at}";
            }

            default:
            {
                // The preamble's magic or the meta group.
                bytes[128 + random.Next(Math.Min(64, bytes.Length - 128))] = (byte)random.Next(256);
                return "magic or meta byte changed";
            }
        }
    }

    private static (byte[] Bytes, string What) MutateXml(Random random, string text)
    {
        string what;
        switch (random.Next(8))
        {
            case 0:
            {
                // An element name: one character of a tag changed or the tag's '<' removed.
                var at = RandomIndexOf(random, text, "<");
                var k = at + 1 + random.Next(4);
                text = random.Next(3) == 0 ? text.Remove(at, 1) : text[..k] + "xQ:-1 "[random.Next(6)] + text[(k + 1)..];
                what = $"tag at {at} changed";
                break;
            }

            case 1:
            {
                // An attribute value replaced with junk.
                var name = new[] { "value=\"", "unit=\"", "code=\"", "xsi:type=\"" }[random.Next(4)];
                var at = RandomIndexOf(random, text, name) + name.Length;
                var end = text.IndexOf('"', at);
                var junk = XmlJunk[random.Next(XmlJunk.Length)];
                text = text[..at] + junk + text[end..];
                what = $"{name}{junk}\"";
                break;
            }

            case 2:
            case 3:
            {
                // A digit (or a run of them) replaced with junk, or removed.
                var at = RandomIndexOf(random, text, "<digits>") + "<digits>".Length;
                at += random.Next(Math.Max(1, text.IndexOf("</digits>", at, StringComparison.Ordinal) - at));
                var end = Math.Min(text.Length, at + 1 + random.Next(6));
                var junk = random.Next(4) == 0 ? string.Empty : XmlJunk[random.Next(XmlJunk.Length)];
                text = text[..at] + junk + text[end..];
                what = $"digits at {at} -> '{junk}'";
                break;
            }

            case 4:
            {
                var length = random.Next(text.Length);
                text = text[..length];
                what = $"truncated to {length} characters";
                break;
            }

            case 5:
            {
                var lines = text.Split('\n').ToList();
                var l = random.Next(lines.Count);
                if (random.Next(2) == 0)
                {
                    lines.RemoveAt(l);
                }
                else
                {
                    lines.Insert(l, lines[l]);
                }

                text = string.Join('\n', lines);
                what = $"line {l} removed or duplicated";
                break;
            }

            case 6:
            {
                var (from, to) = new[]
                {
                    ("RHYTHM", "REPRESENTATIVE_BEAT"), ("TIME_ABSOLUTE", "TIME_X"), ("SLIST_PQ", "GLIST_PQ"), ("increment", "incr"),
                    ("unit=\"uV\"", "unit=\"mmHg\""), ("unit=\"s\"", "unit=\"h\""), ("<sequenceSet>", "<sequenceSet><sequenceSet>"),
                    ("urn:hl7-org:v3", "urn:other"), ("MDC_ECG_LEAD_II\"", "MDC_ECG_LEAD_I\""), ("<scale", "<scalar"),
                }[random.Next(10)];
                text = text.Replace(from, to, StringComparison.Ordinal);
                what = $"{from} -> {to}";
                break;
            }

            default:
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                var flips = 1 + random.Next(16);
                for (var k = 0; k < flips; k++)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }

                return (bytes, $"{flips} bytes changed");
            }
        }

        return (Encoding.UTF8.GetBytes(text), what);
    }

    private static int RandomIndexOf(Random random, string text, string value)
    {
        var start = random.Next(text.Length);
        var at = text.IndexOf(value, start, StringComparison.Ordinal);
        return at >= 0 ? at : text.IndexOf(value, StringComparison.Ordinal);
    }
}
