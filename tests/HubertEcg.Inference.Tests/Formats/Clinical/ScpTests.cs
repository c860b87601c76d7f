using System.Buffers.Binary;
using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.Formats.Scp;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>SCP-ECG: the shared sample against its golden, the writer's every option read back, and bad input.</summary>
public sealed class ScpTests
{
    private static string SamplePath => ClinicalGoldens.Sample("scp", "ECGToolkit_Example.scp");

    /// <summary>
    /// Two tables switching into each other: table 1 holds 0, ±1, ±2 and a switch to table 2; table 2 holds 8-bit and
    /// 16-bit values behind short prefixes and a switch back to table 1.
    /// </summary>
    internal static ScpHuffmanTables SwitchingTables { get; } = new(
    [
        [
            new ScpHuffmanCode(1, 1, true, 0, 0b0),
            new ScpHuffmanCode(3, 3, true, 1, 0b100),
            new ScpHuffmanCode(3, 3, true, -1, 0b101),
            new ScpHuffmanCode(4, 4, true, 2, 0b1100),
            new ScpHuffmanCode(4, 4, true, -2, 0b1101),
            new ScpHuffmanCode(3, 3, false, 2, 0b111),
        ],
        [
            new ScpHuffmanCode(1, 9, true, 0, 0b0),
            new ScpHuffmanCode(2, 18, true, 0, 0b10),
            new ScpHuffmanCode(2, 2, false, 1, 0b11),
        ],
    ]);

