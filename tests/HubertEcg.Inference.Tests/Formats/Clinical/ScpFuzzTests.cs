using System.Buffers.Binary;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats.Scp;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Formats.Clinical;

/// <summary>
/// Seeded fuzzing of SCP-ECG files (the shared sample and files of every writer option): byte flips, truncations,
/// insertions, and corrupted lengths, counts and flags, most with the CRCs recomputed so that the parsers behind the
/// CRC checks see the damage. Every case reads or fails with an <see cref="EcgFormatException"/> naming the record;
/// no other exception, no allocation far beyond the file's size.
/// </summary>
public sealed class ScpFuzzTests
{
    private const int Cases = 1500;
    private const long AllocationLimit = 64L << 20;

    [Fact]
    public void MutatedScpFilesReadOrFailWithAReason()
    {
        var originals = Originals();
        var random = new Random(20261205);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal) { ["read"] = 0, ["rejected"] = 0 };
        for (var i = 0; i < Cases; i++)
        {
            var (name, original) = originals[random.Next(originals.Length)];
            var bytes = (byte[])original.Clone();
            var what = Mutate(random, ref bytes);
            var id = $"scp{i}";
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                var record = random.Next(2) == 0
                    ? ScpReader.Read(bytes, id)
                    : new ScpFormat().Read(new InMemoryRecordFileSource([new("f.scp", bytes)]), "f", id);
                Assert.Equal(id, record.RecordId);
                try
                {
                    record.ToStandard12Lead();
                }
                catch (EcgFormatException e)
                {
                    Assert.Equal(id, e.RecordId);
                }

                outcomes["read"]++;
            }
            catch (EcgFormatException e)
            {
                Assert.Equal(id, e.RecordId);
                Assert.False(string.IsNullOrWhiteSpace(e.Reason), $"case {i} ({name}: {what}): empty reason");
                outcomes["rejected"]++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i} ({name}: {what}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationLimit + (16L * bytes.Length), $"case {i} ({name}: {what}) allocated {allocated} bytes");
        }

        Assert.True(outcomes["read"] > 100, $"only {outcomes["read"]} mutated files read");
        Assert.True(outcomes["rejected"] > 500, $"only {outcomes["rejected"]} mutated files rejected");
    }

    /// <summary>Recomputes every section's CRC that section 0 points at (where it fits the file), then the record's.</summary>
    internal static void FixCrcs(byte[] bytes)
    {
        if (bytes.Length < 22)
        {
            return;
        }

        var length0 = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(10));
        for (long p = 6 + 16; p + 10 <= Math.Min(6L + length0, bytes.Length); p += 10)
        {
            var length = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)p + 2));
            var index = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)p + 6));
            if (BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)p)) != 0 && length >= 16 && index >= 7 && index - 1 + (long)length <= bytes.Length)
            {
                var section = bytes.AsSpan((int)(index - 1), (int)length);
                BinaryPrimitives.WriteUInt16LittleEndian(section, ScpCrc.Compute(section[2..]));
            }
        }

        if (length0 >= 16 && 6L + length0 <= bytes.Length)
        {
            var zero = bytes.AsSpan(6, (int)length0);
            BinaryPrimitives.WriteUInt16LittleEndian(zero, ScpCrc.Compute(zero[2..]));
        }

        FixRecordCrc(bytes);
    }

    /// <summary>Recomputes the record's CRC over its stated length (or the file, when that is shorter).</summary>
    internal static void FixRecordCrc(byte[] bytes)
    {
        if (bytes.Length < 6)
        {
            return;
        }

        var length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(2)), bytes.Length);
        if (length > 2)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes, ScpCrc.Compute(bytes.AsSpan(2, length - 2)));
        }
    }

    /// <summary>A copy of <paramref name="file"/> with section <paramref name="id"/>'s data replaced, pointers, lengths and CRCs updated.</summary>
    internal static byte[] ReplaceSection(byte[] file, int id, byte[] data)
    {
        var (offset, length) = ScpTests.SectionSpan(file, id);
        var section = new byte[16 + data.Length];
        file.AsSpan(offset, 16).CopyTo(section);
        data.CopyTo(section, 16);
        BinaryPrimitives.WriteUInt32LittleEndian(section.AsSpan(4), (uint)section.Length);
        var result = file[..offset].Concat(section).Concat(file[(offset + length)..]).ToArray();
        var delta = section.Length - length;
        var length0 = (int)BinaryPrimitives.ReadUInt32LittleEndian(result.AsSpan(10));
        for (var p = 6 + 16; p + 10 <= 6 + length0; p += 10)
        {
            var index = BinaryPrimitives.ReadUInt32LittleEndian(result.AsSpan(p + 6));
            if (BinaryPrimitives.ReadUInt16LittleEndian(result.AsSpan(p)) == id)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(p + 2), (uint)section.Length);
            }
            else if (index - 1 > offset)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(p + 6), (uint)(index + delta));
            }
        }

        BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(2), (uint)result.Length);
        FixCrcs(result);
        return result;
    }

    private static (string Name, byte[] Bytes)[] Originals()
    {
        // Short signals (4 s) keep thousands of cases fast; every writer path is among them.
        var signal = SyntheticEcg.Generate("f", 9, 500, 4);
        var fiducials = new[] { 400, 900, 1400 };
        var beat = new ScpReferenceBeatOptions(fiducials);
        return
        [
            ("sample", File.ReadAllBytes(RepoPaths.SharedFile("ecg-samples", "clinical", "scp", "ECGToolkit_Example.scp"))),
            ("default", ScpWriter.Write(signal)),
            ("custom", ScpWriter.Write(signal, new ScpWriterOptions { Huffman = ScpTests.SwitchingTables, DifferenceEncoding = 1 })),
            ("raw", ScpWriter.Write(signal, new ScpWriterOptions { Huffman = null, DifferenceEncoding = 0, AllTwelveLeads = true })),
            ("refbeat", ScpWriter.Write(signal, new ScpWriterOptions { ReferenceBeat = beat })),
            ("bimodal", ScpWriter.Write(signal, new ScpWriterOptions { Huffman = ScpTests.SwitchingTables, ReferenceBeat = beat with { Decimation = 4 } })),
        ];
    }

    private static string Mutate(Random random, ref byte[] bytes)
    {
        var fix = random.Next(5) != 0;
        string what;
        switch (random.Next(6))
        {
            case 0:
            {
                var flips = 1 + random.Next(16);
                for (var k = 0; k < flips; k++)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }

                what = $"{flips} bytes changed";
                break;
            }

            case 1:
                bytes = bytes[..random.Next(bytes.Length + 1)];
                what = $"truncated to {bytes.Length}";
                break;
            case 2:
            case 3:
            {
                var (field, width) = Field(random, bytes);
                var value = random.Next(6) switch
                {
                    0 => 0u,
                    1 => uint.MaxValue,
                    2 => (uint)random.Next(),
                    3 => (uint)random.Next(256),
                    4 => ReadField(bytes, field, width) + 1,
                    _ => ReadField(bytes, field, width) - 1,
                };
                WriteField(bytes, field, width, value);
                what = $"field at {field} ({width} bytes) -> {value}";
                break;
            }

            case 4:
            {
                var at = random.Next(bytes.Length);
                var count = 1 + random.Next(8);
                bytes = random.Next(2) == 0
                    ? bytes[..at].Concat(new byte[count]).Concat(bytes[at..]).ToArray()
                    : bytes[..at].Concat(bytes[Math.Min(bytes.Length, at + count)..]).ToArray();
                what = $"{count} bytes inserted or removed at {at}";
                break;
            }

            default:
            {
                // Damage inside section 6's lead data only, so the Huffman decoders meet it.
                var (offset, length) = ScpTests.SectionSpan(bytes, 6);
                var flips = 1 + random.Next(4);
                for (var k = 0; k < flips && length > 40; k++)
                {
                    bytes[offset + 40 + random.Next(length - 40)] ^= (byte)(1 << random.Next(8));
                }

                what = $"{flips} bits of section 6 flipped";
                break;
            }
        }

        if (fix)
        {
            FixCrcs(bytes);
        }

        return what + (fix ? ", CRCs fixed" : "");
    }

    /// <summary>A random header field: the record length, a pointer, a section length, or a count or flag of sections 2-6.</summary>
    private static (int Offset, int Width) Field(Random random, byte[] bytes)
    {
        var candidates = new List<(int, int)> { (2, 4), (10, 4) };
        for (var p = 22; p + 10 <= Math.Min(bytes.Length, 6 + 136); p += 10)
        {
            candidates.Add((p, 2));
            candidates.Add((p + 2, 4));
            candidates.Add((p + 6, 4));
        }

        for (var id = 1; id <= 6; id++)
        {
            var (offset, length) = ScpTests.SectionSpan(bytes, id);
            if (offset <= 0 || offset + Math.Min(length, 40) > bytes.Length)
            {
                continue;
            }

            candidates.Add((offset + 4, 4));
            for (var k = 16; k < Math.Min(length, 40); k += 2)
            {
                candidates.Add((offset + k, random.Next(2) == 0 ? 1 : 2));
            }
        }

        return candidates[random.Next(candidates.Count)];
    }

    private static uint ReadField(byte[] bytes, int offset, int width) => width switch
    {
        1 => bytes[offset],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset)),
        _ => BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset)),
    };

    private static void WriteField(byte[] bytes, int offset, int width, uint value)
    {
        switch (width)
        {
            case 1:
                bytes[offset] = (byte)value;
                break;
            case 2:
                BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(offset), (ushort)value);
                break;
            default:
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), value);
                break;
        }
    }
}
