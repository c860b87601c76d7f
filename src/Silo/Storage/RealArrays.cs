using System.Buffers.Binary;

namespace HubertEcg.Storage;

/// <summary>
/// A <c>real[]</c> in Postgres' binary array format (what <c>array_recv</c> reads in a binary COPY): one dimension, no
/// nulls, element type float4, lower bound 1, then each element as its length (4) and its big-endian bits. Written in
/// one pass of 8-byte stores; Npgsql's generic array writer costs several times more per element.
/// </summary>
internal static class RealArrays
{
    private const int Float4Oid = 700;
    private const int HeaderLength = 20;

    public static int EncodedLength(int elements) => HeaderLength + 8 * elements;

    /// <summary>Encodes <paramref name="values"/> into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Encode(float[] values, Span<byte> destination)
    {
        if (values.Length == 0)
        {
            // No dimensions: the empty array.
            BinaryPrimitives.WriteInt32BigEndian(destination, 0);
            BinaryPrimitives.WriteInt32BigEndian(destination[4..], 0);
            BinaryPrimitives.WriteInt32BigEndian(destination[8..], Float4Oid);
            return 12;
        }

        var length = EncodedLength(values.Length);
        var target = destination[..length];
        BinaryPrimitives.WriteInt32BigEndian(target, 1);
        BinaryPrimitives.WriteInt32BigEndian(target[4..], 0);
        BinaryPrimitives.WriteInt32BigEndian(target[8..], Float4Oid);
        BinaryPrimitives.WriteInt32BigEndian(target[12..], values.Length);
        BinaryPrimitives.WriteInt32BigEndian(target[16..], 1);
        var elements = target[HeaderLength..];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt64BigEndian(elements[(8 * i)..], (4L << 32) | (uint)BitConverter.SingleToInt32Bits(values[i]));
        }

        return length;
    }
}

/// <summary>
/// Decodes one-dimensional integer arrays without nulls from Postgres' binary array format (<c>array_send</c>): the
/// number of dimensions, a has-nulls flag, the element type, per dimension its length and lower bound, then each
/// element as its length and its big-endian value. Anything else is refused naming the run whose row it was.
/// </summary>
internal static class BinaryArrays
{
    public static int[] Int32s(ReadOnlySpan<byte> data, Guid runId)
    {
        var count = Count(data, 4, runId);
        var elements = data[Math.Min(20, data.Length)..];
        var values = new int[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = BinaryPrimitives.ReadInt32BigEndian(elements[(8 * i + 4)..]);
        }

        return values;
    }

    public static long[] Int64s(ReadOnlySpan<byte> data, Guid runId)
    {
        var count = Count(data, 8, runId);
        var elements = data[Math.Min(20, data.Length)..];
        var values = new long[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = BinaryPrimitives.ReadInt64BigEndian(elements[(12 * i + 4)..]);
        }

        return values;
    }

    // The element count, after checking that the data is a one-dimensional array of count elements of width bytes.
    private static int Count(ReadOnlySpan<byte> data, int width, Guid runId)
    {
        if (data.Length < 12)
        {
            throw Bad(runId, "shorter than its header");
        }

        var dimensions = BinaryPrimitives.ReadInt32BigEndian(data);
        var hasNulls = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
        if (dimensions == 0)
        {
            return 0;
        }

        if (dimensions != 1 || hasNulls != 0 || data.Length < 20)
        {
            throw Bad(runId, $"{dimensions} dimensions{(hasNulls != 0 ? " with nulls" : "")}");
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(data[12..]);
        var elements = data[20..];
        if (count < 0 || (long)count * (4 + width) != elements.Length)
        {
            throw Bad(runId, $"{count} elements in {elements.Length} bytes");
        }

        for (var i = 0; i < count; i++)
        {
            if (BinaryPrimitives.ReadInt32BigEndian(elements[((4 + width) * i)..]) != width)
            {
                throw Bad(runId, $"element {i} is not {width} bytes");
            }
        }

        return count;
    }

    private static InvalidDataException Bad(Guid runId, string what) =>
        new($"a label bucket row of run {runId} is not a plain integer array: {what}");
}
