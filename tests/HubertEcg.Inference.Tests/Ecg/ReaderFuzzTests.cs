using System.Text;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats.Npy;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Ecg;

/// <summary>
/// Seeded fuzzing of the real sample records: every mutated header or signal file either reads or fails with an
/// <see cref="EcgFormatException"/>; no other exception and no allocation far beyond the files' size.
/// </summary>
public sealed class ReaderFuzzTests
{
    private const int WfdbCases = 2400;
    private const int NpyCases = 400;
    private const long AllocationLimit = 64L << 20;

    // Small real records covering every format, the MATLAB container, two signal files, and PTB-XL.
    private static readonly (string Directory, string Name)[] Records =
    [
        ("wfdb", "test01_00s"), ("wfdb", "3000003_0003"), ("wfdb", "310derive"), ("wfdb", "311derive"),
        ("wfdb", "binformats"), ("wfdb", "100_3chan"), ("wfdb", "a103l"), ("wfdb", "s0010_re"), ("ptb-xl", "00001_lr"),
    ];

    private static readonly string[] Junk =
    [
        "0", "-1", "1", "2", "999999999999", "2147483648", "-2147483649", "NaN", "Infinity", "-0", "1e308", "abc", "", "16+24", "212x0",
        "16x100000", "16:99999999", "16+99999999999", "8", "61", "80", "160", "24", "32", "310", "311", "0/mV", "200(", "200(9)/", "/",
        "x", "~", "../etc", "12:00:00", "31/02/2020", "+", ":", "(", ")", "1/2(3)", "#", "\t",
    ];

