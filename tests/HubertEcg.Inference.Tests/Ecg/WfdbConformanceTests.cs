using System.IO.Compression;
using System.Text.Json;
using HubertEcg.Inference.Ecg;
using HubertEcg.Inference.Formats.Wfdb;
using HubertEcg.Testing;

namespace HubertEcg.Inference.Tests.Ecg;

/// <summary>Every case of ecg-samples/wfdb-targets/cases.json against the WFDB C library's rdsamp output.</summary>
public sealed class WfdbConformanceTests
{
    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in LoadCases())
        {
            data.Add(c.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesRdsamp(string name)
    {
        var c = LoadCases().Single(x => x.Name == name);
        var target = ReadTarget(c.Target);

        // Through the code behind `hubert-ecg ecg dump`.
        using var writer = new StringWriter();
        var warnings = EcgDump.Write(writer, RepoPaths.SharedFile("ecg-samples", c.Record), c.SampFrom, c.SampTo, c.Channels, c.Physical);
        Assert.Empty(warnings);
        var text = writer.ToString();

        // Exact text (same column widths as rdsamp), and value by value.
        Assert.Equal(target, text);
        AssertSameValues(target, text, c.Physical);
    }

    [Fact]
    public void PartialReadsOfEveryFormatMatchTheWholeRecord()
    {
        var c = LoadCases().Single(x => x.Name == "1f");
        var record = WfdbRecord.Open(RepoPaths.SharedFile("ecg-samples", c.Record));
        var rows = ReadTarget(c.Target).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var length = (int)record.SampleCount;
        Assert.Equal(rows.Length, length);
        var variants = 0;
        for (var from = 0; from <= 2; from++)
        {
            for (var to = length - 3; to <= length; to++)
            {
                // All channels at once, then each channel alone (each signal lives in its own file and format).
                var all = record.ReadDigital(from, to);
                for (var channel = 0; channel < record.Signals.Count; channel++)
                {
                    var alone = record.ReadDigital(from, to, [channel])[0];
                    Assert.Equal(all[channel], alone);
                    for (var t = from; t < to; t++)
                    {
                        var expected = long.Parse(rows[t].Split('\t', StringSplitOptions.TrimEntries)[channel], System.Globalization.CultureInfo.InvariantCulture);
                        Assert.True(expected == alone[t - from], $"format {record.Signals[channel].Format}, [{from}, {to}), row {t}: {alone[t - from]} != {expected}");
                    }
                }

                variants++;
            }
        }

        Assert.Equal(12, variants);
    }

    [Fact]
    public void ChecksumsOfTheSamplesMatchTheirHeaders()
    {
        foreach (var name in new[] { "test01_00s", "a103l", "3000003_0003", "binformats", "100", "100_3chan", "310derive", "311derive", "s0010_re" })
        {
            var record = WfdbRecord.Open(RepoPaths.SharedFile("ecg-samples", "wfdb", name));
            record.ReadDigital();
            Assert.True(record.Warnings.Count == 0, $"{name}: {string.Join("; ", record.Warnings)}");
        }
    }

    private static void AssertSameValues(string expected, string actual, bool physical)
    {
        var e = expected.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var a = actual.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(e.Length, a.Length);
        for (var r = 0; r < e.Length; r++)
        {
            var ev = e[r].Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            var av = a[r].Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(ev.Length, av.Length);
            for (var k = 0; k < ev.Length; k++)
            {
                if (physical)
                {
                    Assert.Equal(Math.Round(double.Parse(ev[k], System.Globalization.CultureInfo.InvariantCulture), 8), Math.Round(double.Parse(av[k], System.Globalization.CultureInfo.InvariantCulture), 8));
                }
                else
                {
                    Assert.Equal(long.Parse(ev[k], System.Globalization.CultureInfo.InvariantCulture), long.Parse(av[k], System.Globalization.CultureInfo.InvariantCulture));
                }
            }
        }
    }

    internal static string ReadTarget(string target)
    {
        var path = RepoPaths.SharedFile("ecg-samples", "wfdb-targets", target);
        if (target.EndsWith(".gz", StringComparison.Ordinal))
        {
            using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
            using var reader = new StreamReader(gz);
            return reader.ReadToEnd();
        }

        return File.ReadAllText(path);
    }

    internal sealed record Case(string Name, string Record, long SampFrom, long? SampTo, int[]? Channels, bool Physical, string Target);

    internal static List<Case> LoadCases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.SharedFile("ecg-samples", "wfdb-targets", "cases.json")));
        var cases = new List<Case>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var sampto = c.GetProperty("sampto");
            var channels = c.GetProperty("channels");
            cases.Add(new Case(
                c.GetProperty("name").GetString()!,
                c.GetProperty("record").GetString()!,
                c.GetProperty("sampfrom").GetInt64(),
                sampto.ValueKind == JsonValueKind.Null ? null : sampto.GetInt64(),
                channels.ValueKind == JsonValueKind.Null ? null : channels.EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                c.GetProperty("physical").GetBoolean(),
                c.GetProperty("target").GetString()!));
        }

        return cases;
    }
}
