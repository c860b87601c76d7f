using System.Buffers.Binary;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Tests.Ecg;

/// <summary>Builds small WFDB records in memory for tests.</summary>
internal static class WfdbTestFiles
{
    /// <summary>Format 16 bytes of frame-interleaved samples.</summary>
    internal static byte[] Format16(params int[][] frames)
    {
        var values = frames.SelectMany(f => f).ToArray();
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(2 * i), (short)values[i]);
        }

        return bytes;
    }

    /// <summary>Format 16 bytes of one signal per column: columns[c][t].</summary>
    internal static byte[] Format16Columns(params int[][] columns)
    {
        var n = columns[0].Length;
        var frames = new int[n][];
        for (var t = 0; t < n; t++)
        {
            frames[t] = columns.Select(c => c[t]).ToArray();
        }

        return Format16(frames);
    }

    internal static byte[] Text(string text) => Encoding.ASCII.GetBytes(text);

    internal static InMemoryRecordFileSource Source(params (string Name, byte[] Bytes)[] files) =>
        new(files.Select(f => new KeyValuePair<string, byte[]>(f.Name, f.Bytes)));

    /// <summary>A 12-lead record (500 Hz, format 16, 1 s) with lead k holding k * 10 + t % 7 ADC units at gain 200.</summary>
    internal static InMemoryRecordFileSource TwelveLead(string name = "rec", string[]? leadNames = null, int samples = 500)
    {
        leadNames ??= ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];
        var columns = leadNames.Select((_, k) => Enumerable.Range(0, samples).Select(t => (k * 10) + (t % 7)).ToArray()).ToArray();
        var header = new StringBuilder($"{name} {leadNames.Length} 500 {samples}\n");
        foreach (var lead in leadNames)
        {
            header.Append($"{name}.dat 16 200/mV 16 0 0 0 0 {lead}\n");
        }

        return Source(($"{name}.hea", Text(header.ToString())), ($"{name}.dat", Format16Columns(columns)));
    }
}
