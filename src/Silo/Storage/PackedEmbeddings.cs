using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace HubertEcg.Storage;

/// <summary>How score rows store the embedding (<c>scores.embedding_packed</c>, migration 0027).</summary>
public enum EmbeddingPrecision
{
    /// <summary>IEEE single precision: the model's output exactly, 4 bytes a value.</summary>
    Fp32,

    /// <summary>IEEE half precision, rounded to nearest: 2 bytes a value, relative error at most 2^-11.</summary>
    Fp16,
}

/// <summary>
/// The packed embedding of a score row: one byte giving the width of a value (4: IEEE single, 2: IEEE half), then the
/// values little-endian. Self-describing, so a reader needs neither the model nor the setting the row was written
/// under; <c>score_embedding(embedding, embedding_packed)</c> in SQL reads it as <c>real[]</c>.
/// </summary>
public static class PackedEmbeddings
{
    /// <summary>Bytes of a packed embedding of <paramref name="values"/> values.</summary>
    public static int Length(int values, EmbeddingPrecision precision) => 1 + values * Width(precision);

    /// <summary>Parses <c>fp32</c> or <c>fp16</c>; throws <see cref="ArgumentException"/> naming the value otherwise.</summary>
    public static EmbeddingPrecision Parse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "fp32" or "" or null => EmbeddingPrecision.Fp32,
        "fp16" => EmbeddingPrecision.Fp16,
        _ => throw new ArgumentException($"embedding precision '{text}' is not one of fp32, fp16", nameof(text)),
    };

    public static string Name(EmbeddingPrecision precision) => precision == EmbeddingPrecision.Fp16 ? "fp16" : "fp32";

    /// <summary>Largest magnitude IEEE half precision holds (65504).</summary>
    private const float HalfMax = 65504f;

    /// <summary>
    /// Packs <paramref name="values"/> into <paramref name="destination"/> (at least <see cref="Length"/> bytes of
    /// <see cref="EmbeddingPrecision.Fp32"/>); returns the bytes written. Half precision is asked for, single is
    /// written when a value is beyond what half precision holds (the row says its own width).
    /// </summary>
    public static int Pack(ReadOnlySpan<float> values, EmbeddingPrecision precision, Span<byte> destination)
    {
        if (precision == EmbeddingPrecision.Fp16 && !FitsHalf(values))
        {
            precision = EmbeddingPrecision.Fp32;
        }

        var length = Length(values.Length, precision);
        if (destination.Length < length)
        {
            throw new ArgumentException($"a packed embedding of {values.Length} values needs {length} bytes, not {destination.Length}", nameof(destination));
        }

        destination[0] = (byte)Width(precision);
        var body = destination[1..length];
        if (precision == EmbeddingPrecision.Fp32)
        {
            if (BitConverter.IsLittleEndian)
            {
                MemoryMarshal.AsBytes(values).CopyTo(body);
            }
            else
            {
                for (var i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(body[(4 * i)..], values[i]);
                }
            }
        }
        else
        {
            for (var i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteHalfLittleEndian(body[(2 * i)..], (Half)values[i]);
            }
        }

        return length;
    }

    /// <summary>Unpacks a packed embedding; throws <see cref="InvalidDataException"/> naming <paramref name="recordId"/> when it is malformed.</summary>
    public static float[] Unpack(ReadOnlySpan<byte> packed, string recordId)
    {
        if (packed.Length == 0 || (packed[0] != 2 && packed[0] != 4) || (packed.Length - 1) % packed[0] != 0)
        {
            throw new InvalidDataException(
                $"record {recordId}: the stored embedding is not a packed embedding ({packed.Length} bytes, width byte {(packed.Length == 0 ? "missing" : packed[0].ToString(System.Globalization.CultureInfo.InvariantCulture))})");
        }

        var width = packed[0];
        var body = packed[1..];
        var values = new float[body.Length / width];
        if (width == 4)
        {
            if (BitConverter.IsLittleEndian)
            {
                body.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            }
            else
            {
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = BinaryPrimitives.ReadSingleLittleEndian(body[(4 * i)..]);
                }
            }
        }
        else
        {
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(body[(2 * i)..]);
            }
        }

        return values;
    }

    private static bool FitsHalf(ReadOnlySpan<float> values)
    {
        foreach (var v in values)
        {
            if (!(Math.Abs(v) <= HalfMax))
            {
                return false;
            }
        }

        return true;
    }

    private static int Width(EmbeddingPrecision precision) => precision == EmbeddingPrecision.Fp16 ? 2 : 4;
}
