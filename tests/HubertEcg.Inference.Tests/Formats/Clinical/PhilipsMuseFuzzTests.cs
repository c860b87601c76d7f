using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Muse;
using HubertEcg.Inference.Formats.Philips;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// Seeded fuzzing of the Philips and MUSE XML readers: the shared Philips samples and files the writers make, mutated
/// in their XML structure, attribute and element values, base64 blocks, XLI chunk headers and lengths, each either
/// reads (and maps to 12 leads) or fails with an <see cref="EcgFormatException"/> naming the record and a reason that
/// quotes no patient data; no other exception, and no allocation far beyond the file's size.
/// </summary>
public sealed class PhilipsMuseFuzzTests
{
    private const int CasesPerFormat = 600;
    private const long AllocationLimit = 64L << 20;

    private static readonly string[] Junk =
    [
        "0", "-1", "1", "2", "999999999999", "2147483647", "-2147483648", "NaN", "Infinity", "-0", "1e308", "abc", "", "0.000001",
        "65536", "600001", "1000000", "True", "False", "XLI", "Plain", "Base64", "None", "MILLIVOLTS", "VOLTS", "Rhythm", "Median",
        "I II III aVR aVL aVF V1 V2 V3 V4 V5 V6 V7", "II I", "&", "<", "]]>", "&amp;", "\u00e9", "1.04", "1.03", "9.9", " ", "-32768",
    ];

    private static readonly string[] PatientMarkers = ["HUBERTECG-SYNTHETIC-PATIENT", "Syntheticlastname", "Syntheticfirstname", "1901"];

    [Fact]
    public void MutatedPhilipsFilesReadOrFailWithAReason()
    {
        var originals = new List<(string What, byte[] Bytes, Encoding Encoding)>
        {
            ("1.03 sample", File.ReadAllBytes(ClinicalGoldens.Sample("philips", "129DYPRG_1-03.XML")), new UTF8Encoding(false)),
            ("1.04 sample", File.ReadAllBytes(ClinicalGoldens.Sample("philips", "3191723_ZZDEMOPTONLY_1-04_orig.xml")), Encoding.Unicode),
            ("1.04 written", PhilipsWriter.Write(SyntheticEcg.Generate("f", 41, 500, 4), "f", new PhilipsWriterOptions { RepresentativeBeats = true })["f.xml"], Encoding.Unicode),
            ("1.03 written", PhilipsWriter.Write(SyntheticEcg.Generate("g", 42, 250, 3), "g", new PhilipsWriterOptions { Version = "1.03" })["g.xml"], new UTF8Encoding(false)),
        };
        Run(new PhilipsFormat(), originals, "parsedwaveforms", 20261205);
    }

    [Fact]
    public void MutatedMuseFilesReadOrFailWithAReason()
    {
        var originals = new List<(string What, byte[] Bytes, Encoding Encoding)>
        {
            ("500 Hz with CRC", MuseWriter.Write(SyntheticEcg.Generate("m", 43, 500, 4), "m")["m.xml"], Encoding.Latin1),
            ("250 Hz without CRC", MuseWriter.Write(SyntheticEcg.Generate("n", 44, 250, 4), "n", new MuseWriterOptions { Crc = false })["n.xml"], Encoding.Latin1),
            ("12 leads in mV", MuseWriter.Write(SyntheticEcg.Generate("o", 45, 500, 2), "o", new MuseWriterOptions { Units = "MILLIVOLTS", UnitsPerBit = 0.005, Leads = StandardLeads.Names })["o.xml"], Encoding.Latin1),
        };
        Run(new MuseFormat(), originals, "WaveFormData", 20261206);
    }