    [Fact]
    public void SampleReadsToItsGolden()
    {
        var record = ClinicalGoldens.AssertReadsToGolden(SamplePath, "scp_ECGToolkit_Example");
        Assert.Equal("scp", record.Format);
        Assert.Equal(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF"], record.Signal.LeadNames);
        Assert.Equal(5000, record.Signal.SampleCount);
        Assert.Equal(500, record.Signal.SamplingRate);
        Assert.Empty(record.Warnings);
    }

    [Fact]
    public void SampleIsTheSameEcgAsTheDicomAndAecgRenderings()
    {
        var signal = FormatRegistry.Default.Load(SamplePath).ToStandard12Lead();
        ClinicalGoldens.AssertSameSignal(ClinicalGoldens.Raw("dicom_ECGToolkit_Example"), Renamed(signal, "dicom_ECGToolkit_Example"), ClinicalGoldens.RawTolerance, "scp vs dicom");
        ClinicalGoldens.AssertSameSignal(ClinicalGoldens.Raw("aecg_FDA_Example"), Renamed(signal, "aecg_FDA_Example"), ClinicalGoldens.RawTolerance, "scp vs aecg");
    }

    [Fact]
    public void SampleDescribesItsVersionAndDeviceOnly()
    {
        var record = FormatRegistry.Default.Load(SamplePath);
        Assert.Equal("SCP-ECG 2.0", record.Description.Version);

        // Tag 14: model "ELI250", manufacturer string "ECGConversion" (the converter that wrote the file).
        Assert.Equal("ECGConversion ELI250", record.Description.Device);
        Assert.Null(record.Description.Filters);
        Assert.Equal("SCP-ECG sections 0,1,2,3,4,5,6,7; default Huffman table, second differences, 2500 nV", record.Container);
        Assert.Empty(record.Signal.Metadata);
    }

    [Fact]
    public void DefaultHuffmanCodesAreTheStandardsTable()
    {
        // EN 1064 annex C: 0 -> 0; n in 1..8 -> n ones, 0, sign; then 1111111110 + 8 bits and 1111111111 + 16 bits.
        int[] values = [0, 1, -1, 8, -8, 9, -200, 1000, 2, -3];
        const string Expected = "0" + "100" + "101" + "1111111100" + "1111111101" + "1111111110" + "00001001"
            + "1111111111" + "1111111100111000" + "1111111111" + "0000001111101000" + "1100" + "11101";
        var writer = new ScpBitWriter();
        ScpHuffmanTables.Default.Encode(values, writer);
        var bytes = writer.ToArray();
        Assert.Equal(Expected.PadRight(bytes.Length * 8, '0'), string.Concat(bytes.Select(b => Convert.ToString(b, 2).PadLeft(8, '0'))));

        var decoded = new int[values.Length];
        ScpHuffmanTables.Default.Decode(bytes, decoded, "r", "lead");
        Assert.Equal(values, decoded);

        // The same codes as an explicit table (section 2 written out) decode alike through the table lookup.
        var explicitTable = new ScpHuffmanTables(ScpHuffmanTables.Default.Tables);
        var again = new int[values.Length];
        explicitTable.Decode(bytes, again, "r", "lead");
        Assert.Equal(values, again);
        var reparsed = ScpHuffmanTables.Parse(explicitTable.Serialise(), "r");
        Assert.Equal(ScpHuffmanTables.Default.Tables.SelectMany(t => t), reparsed.Tables.SelectMany(t => t));
    }

    [Fact]
    public void DefaultPairDecodesAsOneLeadAtATimeAndNamesWhereALeadRunsShort()
    {
        // Every kind of default-table code (0, short, 8-bit, 16-bit), in an order no predictor follows.
        var random = new Random(13);
        int Value() => random.Next(4) switch
        {
            0 => 0,
            1 => random.Next(-8, 9),
            2 => random.Next(-128, 128),
            _ => random.Next(short.MinValue, short.MaxValue + 1),
        };
        var first = Enumerable.Range(0, 3001).Select(_ => Value()).ToArray();
        var second = Enumerable.Range(0, 3001).Select(_ => Value()).ToArray();
        var firstBytes = Encode(first);
        var secondBytes = Encode(second);

        var firstRead = new int[first.Length];
        var secondRead = new int[second.Length];
        ScpHuffmanTables.Default.DecodeDefaultPair(firstBytes, firstRead, "lead 1", secondBytes, secondRead, "lead 2", "r");
        Assert.Equal(first, firstRead);
        Assert.Equal(second, secondRead);

        // A lead cut short fails at the sample the one-lead decode names; with both cut, the one that runs out first.
        var firstCut = firstBytes[..(firstBytes.Length / 3)];
        var secondCut = secondBytes[..(secondBytes.Length / 2)];
        var firstAlone = Assert.Throws<EcgFormatException>(() => ScpHuffmanTables.Default.Decode(firstCut, new int[first.Length], "r", "lead 1"));
        var secondAlone = Assert.Throws<EcgFormatException>(() => ScpHuffmanTables.Default.Decode(secondCut, new int[second.Length], "r", "lead 2"));
        Assert.Equal(secondAlone.Message, PairFailure(firstBytes, secondCut).Message);
        Assert.Equal(firstAlone.Message, PairFailure(firstCut, secondBytes).Message);
        Assert.Contains("lead 1: Huffman data end after ", firstAlone.Message, StringComparison.Ordinal);
        Assert.Equal(firstAlone.Message, PairFailure(firstCut, secondCut).Message);

        EcgFormatException PairFailure(byte[] a, byte[] b) => Assert.Throws<EcgFormatException>(
            () => ScpHuffmanTables.Default.DecodeDefaultPair(a, new int[first.Length], "lead 1", b, new int[second.Length], "lead 2", "r"));

        static byte[] Encode(int[] values)
        {
            var writer = new ScpBitWriter();
            ScpHuffmanTables.Default.Encode(values, writer);
            return writer.ToArray();
        }
    }

    [Fact]
    public void SampleCodesAsTheWriterCodesIt()
    {
        // The writer's default-table coder reproduces the sample's section 6 lead bytes from the values read.
        var file = File.ReadAllBytes(SamplePath);
        var record = ScpReader.Read(file, "sample");
        var lead = record.Signal.Leads[0].Select(v => (int)Math.Round(v * 1e6 / 2500)).ToArray();
        var writer = new ScpBitWriter();
        ScpHuffmanTables.Default.Encode(ScpWriter.Difference(lead, 2), writer);
        var coded = writer.ToArray();
        var (offset, _) = SectionSpan(file, 6);
        var firstLeadBytes = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(offset + 16 + 6));
        var data = file.AsSpan(offset + 16 + 6 + (2 * 12), firstLeadBytes);
        Assert.True(coded.Length <= firstLeadBytes);
        Assert.True(data[..(coded.Length - 1)].SequenceEqual(coded.AsSpan(0, coded.Length - 1)));
    }

