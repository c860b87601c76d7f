using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using PureHDF;

namespace HubertEcg.Inference.Ecg.Synthetic;

/// <summary>
/// Synthetic 12-lead ECGs and the archive formats they are stored in (WFDB format 16 and 212, PhysioNet
/// Challenge MATLAB v4 <c>.mat</c> + <c>.hea</c>, CODE-15%-layout HDF5 shards), for demos, benchmarks and tests.
/// The signals are ECG-like (a beat every 0.6 to 1.1 s, a T wave, baseline wander, noise), deterministic per seed.
/// </summary>
public static class SyntheticEcg
{
    /// <summary>A 12-lead signal in mV, leads in the standard order.</summary>
    public static EcgSignal Generate(string recordId, int seed, double samplingRate, double seconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samplingRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seconds);
        var samples = (int)Math.Round(seconds * samplingRate);
        var random = new Random(seed);
        var beat = 0.6 + (0.5 * random.NextDouble());
        var leads = new double[StandardLeads.Names.Count][];
        for (var lead = 0; lead < leads.Length; lead++)
        {
            var amplitude = (0.3 + random.NextDouble()) * (random.Next(4) == 0 ? -1 : 1);
            var wander = random.NextDouble() * 2 * Math.PI;
            var values = new double[samples];
            for (var i = 0; i < samples; i++)
            {
                var t = i / samplingRate;
                var phase = (t % beat) - (beat / 2);
                var qrs = amplitude * Math.Exp(-phase * phase / 0.0002);
                var tw = 0.25 * amplitude * Math.Exp(-(phase - 0.22) * (phase - 0.22) / 0.003);
                values[i] = qrs + tw + (0.08 * Math.Sin((2 * Math.PI * 0.25 * t) + wander)) + (0.01 * (random.NextDouble() - 0.5));
            }

            leads[lead] = values;
        }

        return new EcgSignal(recordId, samplingRate, StandardLeads.Names, leads);
    }

    /// <summary>A WFDB record: <c>NAME.hea</c> and <c>NAME.dat</c> (format 16 or 212), gain in adu/mV.</summary>
    public static IReadOnlyDictionary<string, byte[]> WriteWfdb(EcgSignal signal, string recordName, int format = 16, double gain = 1000)
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

    /// <summary>
    /// A CODE-15%-layout HDF5 shard: <c>tracings</c> (exams x samples x 12, float32, mV) and <c>exam_id</c> (int64).
    /// All signals must have the same length.
    /// </summary>
    public static byte[] WriteCode15Shard(IReadOnlyList<EcgSignal> exams, IReadOnlyList<long> examIds)
    {
        ArgumentNullException.ThrowIfNull(exams);
        ArgumentNullException.ThrowIfNull(examIds);
        if (exams.Count == 0 || exams.Count != examIds.Count)
        {
            throw new ArgumentException($"{exams.Count} exams for {examIds.Count} ids");
        }

        var samples = exams[0].SampleCount;
        var tracings = new float[exams.Count, samples, 12];
        for (var e = 0; e < exams.Count; e++)
        {
            if (exams[e].SampleCount != samples || exams[e].Leads.Length != 12)
            {
                throw new ArgumentException($"exam {e} is not 12 x {samples}");
            }

            for (var t = 0; t < samples; t++)
            {
                for (var l = 0; l < 12; l++)
                {
                    tracings[e, t, l] = (float)exams[e].Leads[l][t];
                }
            }
        }

        var file = new H5File
        {
            ["tracings"] = tracings,
            ["exam_id"] = examIds.ToArray(),
        };
        var path = Path.Combine(Path.GetTempPath(), $"hubert-ecg-{Guid.NewGuid():N}.hdf5");
        try
        {
            file.Write(path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
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