    private static void Run(IRecordFormat format, List<(string What, byte[] Bytes, Encoding Encoding)> originals, string dataElement, int seed)
    {
        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal) { ["read"] = 0, ["rejected"] = 0 };
        for (var i = 0; i < CasesPerFormat; i++)
        {
            var (what, original, encoding) = originals[random.Next(originals.Count)];
            var (bytes, mutation) = Mutate(random, original, encoding, dataElement);
            var id = $"fuzz{i}";
            var files = new InMemoryRecordFileSource(new Dictionary<string, byte[]> { ["r.xml"] = bytes });
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                format.Read(files, "r", id).ToStandard12Lead();
                outcomes["read"]++;
            }
            catch (EcgFormatException e)
            {
                Assert.Equal(id, e.RecordId);
                Assert.False(string.IsNullOrWhiteSpace(e.Reason), $"case {i} ({what}: {mutation}): empty reason");
                foreach (var marker in PatientMarkers)
                {
                    Assert.DoesNotContain(marker, e.Reason, StringComparison.OrdinalIgnoreCase);
                }

                outcomes["rejected"]++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i} ({what}: {mutation}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationLimit + (16L * bytes.Length), $"case {i} ({what}: {mutation}) allocated {allocated} bytes");
        }

        Assert.True(outcomes["read"] > 50, $"only {outcomes["read"]} mutated files read");
        Assert.True(outcomes["rejected"] > 200, $"only {outcomes["rejected"]} mutated files rejected");
    }

    private static (byte[] Bytes, string What) Mutate(Random random, byte[] original, Encoding encoding, string dataElement)
    {
        var preamble = encoding.GetPreamble();
        var text = encoding.GetString(original).TrimStart('\uFEFF');
        byte[] Encode(string s) => preamble.Concat(encoding.GetBytes(s)).ToArray();
        var blocks = Regex.Matches(text, $"<{dataElement}[^>]*>([^<]*)</{dataElement}>");
        var block = blocks[random.Next(blocks.Count)].Groups[1];
        switch (random.Next(12))
        {
            case 0:
            {
                var cut = random.Next(original.Length);
                return (original[..cut], $"truncated at byte {cut}");
            }

            case 1:
            {
                var bytes = (byte[])original.Clone();
                var flips = 1 + random.Next(16);
                for (var k = 0; k < flips; k++)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }

                return (bytes, $"{flips} bytes changed");
            }

            case 2:
            {
                // Remove one tag (start or end): the structure breaks or an element moves.
                var tags = Regex.Matches(text, "<[^<>]+>");
                var tag = tags[random.Next(tags.Count)];
                return (Encode(text.Remove(tag.Index, tag.Length)), $"tag {Shorten(tag.Value)} removed");
            }

            case 3:
            case 4:
            {
                // Replace an element's text or an attribute's value with junk.
                var values = Regex.Matches(text, ">([^<>]{1,60})<|=\"([^\"]*)\"");
                var value = values[random.Next(values.Count)];
                var group = value.Groups[1].Success ? value.Groups[1] : value.Groups[2];
                var junk = Junk[random.Next(Junk.Length)];
                if (value.Groups[2].Success)
                {
                    junk = junk.Replace("\"", "", StringComparison.Ordinal);
                }

                return (Encode(text[..group.Index] + junk + text[(group.Index + group.Length)..]), $"value '{Shorten(group.Value)}' -> '{junk}'");
            }

            case 5:
            {
                // Base64 letters changed: still base64, corrupt data (XLI codes, samples, CRCs).
                var chars = text.ToCharArray();
                var changes = 1 + random.Next(8);
                const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                for (var k = 0; k < changes && block.Length > 0; k++)
                {
                    var p = block.Index + random.Next(block.Length);
                    if (Alphabet.Contains(chars[p], StringComparison.Ordinal))
                    {
                        chars[p] = Alphabet[random.Next(Alphabet.Length)];
                    }
                }

                return (Encode(new string(chars)), $"{changes} base64 letters changed");
            }

            case 6:
            {
                var p = block.Index + random.Next(block.Length + 1);
                var insert = new[] { "*", "=", "==", "A", "&#0;", "\u00ff" }[random.Next(6)];
                return (Encode(text.Insert(p, insert)), $"'{insert}' inserted into base64");
            }

            case 7:
            case 8:
            {
                // The decoded data's structure: XLI chunk headers (size, first value), or a MUSE lead's bytes cut.
                var data = Convert.FromBase64String(block.Value);
                string change;
                if (dataElement == "parsedwaveforms" && data.Length >= 8)
                {
                    var offset = 0;
                    var chunks = new List<int>();
                    while (offset + 8 <= data.Length)
                    {
                        chunks.Add(offset);
                        var size = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));
                        if (size < 0 || size > data.Length - offset - 8)
                        {
                            break;
                        }

                        offset += 8 + size;
                    }

                    var at = chunks[random.Next(chunks.Count)];
                    var old = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(at));
                    var value = random.Next(5) switch
                    {
                        0 => int.MaxValue,
                        1 => -1 - random.Next(1000),
                        2 => old + 1 + random.Next(64),
                        3 => Math.Max(0, old - 1 - random.Next(old + 1)),
                        _ => random.Next(),
                    };
                    if (random.Next(4) == 0)
                    {
                        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(at + 6), (short)random.Next(short.MinValue, short.MaxValue));
                        change = $"XLI chunk at {at}: first value changed";
                    }
                    else
                    {
                        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(at), value);
                        change = $"XLI chunk at {at}: size {old} -> {value}";
                    }
                }
                else
                {
                    data = data[..random.Next(data.Length + 1)];
                    change = $"lead data cut to {data.Length} bytes";
                }

                var encoded = Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks);
                return (Encode(text[..block.Index] + encoded + text[(block.Index + block.Length)..]), change);
            }

            case 9:
            {
                // Corrupt the compressed bytes themselves (Philips: invalid LZW codes) or the samples without a CRC (MUSE).
                var data = Convert.FromBase64String(block.Value);
                for (var k = 0; k < 1 + random.Next(32) && data.Length > 8; k++)
                {
                    data[8 + random.Next(data.Length - 8)] = (byte)random.Next(256);
                }

                var withoutCrc = Regex.Replace(text[..block.Index], "<LeadDataCRC32>\\d+</LeadDataCRC32>", "");
                var rest = text[(block.Index + block.Length)..];
                return (Encode(withoutCrc + Convert.ToBase64String(data) + rest), "decoded data bytes changed (CRCs before it removed)");
            }

            case 10:
            {
                // Duplicate a line (a second element of a kind, a second Waveform or parsedwaveforms line).
                var lines = text.Split('\n').ToList();
                var l = random.Next(lines.Count);
                lines.Insert(l, lines[l]);
                return (Encode(string.Join('\n', lines)), $"line {l} duplicated");
            }

            default:
            {
                var p = random.Next(text.Length);
                var insert = new[] { "&foo;", "<x>", "</x>", "<!-- c -->", "<![CDATA[x]]>", "\u0001", "&#xD800;" }[random.Next(7)];
                return (Encode(text.Insert(p, insert)), $"'{insert}' inserted at {p}");
            }
        }
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40];
}