    [Fact]
    public void MutatedWfdbRecordsReadOrFailWithAReason()
    {
        var originals = Records.Select(r => (r.Name, Files: Load(r.Directory, r.Name))).Append(("v", MultiSegment())).ToArray();
        var random = new Random(20261124);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal) { ["read"] = 0, ["rejected"] = 0 };
        for (var i = 0; i < WfdbCases; i++)
        {
            var (name, files) = originals[random.Next(originals.Length)];
            var mutated = files.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            var what = Mutate(random, name, mutated);
            var source = new InMemoryRecordFileSource(mutated);
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                var record = WfdbFormat.Load(source, name, $"fuzz{i}");
                if (record.Wfdb is { } wfdb && wfdb.SampleCount > 0)
                {
                    var from = random.NextInt64(wfdb.SampleCount);
                    var to = from + random.NextInt64(wfdb.SampleCount - from + 1);
                    var channel = random.Next(wfdb.Signals.Count);
                    wfdb.ReadDigital(from, to, [channel]);
                    wfdb.ReadPhysical(from, to, [channel]);
                }

                record.ToStandard12Lead();
                outcomes["read"]++;
            }
            catch (EcgFormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Reason), $"case {i} ({what}): empty reason");
                Assert.Equal($"fuzz{i}", e.RecordId);
                outcomes["rejected"]++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i} ({name}: {what}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            var size = mutated.Values.Sum(v => (long)v.Length);
            Assert.True(allocated < AllocationLimit + (16 * size), $"case {i} ({name}: {what}) allocated {allocated} bytes");
        }

        // Both outcomes occur: the mutations are neither all harmless nor all fatal.
        Assert.True(outcomes["read"] > 100, $"only {outcomes["read"]} mutated records read");
        Assert.True(outcomes["rejected"] > 100, $"only {outcomes["rejected"]} mutated records rejected");
    }

    [Fact]
    public void MutatedNpyArraysReadOrFailWithAReason()
    {
        var original = File.ReadAllBytes(RepoPaths.SharedFile("golden", "preprocess", "00001_lr", "raw.npy"))[..4096];
        var random = new Random(7);
        for (var i = 0; i < NpyCases; i++)
        {
            var bytes = (byte[])original.Clone();
            var headerEnd = Math.Min(bytes.Length, 128);
            switch (random.Next(4))
            {
                case 0:
                    bytes[random.Next(headerEnd)] = (byte)random.Next(256);
                    break;
                case 1:
                    var text = Encoding.ASCII.GetBytes(Junk[random.Next(Junk.Length)]);
                    text.CopyTo(bytes, random.Next(10, headerEnd - text.Length));
                    break;
                case 2:
                    bytes = bytes[..random.Next(bytes.Length)];
                    break;
                default:
                    for (var k = 0; k < 8; k++)
                    {
                        bytes[random.Next(bytes.Length)] = 0xFF;
                    }

                    break;
            }

            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                NpyFormat.Load(random.Next(2) == 0 ? new MemoryStream(bytes) : new BadInputTests.NonSeekableStream(bytes), $"npy{i}", 100).ToStandard12Lead();
            }
            catch (EcgFormatException e)
            {
                Assert.Equal($"npy{i}", e.RecordId);
            }
            catch (Exception e)
            {
                Assert.Fail($"npy case {i} threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }

            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < AllocationLimit, $"npy case {i} allocated too much");
        }
    }

    /// <summary>A variable-layout multi-segment record with a null segment (no real sample has one).</summary>
    private static Dictionary<string, byte[]> MultiSegment() => new(StringComparer.Ordinal)
    {
        ["v.hea"] = Encoding.ASCII.GetBytes("v/4 2 100 7\nv_layout 0\nseg1 2\n~ 3\nseg2 2\n"),
        ["v_layout.hea"] = Encoding.ASCII.GetBytes("v_layout 2 100 0\n~ 0 200 16 0 0 0 0 II\n~ 0 100 16 0 0 0 0 V1\n"),
        ["seg1.hea"] = Encoding.ASCII.GetBytes("seg1 1 100 2\nseg1.dat 16 100 16 0 0 25 0 II\n"),
        ["seg1.dat"] = WfdbTestFiles.Format16([50], [-25]),
        ["seg2.hea"] = Encoding.ASCII.GetBytes("seg2 2 100 2\nseg2.dat 212 100 12 0 0 16 0 V1\nseg2.dat 212 400(8) 12 0 0 616 0 II\n"),
        ["seg2.dat"] = [7, 0x00, 0x98, 9, 0x00, 0xD0],
    };

    private static Dictionary<string, byte[]> Load(string directory, string name)
    {
        var files = Directory.GetFiles(RepoPaths.SharedFile("ecg-samples", directory))
            .Where(f => Path.GetFileName(f).StartsWith(name + ".", StringComparison.Ordinal))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes, StringComparer.Ordinal);

        // Keep the two long records short (2,000 frames) so that thousands of cases run in seconds.
        const int Frames = 2000;
        if (name == "s0010_re")
        {
            files[name + ".hea"] = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(files[name + ".hea"]).Replace("s0010_re 15 1000 38400", $"s0010_re 15 1000 {Frames}", StringComparison.Ordinal));
            files[name + ".dat"] = files[name + ".dat"][..(Frames * 12 * 2)];
            files[name + ".xyz"] = files[name + ".xyz"][..(Frames * 3 * 2)];
        }
        else if (name == "a103l")
        {
            files[name + ".hea"] = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(files[name + ".hea"]).Replace("a103l 3 250 82500", $"a103l 3 250 {Frames}", StringComparison.Ordinal));
            var mat = files[name + ".mat"][..(24 + (Frames * 3 * 2))];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(mat.AsSpan(8), Frames); // the MATLAB v4 matrix's column count
            files[name + ".mat"] = mat;
        }

        return files;
    }

    private static string Mutate(Random random, string name, Dictionary<string, byte[]> files)
    {
        var headerName = name + ".hea";
        var signalFiles = files.Keys.Where(k => k != headerName).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        var signal = signalFiles[random.Next(signalFiles.Length)];
        var lines = Encoding.ASCII.GetString(files[headerName]).Split('\n').ToList();
        switch (random.Next(12))
        {
            case 0:
            case 1:
            case 2:
            case 3:
            {
                // Replace one token of one line with junk.
                var l = random.Next(lines.Count);
                var tokens = lines[l].Split(' ');
                var t = random.Next(tokens.Length);
                tokens[t] = Junk[random.Next(Junk.Length)];
                lines[l] = string.Join(' ', tokens);
                files[headerName] = Encoding.ASCII.GetBytes(string.Join('\n', lines));
                return $"header line {l} token {t} -> '{tokens[t]}'";
            }

            case 4:
            {
                // Replace a character inside a field (gain, format, counts).
                var bytes = files[headerName];
                var p = random.Next(bytes.Length);
                bytes = (byte[])bytes.Clone();
                bytes[p] = (byte)"0123456789+-x:/().e \n#~"[random.Next(23)];
                files[headerName] = bytes;
                return $"header byte {p}";
            }

            case 5:
            {
                var l = random.Next(lines.Count);
                if (random.Next(2) == 0)
                {
                    lines.RemoveAt(l);
                }
                else
                {
                    lines.Insert(l, lines[l]);
                }

                files[headerName] = Encoding.ASCII.GetBytes(string.Join('\n', lines));
                return $"header line {l} removed or duplicated";
            }

            case 6:
                files[headerName] = files[headerName][..random.Next(files[headerName].Length + 1)];
                return "header truncated";
            case 7:
                files[signal] = files[signal][..random.Next(files[signal].Length + 1)];
                return $"{signal} truncated";
            case 8:
            {
                var bytes = (byte[])files[signal].Clone();
                var flips = 1 + random.Next(64);
                for (var k = 0; k < flips && bytes.Length > 0; k++)
                {
                    bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                }

                files[signal] = bytes;
                return $"{signal} {flips} bytes changed";
            }

            case 9:
                files.Remove(signal);
                return $"{signal} removed";
            case 10:
                files[signal] = [];
                return $"{signal} emptied";
            default:
            {
                // Lie about the length: multiply or replace the sample count on the record line.
                var tokens = lines[0].Split(' ');
                if (tokens.Length > 3)
                {
                    tokens[3] = random.Next(3) switch
                    {
                        0 => "2000000000",
                        1 => (long.Parse(tokens[3], System.Globalization.CultureInfo.InvariantCulture) + 1 + random.Next(10)).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        _ => "0",
                    };
                    lines[0] = string.Join(' ', tokens);
                }

                files[headerName] = Encoding.ASCII.GetBytes(string.Join('\n', lines));
                return $"record line -> '{lines[0]}'";
            }
        }
    }
}
