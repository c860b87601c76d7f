using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Wfdb;

/// <summary>Writes signals as WFDB records (format 16 or 212) and PhysioNet Challenge records (MATLAB v4 <c>.mat</c> + <c>.hea</c>).</summary>
public static class WfdbWriter
{
    /// <summary>A WFDB record: <c>NAME.hea</c> and <c>NAME.dat</c> (format 16 or 212), gain in adu/mV.</summary>
    public static IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName, int format = 16, double gain = 1000)
    {
        if (format is not (16 or 212))
        {
            throw new ArgumentException($"format {format} is not written here (16 or 212)", nameof(format));
        }

        var channels = signal.Leads.Length;
        var samples = signal.SampleCount;
        var digital = Digitise(signal, gain, format == 212 ? 2047 : 32767);
        byte[] data;
        if (format == 16)
        {
            data = new byte[samples * channels * 2];
            for (var i = 0; i < samples; i++)
            {
                for (var c = 0; c < channels; c++)
                {
                    BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(((i * channels) + c) * 2), (short)digital[c][i]);
                }
            }
        }
        else
        {
            // Format 212: pairs of 12-bit samples in 3 bytes, in frame order.
            var total = samples * channels;
            data = new byte[((total + 1) / 2) * 3];
            for (var k = 0; k < total; k += 2)
            {
                var a = digital[k % channels][k / channels] & 0xFFF;
                var b = k + 1 < total ? digital[(k + 1) % channels][(k + 1) / channels] & 0xFFF : 0;
                var o = k / 2 * 3;
                data[o] = (byte)(a & 0xFF);
                data[o + 1] = (byte)(((a >> 8) & 0x0F) | ((b >> 4) & 0xF0));
                data[o + 2] = (byte)(b & 0xFF);
            }
        }

        var header = Header(signal, recordName, $"{recordName}.dat", format.ToString(CultureInfo.InvariantCulture), gain, digital, format == 212 ? 12 : 16);
        return new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [$"{recordName}.hea"] = Encoding.ASCII.GetBytes(header),
            [$"{recordName}.dat"] = data,
        };
    }

    /// <summary>A PhysioNet/CinC Challenge record: <c>NAME.hea</c> and a MATLAB v4 <c>NAME.mat</c> holding int16 <c>val</c> (format 16+24).</summary>
    public static IReadOnlyDictionary<string, byte[]> WriteChallengeMat(EcgSignal signal, string recordName, double gain = 1000)
    {
        var channels = signal.Leads.Length;
        var samples = signal.SampleCount;
        var digital = Digitise(signal, gain, 32767);
        var mat = new byte[24 + (samples * channels * 2)];
        BinaryPrimitives.WriteInt32LittleEndian(mat, 30); // little-endian IEEE, int16, full matrix
        BinaryPrimitives.WriteInt32LittleEndian(mat.AsSpan(4), channels);
        BinaryPrimitives.WriteInt32LittleEndian(mat.AsSpan(8), samples);
        BinaryPrimitives.WriteInt32LittleEndian(mat.AsSpan(12), 0);
        BinaryPrimitives.WriteInt32LittleEndian(mat.AsSpan(16), 4);
        Encoding.ASCII.GetBytes("val\0").CopyTo(mat, 20);

        // Column-major signals x samples: each column (one sample of every signal) is one frame.
        for (var i = 0; i < samples; i++)
        {
            for (var c = 0; c < channels; c++)
            {
                BinaryPrimitives.WriteInt16LittleEndian(mat.AsSpan(24 + (((i * channels) + c) * 2)), (short)digital[c][i]);
            }
        }

        var header = Header(signal, recordName, $"{recordName}.mat", "16+24", gain, digital, 16);
        return new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [$"{recordName}.hea"] = Encoding.ASCII.GetBytes(header),
            [$"{recordName}.mat"] = mat,
        };
    }

    private static int[][] Digitise(EcgSignal signal, double gain, int limit)
    {
        var result = new int[signal.Leads.Length][];
        for (var c = 0; c < result.Length; c++)
        {
            var lead = signal.Leads[c];
            var values = new int[lead.Length];
            for (var i = 0; i < lead.Length; i++)
            {
                // Keep clear of the invalid-sample code (the most negative value) of formats 16 and 212.
                values[i] = (int)Math.Clamp(Math.Round(lead[i] * gain), -limit, limit);
            }

            result[c] = values;
        }

        return result;
    }

    private static string Header(EcgSignal signal, string recordName, string fileName, string format, double gain, int[][] digital, int resolution)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{recordName} {signal.Leads.Length} {signal.SamplingRate} {signal.SampleCount}\n");
        for (var c = 0; c < signal.Leads.Length; c++)
        {
            var sum = 0;
            foreach (var v in digital[c])
            {
                sum += v;
            }

            var first = digital[c].Length > 0 ? digital[c][0] : 0;
            text.Append(CultureInfo.InvariantCulture, $"{fileName} {format} {gain}/mV {resolution} 0 {first} {(short)sum} 0 {signal.LeadNames[c]}\n");
        }

        text.Append("# synthetic ECG (HubertEcg demo cohort)\n");
        return text.ToString();
    }
}

/// <summary>WFDB records as the registry's writer: a header and a format 16 signal file at 1000 adu/mV.</summary>
public sealed class WfdbFormat16Writer : IRecordWriter
{
    public string Name => "wfdb";

    public IReadOnlyDictionary<string, byte[]> Write(EcgSignal signal, string recordName) => WfdbWriter.Write(signal, recordName);
}