    public static TheoryData<string, int, bool> Encodings()
    {
        var data = new TheoryData<string, int, bool>();
        foreach (var huffman in new[] { "default", "custom", "none" })
        {
            for (var encoding = 0; encoding <= 2; encoding++)
            {
                data.Add(huffman, encoding, encoding == 1);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void WrittenRecordsReadBackExactly(string huffman, int encoding, bool twelve)
    {
        var signal = SyntheticEcg.Generate("w", 11, 500, 10);
        var options = new ScpWriterOptions
        {
            Huffman = huffman switch { "default" => ScpHuffmanTables.Default, "custom" => SwitchingTables, _ => null },
            DifferenceEncoding = encoding,
            AmplitudeNanovolts = 2500,
            AllTwelveLeads = twelve,
        };
        var bytes = ScpWriter.Write(signal, options);
        var record = Read(bytes);
        Assert.Equal(twelve ? 12 : 8, record.Signal.Leads.Length);
        AssertQuantised(signal, record, 2500, twelve);
        Assert.Equal(huffman != "none", SectionSpan(bytes, 2).Offset > 0);
    }

    [Fact]
    public void CustomTablesSwitchBothWays()
    {
        var signal = SyntheticEcg.Generate("c", 3, 500, 10);
        var bytes = ScpWriter.Write(signal, new ScpWriterOptions { Huffman = SwitchingTables, DifferenceEncoding = 1 });
        var (offset, length) = SectionSpan(bytes, 2);
        var tables = ScpHuffmanTables.Parse(bytes.AsSpan(offset + 16, length - 16), "c");
        Assert.Equal(SwitchingTables.Tables.SelectMany(t => t), tables.Tables.SelectMany(t => t));

        // First differences of a 1 uV signal need both tables: table 1 codes only |d| <= 2.
        var lead = signal.Leads[0].Select(v => (int)Math.Round(v * 1000)).ToArray();
        var differences = ScpWriter.Difference(lead, 1);
        Assert.Contains(differences, d => Math.Abs(d) > 2);
        Assert.Contains(differences.Skip(1), d => d == 0);
        var writer = new ScpBitWriter();
        SwitchingTables.Encode(differences, writer);
        var decoded = new int[differences.Length];
        SwitchingTables.Decode(writer.ToArray(), decoded, "c", "lead");
        Assert.Equal(differences, decoded);
        AssertQuantised(signal, Read(bytes), 1000, false);
    }

    [Fact]
    public void ReferenceBeatSubtractionReadsBackExactly()
    {
        var (signal, fiducials) = Periodic(seconds: 10, bpm: 75);
        var beat = new ScpReferenceBeatOptions(fiducials);
        var plain = ScpWriter.Write(signal);
        var subtracted = ScpWriter.Write(signal, new ScpWriterOptions { ReferenceBeat = beat });
        var record = Read(subtracted);
        AssertQuantised(signal, record, 1000, false);
        Assert.Equal(record.Signal.Leads, Read(plain).Signal.Leads);
        Assert.EndsWith("reference beat subtraction", record.Container, StringComparison.Ordinal);

        // Sections 4 and 5 are there, section 3 says subtraction is used, and the residual codes shorter.
        Assert.True(SectionSpan(subtracted, 4).Offset > 0 && SectionSpan(subtracted, 5).Offset > 0);
        Assert.Equal(1, subtracted[SectionSpan(subtracted, 3).Offset + 16 + 1] & 1);
        Assert.True(SectionSpan(subtracted, 6).Length < SectionSpan(plain, 6).Length);
    }

    [Theory]
    [InlineData(13, "SCP-ECG 1.3")]
    [InlineData(20, "SCP-ECG 2.0")]
    [InlineData(30, "SCP-ECG 3.0")]
    public void ProtocolVersionsOneToThreeRead(byte version, string shown)
    {
        var signal = SyntheticEcg.Generate("v", 4, 500, 10);
        var bytes = ScpWriter.Write(signal);
        foreach (var id in new[] { 0, 1, 2, 3, 6 })
        {
            var (offset, _) = SectionSpan(bytes, id);
            bytes[offset + 8] = version;
            bytes[offset + 9] = version;
        }

        ScpFuzzTests.FixCrcs(bytes);
        var record = Read(bytes);
        Assert.Equal(shown, record.Description.Version);
        AssertQuantised(signal, record, 1000, false);
    }

    [Fact]
    public void ReferenceBeatWithoutProtectedZonesAsVersionOneFilesWriteIt()
    {
        var (signal, fiducials) = Periodic(seconds: 10, bpm: 75);
        var bytes = ScpWriter.Write(signal, new ScpWriterOptions { ReferenceBeat = new ScpReferenceBeatOptions(fiducials) });
        var (offset, length) = SectionSpan(bytes, 4);
        var qrsData = bytes.AsSpan(offset + 16, 6 + (14 * fiducials.Length)).ToArray();
        Assert.True(qrsData.Length < length - 16);
        AssertQuantised(signal, Read(ScpFuzzTests.ReplaceSection(bytes, 4, qrsData)), 1000, false);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void ReferenceBeatWithEveryEncodingAndCustomTables(int encoding)
    {
        var (signal, fiducials) = Periodic(seconds: 10, bpm: 60);
        var bytes = ScpWriter.Write(signal, new ScpWriterOptions
        {
            Huffman = SwitchingTables,
            DifferenceEncoding = encoding,
            ReferenceBeat = new ScpReferenceBeatOptions(fiducials, BeatBefore: 80, BeatAfter: 149, SubtractBefore: 30, SubtractAfter: 50),
        });
        AssertQuantised(signal, Read(bytes), 1000, false);
    }

    [Fact]
    public void BimodalCompressionKeepsProtectedZonesAndInterpolatesTheRest()
    {
        var (signal, fiducials) = Periodic(seconds: 10, bpm: 75);
        var beat = new ScpReferenceBeatOptions(fiducials, Decimation: 4);
        var bytes = ScpWriter.Write(signal, new ScpWriterOptions { ReferenceBeat = beat });
        var record = Read(bytes);
        Assert.Equal(500, record.Signal.SamplingRate);
        Assert.Equal(signal.SampleCount, record.Signal.SampleCount);

        // Section 6 holds the decimated interval (8000 us), section 5 the full rate (2000 us).
        Assert.Equal(8000, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(SectionSpan(bytes, 6).Offset + 16 + 2)));
        Assert.Equal(2000, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(SectionSpan(bytes, 5).Offset + 16 + 2)));
        Assert.Equal(1, bytes[SectionSpan(bytes, 6).Offset + 16 + 5]);
        Assert.EndsWith("reference beat subtraction, bimodal compression (1:4)", record.Container, StringComparison.Ordinal);

        var isProtected = new bool[signal.SampleCount];
        foreach (var f in fiducials)
        {
            for (var s = f - beat.ProtectBefore; s <= f + beat.ProtectAfter; s++)
            {
                isProtected[s - 1] = true;
            }
        }

        var names = record.Signal.LeadNames;
        for (var l = 0; l < names.Count; l++)
        {
            var original = signal.Leads[StandardLeads.Names.ToList().IndexOf(names[l])];
            for (var t = 0; t < signal.SampleCount; t++)
            {
                var error = Math.Abs(original[t] - record.Signal.Leads[l][t]);

                // Protected: exact to the 1 uV quantum. Elsewhere the T waves and the slow wave are decimated by 4 and
                // interpolated: off by up to some 3 samples' slope (< 0.02 mV here) where a stretch begins or ends.
                Assert.True(error <= (isProtected[t] ? 0.0005 + 1e-9 : 0.02), $"lead {names[l]} sample {t} (protected {isProtected[t]}): error {error} mV");
            }
        }

        Assert.True(bytes.Length < ScpWriter.Write(signal, new ScpWriterOptions { ReferenceBeat = beat with { Decimation = 1 } }).Length);
    }

    [Fact]
    public void RegistryWriterWritesWhatCartsWrite()
    {
        var writer = FormatRegistry.WriterFor("scp");
        Assert.NotNull(writer);
        var signal = SyntheticEcg.Generate("r", 5, 500, 10);
        var files = writer.Write(signal, "rec");
        Assert.Equal(["rec.scp"], files.Keys);
        var bytes = files["rec.scp"];
        var record = FormatRegistry.Default.Record("rec", "rec", files.Keys.ToList(), new InMemoryRecordFileSource(files)).Load();
        Assert.Equal(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], record.Signal.LeadNames);
        Assert.Equal(ScpHuffmanTables.DefaultTableMarker, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(SectionSpan(bytes, 2).Offset + 16)));
        Assert.Equal(2, bytes[SectionSpan(bytes, 6).Offset + 16 + 4]);
        Assert.Equal("HubertEcg synth", record.Description.Device);
        var standard = record.ToStandard12Lead();
        Assert.Equal(StandardLeads.Names, standard.LeadNames);
    }

