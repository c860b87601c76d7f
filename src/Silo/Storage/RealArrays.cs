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
