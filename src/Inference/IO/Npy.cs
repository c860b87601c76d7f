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
        var head = new byte[10];
        stream.ReadExactly(head, 0, 8);
        if (!head.AsSpan(0, 6).SequenceEqual(Magic))
        {
            throw new InvalidDataException("not a NumPy .npy file (bad magic)");
        }

        var major = head[6];
        int headerLength;
        if (major == 1)
        {
            stream.ReadExactly(head, 8, 2);
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(8, 2));
        }
        else if (major is 2 or 3)
        {
            var four = new byte[4];
            stream.ReadExactly(four);
            headerLength = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(four));
            if (headerLength > 1 << 20)
            {
                throw new InvalidDataException($"header length {headerLength} is implausible");
            }
        }
        else
        {
            throw new InvalidDataException($"unsupported .npy version {major}");
        }

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var header = Encoding.Latin1.GetString(headerBytes);
        var descr = HeaderValue(header, "descr").Trim().Trim('\'', '"');
        var fortran = HeaderValue(header, "fortran_order").Trim().StartsWith("True", StringComparison.Ordinal);

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
            count = checked(count * d);
        }

        if (stream.CanSeek && stream.Length - stream.Position < count * size)
        {
            throw new InvalidDataException($"file holds {stream.Length - stream.Position} data bytes but shape ({string.Join(", ", shape)}) needs {count * size}");
        }

        if (count > Array.MaxLength)
        {
            throw new InvalidDataException($"array of {count} elements is too large");
        }

        var raw = new byte[count * size];
        stream.ReadExactly(raw);
        var data = new double[count];
        for (var i = 0; i < count; i++)
        {
            var span = raw.AsSpan(i * size, size);
            data[i] = dtype switch
            {
                NpyDType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(span),
                NpyDType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(span),
                NpyDType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(span),
                NpyDType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(span),
                _ => BinaryPrimitives.ReadInt64LittleEndian(span),
            };
        }

        return new NpyArray(shape, dtype, fortran ? ToCOrder(data, shape) : data);
    }

    // Fortran order stores the first index fastest; reorder so the last index is fastest.
    private static double[] ToCOrder(double[] data, int[] shape)
    {
        if (shape.Length < 2)
        {
            return data;
        }

        var result = new double[data.Length];
        var index = new int[shape.Length];
        for (var f = 0; f < data.Length; f++)
        {
            var c = 0;
            for (var d = 0; d < shape.Length; d++)
            {
                c = (c * shape[d]) + index[d];
            }

            result[c] = data[f];
            for (var d = 0; d < shape.Length && ++index[d] == shape[d]; d++)
            {
                index[d] = 0;
            }
        }

        return result;
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
        var start = colon + 1;
        if (header.AsSpan(start).TrimStart().StartsWith("("))
        {
            var open = header.IndexOf('(', start);
            var close = header.IndexOf(')', open);
            return header.Substring(open, close - open + 1);
        }

        var end = header.IndexOf(',', start);
        if (end < 0)
        {
            end = header.IndexOf('}', start);
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
