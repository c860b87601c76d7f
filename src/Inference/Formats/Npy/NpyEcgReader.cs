using System.Buffers;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Npy;

/// <summary>ECGs stored as NumPy arrays: leads x samples (float32, float64 or int16), at a rate the caller gives.</summary>
public static class NpyEcgReader
{
    /// <summary>The most samples (leads x samples) an array may hold.</summary>
    public const long MaxSamples = 1L << 26;

    /// <summary>Reads a .npy file.</summary>
    public static EcgSignal Read(string path, double samplingRate, IReadOnlyList<string>? leadNames = null, double scaleToMillivolts = 1.0)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new EcgFormatException(path, "file is missing");
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(stream, path, samplingRate, leadNames, scaleToMillivolts);
    }

    /// <summary>
    /// Reads an array from a stream. Without <paramref name="leadNames"/>, a 12-row array is taken to hold the
    /// standard leads in standard order, and other row counts are named "0", "1", ...
    /// </summary>
    public static EcgSignal Read(Stream stream, string recordId, double samplingRate, IReadOnlyList<string>? leadNames = null, double scaleToMillivolts = 1.0)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!double.IsFinite(samplingRate) || samplingRate <= 0)
        {
            throw new EcgFormatException(recordId, $"sampling rate {samplingRate} Hz is not a positive number (give it with --fs)");
        }

        if (!stream.CanSeek)
        {
            // Buffer a non-seekable stream first, so that sizes the header claims are checked against real data.
            var copy = new MemoryStream();
            var chunk = new byte[1 << 16];
            int n;
            while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                copy.Write(chunk, 0, n);
                if (copy.Length > (MaxSamples * 8) + (1 << 20))
                {
                    throw new EcgFormatException(recordId, "array is larger than the reader's limit");
                }
            }

            copy.Position = 0;
            stream = copy;
        }

        NpyHeader header;
        try
        {
            header = IO.Npy.ReadHeader(stream);
        }
        catch (InvalidDataException e)
        {
            throw new EcgFormatException(recordId, e.Message, e);
        }

        if (header.DType is not (NpyDType.Float32 or NpyDType.Float64 or NpyDType.Int16))
        {
            throw new EcgFormatException(recordId, $"array type {header.DType} is not float32, float64 or int16");
        }

        var shape = header.Shape;
        var (leads, samples) = shape.Length switch
        {
            1 => (1, shape[0]),
            2 => (shape[0], shape[1]),
            _ => throw new EcgFormatException(recordId, $"array of shape ({string.Join(", ", shape)}) is not leads x samples"),
        };
        if (leads == 0 || samples == 0)
        {
            throw new EcgFormatException(recordId, $"array of shape ({string.Join(", ", shape)}) holds no samples");
        }

        if (header.Count > MaxSamples)
        {
            throw new EcgFormatException(recordId, $"array of {header.Count} values exceeds the reader's limit of {MaxSamples}");
        }

        var size = header.ElementSize;
        if (stream.CanSeek && stream.Length - stream.Position < header.Count * size)
        {
            throw new EcgFormatException(recordId, $"file holds {stream.Length - stream.Position} data bytes but shape ({string.Join(", ", shape)}) needs {header.Count * size} (truncated file)");
        }

        var names = leadNames ?? (leads == 12 ? StandardLeads.Names : Enumerable.Range(0, leads).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList());
        if (names.Count != leads)
        {
            throw new EcgFormatException(recordId, $"{names.Count} lead names given for an array of {leads} leads");
        }

        var data = header.FortranOrder && shape.Length == 2
            ? ReadInterleaved(stream, recordId, header, leads, samples)
            : ReadLeadByLead(stream, recordId, header, leads, samples);
        for (var lead = 0; lead < leads; lead++)
        {
            if (scaleToMillivolts != 1.0)
            {
                var row = data[lead];
                for (var t = 0; t < samples; t++)
                {
                    row[t] *= scaleToMillivolts;
                }
            }

            EcgValues.CheckFinite(recordId, names[lead], data[lead]);
        }

        return new EcgSignal(recordId, samplingRate, names, data);
    }

    /// <summary>C order: each lead's samples are contiguous. A lead's array is allocated only once its bytes have arrived.</summary>
    private static double[][] ReadLeadByLead(Stream stream, string recordId, NpyHeader header, int leads, int samples)
    {
        var size = header.ElementSize;
        var data = new double[leads][];
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)samples * size, 1 << 20));
        try
        {
            for (var lead = 0; lead < leads; lead++)
            {
                var row = new double[samples];
                var done = 0;
                while (done < samples)
                {
                    var want = Math.Min(samples - done, buffer.Length / size);
                    var got = stream.ReadAtLeast(buffer.AsSpan(0, want * size), want * size, throwOnEndOfStream: false);
                    if (got < want * size)
                    {
                        throw new EcgFormatException(recordId, $"file ends inside lead {lead} (truncated file)");
                    }

                    IO.Npy.Decode(header.DType, buffer.AsSpan(0, want * size), row.AsSpan(done, want));
                    done += want;
                }

                data[lead] = row;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return data;
    }

    /// <summary>Fortran order (leads x samples stored column-major): the leads of each sample are contiguous.</summary>
    private static double[][] ReadInterleaved(Stream stream, string recordId, NpyHeader header, int leads, int samples)
    {
        var size = header.ElementSize;
        var data = new double[leads][];
        for (var lead = 0; lead < leads; lead++)
        {
            data[lead] = new double[samples];
        }

        var framesPerChunk = Math.Max(1, (1 << 16) / leads);
        var buffer = ArrayPool<byte>.Shared.Rent(framesPerChunk * leads * size);
        var values = ArrayPool<double>.Shared.Rent(framesPerChunk * leads);
        try
        {
            var t = 0;
            while (t < samples)
            {
                var frames = Math.Min(samples - t, framesPerChunk);
                var bytes = frames * leads * size;
                if (stream.ReadAtLeast(buffer.AsSpan(0, bytes), bytes, throwOnEndOfStream: false) < bytes)
                {
                    throw new EcgFormatException(recordId, $"file ends at sample {t} (truncated file)");
                }

                IO.Npy.Decode(header.DType, buffer.AsSpan(0, bytes), values.AsSpan(0, frames * leads));
                for (var k = 0; k < frames; k++)
                {
                    for (var lead = 0; lead < leads; lead++)
                    {
                        data[lead][t + k] = values[(k * leads) + lead];
                    }
                }

                t += frames;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            ArrayPool<double>.Shared.Return(values);
        }

        return data;
    }
}
