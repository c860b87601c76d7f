using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace HubertEcg.Inference.IO;

/// <summary>Element types a NumPy array file may hold that this project reads.</summary>
public enum NpyDType
{
    Float32,
    Float64,
    Int16,
    Int32,
    Int64,
}

/// <summary>A NumPy array read from a <c>.npy</c> file: its shape and its values widened to double.</summary>
public sealed class NpyArray
{
    public NpyArray(int[] shape, NpyDType dtype, double[] data)
    {
        Shape = shape;
        DType = dtype;
        Data = data;
    }

    public int[] Shape { get; }

    public NpyDType DType { get; }

    /// <summary>Values in C order.</summary>
    public double[] Data { get; }

    public float[] ToSingle()
    {
        var result = new float[Data.Length];
        for (var i = 0; i < Data.Length; i++)
        {
            result[i] = (float)Data[i];
        }

        return result;
    }
}

/// <summary>A .npy header: shape, element type, element size in bytes and element count.</summary>
/// <remarks>With <see cref="FortranOrder"/>, the data that follow are stored column-major (the first index varies fastest).</remarks>
public sealed record NpyHeader(int[] Shape, NpyDType DType, int ElementSize, long Count, bool FortranOrder = false);

/// <summary>The NumPy file format (version 1.0 and 2.0, little-endian, C order).</summary>
public static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static NpyArray Read(string path)
    {
        using var stream = File.OpenRead(path);
        try
        {
            return Read(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    public static NpyArray Read(Stream stream)
    {
        var header = ReadHeader(stream);
        var size = header.ElementSize;
        var count = header.Count;
        if (count > Array.MaxLength / size)
        {
            throw new InvalidDataException($"array of {count} elements is too large");
        }

        if (stream.CanSeek && stream.Length - stream.Position < count * size)
        {
            throw new InvalidDataException($"file holds {stream.Length - stream.Position} data bytes but shape ({string.Join(", ", header.Shape)}) needs {count * size}");
        }

        var data = new double[count];
        var chunk = new byte[(int)Math.Min(count * size, 1 << 16) / size * size + size];
        long done = 0;
        while (done < count)
        {
            var want = (int)Math.Min(count - done, chunk.Length / size);
            var got = stream.ReadAtLeast(chunk.AsSpan(0, want * size), want * size, throwOnEndOfStream: false);
            if (got < want * size)
            {
                throw new InvalidDataException($"file ends after {(done * size) + got} data bytes but shape ({string.Join(", ", header.Shape)}) needs {count * size}");
            }

            Decode(header.DType, chunk.AsSpan(0, want * size), data.AsSpan((int)done, want));
            done += want;
        }

        if (header.FortranOrder && header.Shape.Length > 1)
        {
            data = ToCOrder(data, header.Shape);
        }

        return new NpyArray(header.Shape, header.DType, data);
    }

    /// <summary>Reorders column-major (Fortran) data into row-major (C) order.</summary>
    private static double[] ToCOrder(double[] fortran, int[] shape)
    {
        var result = new double[fortran.Length];
        var rank = shape.Length;
        var index = new int[rank];
        for (var c = 0; c < result.Length; c++)
        {
            // index is the C-order multi-index of element c; its Fortran offset has the first index fastest.
            long f = 0;
            long stride = 1;
            for (var d = 0; d < rank; d++)
            {
                f += index[d] * stride;
                stride *= shape[d];
            }

            result[c] = fortran[f];
            for (var d = rank - 1; d >= 0; d--)
            {
                if (++index[d] < shape[d])
                {
                    break;
                }

                index[d] = 0;
            }
        }

        return result;
    }

    /// <summary>Decodes little-endian elements of <paramref name="dtype"/> into doubles.</summary>
    public static void Decode(NpyDType dtype, ReadOnlySpan<byte> bytes, Span<double> dest)
    {
        switch (dtype)
        {
            case NpyDType.Float32:
                for (var i = 0; i < dest.Length; i++)
                {
                    dest[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i * 4, 4));
                }

                break;
            case NpyDType.Float64:
                for (var i = 0; i < dest.Length; i++)
                {
                    dest[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes.Slice(i * 8, 8));
                }

                break;
            case NpyDType.Int16:
                for (var i = 0; i < dest.Length; i++)
                {
                    dest[i] = BinaryPrimitives.ReadInt16LittleEndian(bytes.Slice(i * 2, 2));
                }

                break;
            case NpyDType.Int32:
                for (var i = 0; i < dest.Length; i++)
                {
                    dest[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes.Slice(i * 4, 4));
                }

                break;
            default:
                for (var i = 0; i < dest.Length; i++)
                {
                    dest[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.Slice(i * 8, 8));
                }

                break;
        }
    }

    /// <summary>Reads the magic and header; the stream is left at the first data byte.</summary>
    public static NpyHeader ReadHeader(Stream stream)
    {
        var head = new byte[10];
        if (stream.ReadAtLeast(head.AsSpan(0, 8), 8, throwOnEndOfStream: false) < 8 || !head.AsSpan(0, 6).SequenceEqual(Magic))
        {
            throw new InvalidDataException("not a NumPy .npy file (bad magic)");
        }

        var major = head[6];
        int headerLength;
        if (major == 1)
        {
            ReadExactly(stream, head.AsSpan(8, 2));
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(8, 2));
        }
        else if (major is 2 or 3)
        {
            var four = new byte[4];
            ReadExactly(stream, four);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(four);
            if (length > 1 << 20)
            {
                throw new InvalidDataException($"header length {length} is implausible");
            }

            headerLength = (int)length;
        }
        else
        {
            throw new InvalidDataException($"unsupported .npy version {major}");
        }

        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes);
        var header = Encoding.Latin1.GetString(headerBytes);
        var descr = HeaderValue(header, "descr").Trim().Trim('\'', '"');
        var fortranText = HeaderValue(header, "fortran_order").Trim();
        var fortran = fortranText.StartsWith("True", StringComparison.Ordinal);
        if (!fortran && !fortranText.StartsWith("False", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"fortran_order '{fortranText}' is neither True nor False");
        }

        var shapeText = HeaderValue(header, "shape").Trim();
        var shape = ParseShape(shapeText);
        (NpyDType dtype, int size) = descr switch
        {
            "<f4" => (NpyDType.Float32, 4),
            "<f8" => (NpyDType.Float64, 8),
            "<i2" => (NpyDType.Int16, 2),
            "<i4" => (NpyDType.Int32, 4),
            "<i8" => (NpyDType.Int64, 8),
            _ => throw new InvalidDataException($"unsupported dtype '{descr}' (expected <f4, <f8, <i2, <i4 or <i8)"),
        };

        long count = 1;
        foreach (var d in shape)
        {
            if (d > 0 && count > long.MaxValue / 16 / d)
            {
                throw new InvalidDataException($"shape ({string.Join(", ", shape)}) is too large");
            }

            count *= d;
        }

        return new NpyHeader(shape, dtype, size, count, fortran);
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer)
    {
        if (stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < buffer.Length)
        {
            throw new InvalidDataException("file ends inside the .npy header");
        }
    }

    public static void WriteFloat32(string path, ReadOnlySpan<float> data, params int[] shape)
    {
        using var stream = File.Create(path);
        WriteHeader(stream, "<f4", shape, data.Length);
        var buffer = new byte[data.Length * 4];
        for (var i = 0; i < data.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), data[i]);
        }

        stream.Write(buffer);
    }

    public static void WriteFloat64(string path, ReadOnlySpan<double> data, params int[] shape)
    {
        using var stream = File.Create(path);
        WriteHeader(stream, "<f8", shape, data.Length);
        var buffer = new byte[data.Length * 8];
        for (var i = 0; i < data.Length; i++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(i * 8), data[i]);
        }

        stream.Write(buffer);
    }

    private static void WriteHeader(Stream stream, string descr, int[] shape, int count)
    {
        long expected = 1;
        foreach (var d in shape)
        {
            expected *= d;
        }

        if (expected != count)
        {
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) does not match {count} values", nameof(shape));
        }

        var shapeText = shape.Length == 1
            ? $"({shape[0].ToString(CultureInfo.InvariantCulture)},)"
            : "(" + string.Join(", ", shape.Select(s => s.ToString(CultureInfo.InvariantCulture))) + ")";
        var header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shapeText}, }}";
        var total = 10 + header.Length + 1;
        var pad = (64 - (total % 64)) % 64;
        header = header + new string(' ', pad) + "\n";
        stream.Write(Magic);
        stream.WriteByte(1);
        stream.WriteByte(0);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        stream.Write(len);
        stream.Write(Encoding.Latin1.GetBytes(header));
    }

    private static string HeaderValue(string header, string key)
    {
        var keyIndex = header.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (keyIndex < 0)
        {
            throw new InvalidDataException($"header has no '{key}'");
        }

        var colon = header.IndexOf(':', keyIndex);
        if (colon < 0)
        {
            throw new InvalidDataException($"header's '{key}' has no value");
        }

        var start = colon + 1;
        if (header.AsSpan(start).TrimStart().StartsWith("("))
        {
            var open = header.IndexOf('(', start);
            var close = header.IndexOf(')', open);
            if (close < 0)
            {
                throw new InvalidDataException($"header's '{key}' lacks ')'");
            }

            return header.Substring(open, close - open + 1);
        }

        var end = header.IndexOf(',', start);
        if (end < 0)
        {
            end = header.IndexOf('}', start);
        }

        if (end < 0)
        {
            throw new InvalidDataException($"header's '{key}' value is not terminated");
        }

        return header[start..end];
    }

    private static int[] ParseShape(string text)
    {
        var inner = text.Trim('(', ')').Trim();
        if (inner.Length == 0)
        {
            return [];
        }

        return inner.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= 0
                ? v
                : throw new InvalidDataException($"bad shape '{text}'"))
            .ToArray();
    }
}