    [Fact]
    public void CrcIsCrcCcittComputedBitByBit()
    {
        // CRC-16/CCITT-FALSE's check value, then lengths around every block size against the bit-at-a-time definition.
        Assert.Equal(0x29B1, ScpCrc.Compute("123456789"u8));
        Assert.Equal(0xFFFF, ScpCrc.Compute([]));
        var random = new Random(1064);
        foreach (var length in new[] { 1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 1000, 4097, 60001 })
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(BitByBit(data), ScpCrc.Compute(data));
        }

        static ushort BitByBit(ReadOnlySpan<byte> data)
        {
            var crc = 0xFFFF;
            foreach (var b in data)
            {
                crc ^= b << 8;
                for (var k = 0; k < 8; k++)
                {
                    crc = (crc & 0x8000) != 0 ? ((crc << 1) ^ 0x1021) & 0xFFFF : (crc << 1) & 0xFFFF;
                }
            }

            return (ushort)crc;
        }
    }

    [Fact]
    public void RecordCrcMismatchIsRejected()
    {
        var bytes = ScpWriter.Write(SyntheticEcg.Generate("x", 1, 500, 10));
        bytes[^3] ^= 0x10;
        var e = Assert.Throws<EcgFormatException>(() => ScpReader.Read(bytes, "bad-crc"));
        Assert.Equal("bad-crc", e.RecordId);
        Assert.Contains("record CRC mismatch", e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(6)]
    public void SectionCrcMismatchIsRejectedNamingTheSection(int section)
    {
        var bytes = ScpWriter.Write(SyntheticEcg.Generate("x", 1, 500, 10));
        var (offset, length) = SectionSpan(bytes, section);
        bytes[offset + length - 3] ^= 0x01;
        ScpFuzzTests.FixRecordCrc(bytes);
        var e = Assert.Throws<EcgFormatException>(() => ScpReader.Read(bytes, "bad-section"));
        Assert.Contains($"section {section}: CRC mismatch", e.Reason, StringComparison.Ordinal);
    }

    public static TheoryData<string> Lies() => new()
    {
        "record length", "pointer length", "pointer index", "section length", "lead count", "lead end", "byte count", "table count", "code count", "qrs count", "beat length",
    };

    [Theory]
    [MemberData(nameof(Lies))]
    public void LyingLengthsAreRejectedBeforeAllocating(string lie)
    {
        var (signal, fiducials) = Periodic(seconds: 10, bpm: 75);
        var bytes = ScpWriter.Write(signal, new ScpWriterOptions { Huffman = SwitchingTables, ReferenceBeat = new ScpReferenceBeatOptions(fiducials) });
        var s0 = SectionSpan(bytes, 0).Offset;
        var s2 = SectionSpan(bytes, 2).Offset + 16;
        var s3 = SectionSpan(bytes, 3).Offset + 16;
        var s4 = SectionSpan(bytes, 4).Offset + 16;
        var s6 = SectionSpan(bytes, 6).Offset + 16;
        switch (lie)
        {
            case "record length": BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(2), uint.MaxValue); break;
            case "pointer length": BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(s0 + 16 + (6 * 10) + 2), 0x7FFFFFF0); break;
            case "pointer index": BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(s0 + 16 + (6 * 10) + 6), 0xFFFFFF00); break;
            case "section length": BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(s6 - 16 + 4), 0x7FFFFFF0); break;
            case "lead count": bytes[s3] = 255; break;
            case "lead end": BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(s3 + 2 + 4), 2_000_000_000); break;
            case "byte count": BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(s6 + 6), 65535); break;
            case "table count": BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(s2), 19998); break;
            case "code count": BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(s2 + 2), 4000); break;
            case "qrs count": BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(s4 + 4), 65535); break;
            default: BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(s4), 65535); break;
        }

        ScpFuzzTests.FixCrcs(bytes);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<EcgFormatException>(() => ScpReader.Read(bytes, "liar"));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal("liar", e.RecordId);
        Assert.False(string.IsNullOrWhiteSpace(e.Reason));
        Assert.True(allocated < 4L * bytes.Length + (1 << 20), $"{lie}: allocated {allocated} bytes for a {bytes.Length}-byte file ({e.Reason})");
    }

    [Fact]
    public void PatientTagsAreNeverReadOut()
    {
        const string Name = "Zyxwvut";
        const string Id = "PID-987654321";
        var bytes = ScpWriter.Write(SyntheticEcg.Generate("p", 2, 500, 10));
        bytes = WithPatientTags(bytes, Name, Id);
        var record = ScpReader.Read(bytes, "p");
        var everything = string.Join("|", new[] { record.Format, record.Container, record.Description.ToString() }
            .Concat(record.Warnings).Concat(record.Comments).Concat(record.SourceUnits).Concat(record.Signal.LeadNames)
            .Concat(record.Signal.Metadata.Keys).Concat(record.Signal.Metadata.Values));
        Assert.DoesNotContain(Name, everything, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Id, everything, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("1961", everything, StringComparison.Ordinal);

        // Nor in a reason: break section 6 of the same file.
        var (offset, _) = SectionSpan(bytes, 6);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(offset + 16 + 6), 1);
        ScpFuzzTests.FixCrcs(bytes);
        var e = Assert.Throws<EcgFormatException>(() => ScpReader.Read(bytes, "p"));
        Assert.DoesNotContain(Name, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Id, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A copy of <paramref name="file"/> whose section 1 also holds a last name (tag 0), a patient id (tag 2) and a birth date (tag 5).</summary>
    private static byte[] WithPatientTags(byte[] file, string name, string id)
    {
        var tags = new List<byte>();
        void Tag(byte tag, byte[] value)
        {
            tags.Add(tag);
            tags.Add((byte)value.Length);
            tags.Add((byte)(value.Length >> 8));
            tags.AddRange(value);
        }

        Tag(0, Encoding.ASCII.GetBytes(name + "\0"));
        Tag(2, Encoding.ASCII.GetBytes(id + "\0"));
        Tag(5, [0xA9, 0x07, 3, 14]);
        var (offset, length) = SectionSpan(file, 1);
        var data = file.AsSpan(offset + 16, length - 16).ToArray();

        // Drop the writer's own empty tag 2 (the first tag: 3 + 1 bytes).
        var section = tags.Concat(data.Skip(4)).ToList();
        if (section.Count % 2 == 1)
        {
            section.Add(0);
        }

        return ScpFuzzTests.ReplaceSection(file, 1, section.ToArray());
    }

    /// <summary>A periodic ECG-like signal (the same beat every period) and its QRS fiducials (1-based).</summary>
    private static (EcgSignal Signal, int[] Fiducials) Periodic(int seconds, int bpm)
    {
        const int Rate = 500;
        var samples = seconds * Rate;
        var period = 60 * Rate / bpm;
        var fiducials = Enumerable.Range(0, samples / period).Select(k => (k * period) + (period / 2)).Where(f => f > 120 && f < samples - 220).ToArray();
        var leads = new double[12][];
        for (var l = 0; l < 12; l++)
        {
            var amplitude = 0.4 + (0.1 * l);
            leads[l] = new double[samples];
            for (var t = 0; t < samples; t++)
            {
                // One beat (QRS and T wave) at every listed fiducial, none elsewhere, over a slow wave.
                var value = 0.05 * Math.Sin(2 * Math.PI * 0.3 * t / Rate);
                foreach (var f in fiducials)
                {
                    var phase = (t - f) / (double)Rate;
                    value += (amplitude * Math.Exp(-phase * phase / 0.0002)) + (0.2 * amplitude * Math.Exp(-(phase - 0.2) * (phase - 0.2) / 0.003));
                }

                leads[l][t] = value;
            }
        }

        return (new EcgSignal("periodic", Rate, StandardLeads.Names, leads), fiducials.Select(f => f + 1).ToArray());
    }

    private static EcgRecord Read(byte[] bytes) => ScpReader.Read(bytes, "written");

    /// <summary>Every stored lead equals the original rounded to the AVM (to floating-point noise).</summary>
    private static void AssertQuantised(EcgSignal original, EcgRecord record, double avm, bool twelve)
    {
        var expectedLeads = twelve
            ? new[] { "I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF" }
            : ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"];
        Assert.Equal(expectedLeads, record.Signal.LeadNames);
        Assert.Equal(original.SampleCount, record.Signal.SampleCount);
        for (var l = 0; l < expectedLeads.Length; l++)
        {
            var source = original.Leads[original.LeadNames.ToList().IndexOf(expectedLeads[l])];
            for (var t = 0; t < source.Length; t++)
            {
                var expected = Math.Round(source[t] * 1e6 / avm) * avm * 1e-6;
                Assert.True(Math.Abs(expected - record.Signal.Leads[l][t]) < 1e-9, $"lead {expectedLeads[l]} sample {t}: {expected} vs {record.Signal.Leads[l][t]}");
            }
        }
    }

    private static EcgSignal Renamed(EcgSignal signal, string id) => new(id, signal.SamplingRate, signal.LeadNames, signal.Leads);

    /// <summary>Where section <paramref name="id"/> lies (offset, length), from section 0's pointers; (0, 0) when absent.</summary>
    internal static (int Offset, int Length) SectionSpan(byte[] file, int id)
    {
        if (id == 0)
        {
            return (6, (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(10)));
        }

        var length0 = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(10));
        for (var p = 6 + 16; p + 10 <= 6 + length0; p += 10)
        {
            if (BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(p)) == id)
            {
                var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 2));
                var index = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 6));
                return length == 0 ? (0, 0) : (index - 1, length);
            }
        }

        return (0, 0);
    }
}
