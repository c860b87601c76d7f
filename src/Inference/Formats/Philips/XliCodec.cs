using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Philips;

/// <summary>
/// The XLI compression of Philips XML ECGs (<c>parsedwaveforms compression="XLI"</c>): the leads one after another,
/// each an 8-byte header (int32 compressed size, int16 always 1, int16 the predictor's first residual) and that many
/// bytes of LZW with 10-bit codes (most significant bit first, codes 0-255 the bytes, new strings from 256 up to
/// 1022, no reset; 1023 or running out of whole codes ends the lead). The decompressed bytes hold the high bytes of
/// the lead's 16-bit codes in their first half and the low bytes in their second; the first two codes are the first
/// two samples, and each later sample is <c>2 x previous - the one before - r</c>, where r is the header's value for
/// the third sample and the previous code minus 64 after that. Decoding follows sierraecg 0.4.0 (which made the
/// reference readings), including its quirks: the last code of a lead only feeds the predictor, and samples wrap to
/// 16 bits.
/// </summary>
public static class XliCodec
{
    private const int CodeBits = 10;
    private const int MaxCode = (1 << CodeBits) - 2; // 1022: the last string code; 1023 ends a lead
    private const int HeaderBytes = 8;
    private const int Bias = 64;

    /// <summary>Bytes past a lead's capacity in the decompression buffer, for the eight-byte copy steps.</summary>
    private const int Slack = 16;

    /// <summary>
    /// Decodes the first <paramref name="leadCount"/> leads of <paramref name="data"/>. A lead may hold at most
    /// <paramref name="maxSamples"/> samples (the caller's bound from the declared duration), checked while
    /// decompressing, so corrupt data never makes more than that.
    /// </summary>
    public static short[][] Decode(ReadOnlySpan<byte> data, int leadCount, int maxSamples, string recordId)
    {
        var leads = new short[leadCount][];
        var offset = 0;
        var capacity = (2 * maxSamples) + 2;
        var buffer = new byte[capacity + Slack];
        var dictionary = new LzwDictionary();
        for (var lead = 0; lead < leadCount; lead++)
        {
            if (data.Length - offset < HeaderBytes)
            {
                throw new EcgFormatException(recordId, $"XLI data ends before lead {lead + 1} of {leadCount} (at byte {offset} of {data.Length})");
            }

            var size = BinaryPrimitives.ReadInt32LittleEndian(data[offset..]);
            var first = BinaryPrimitives.ReadInt16LittleEndian(data[(offset + 6)..]);
            offset += HeaderBytes;
            if (size < 0 || size > data.Length - offset)
            {
                throw new EcgFormatException(recordId, $"XLI lead {lead + 1}: compressed size {size} exceeds the {data.Length - offset} bytes left");
            }

            var length = Decompress(data.Slice(offset, size), buffer, capacity, dictionary, recordId, lead + 1);
            offset += size;
            leads[lead] = Rebuild(buffer.AsSpan(0, length), first, recordId, lead + 1);
        }

        return leads;
    }

    /// <summary>
    /// One lead's XLI chunk (header and LZW codes) holding <paramref name="samples"/> exactly; the inverse of
    /// <see cref="Decode"/> for samples whose second differences fit 16 bits (the writer keeps them well inside).
    /// </summary>
    public static byte[] Encode(ReadOnlySpan<short> samples)
    {
        var n = samples.Length;
        if (n < 2)
        {
            throw new ArgumentException("an XLI lead holds at least two samples", nameof(samples));
        }

        // codes[0..1] are the samples; the residual of sample i (i >= 2) is 2 s[i-1] - s[i-2] - s[i]: the header holds
        // the third sample's, code i-1 (plus the bias) the residual of sample i; the last code only feeds the predictor.
        var codes = new short[n];
        codes[0] = samples[0];
        codes[1] = samples[1];
        short first = 0;
        for (var i = 2; i < n; i++)
        {
            var residual = (short)((2 * samples[i - 1]) - samples[i - 2] - samples[i]);
            if (i == 2)
            {
                first = residual;
            }
            else
            {
                codes[i - 1] = (short)(residual + Bias);
            }
        }

        var bytes = new byte[2 * n];
        for (var i = 0; i < n; i++)
        {
            bytes[i] = (byte)((ushort)codes[i] >> 8);
            bytes[n + i] = (byte)codes[i];
        }

        var compressed = Compress(bytes);
        var chunk = new byte[HeaderBytes + compressed.Length];
        BinaryPrimitives.WriteInt32LittleEndian(chunk, compressed.Length);
        BinaryPrimitives.WriteInt16LittleEndian(chunk.AsSpan(4), 1);
        BinaryPrimitives.WriteInt16LittleEndian(chunk.AsSpan(6), first);
        compressed.CopyTo(chunk, HeaderBytes);
        return chunk;
    }

    private static short[] Rebuild(ReadOnlySpan<byte> bytes, short first, string recordId, int lead)
    {
        // An odd byte count gets a zero byte appended, as the reference does.
        var n = (bytes.Length + 1) / 2;
        if (n < 2)
        {
            throw new EcgFormatException(recordId, $"XLI lead {lead} decompresses to {bytes.Length} bytes, fewer than two samples");
        }

        var samples = GC.AllocateUninitializedArray<short>(n);

        // Modulo 2^16 throughout: the same 16-bit results as the reference's wider arithmetic cast back to int16.
        // Sample i (i >= 3) uses code i - 1 <= n - 2, whose low byte always exists (bytes.Length >= 2n - 1).
        var high = bytes[..n];
        var low = bytes.Slice(n, n - 1);
        short x = Code(bytes, n, 0), y = Code(bytes, n, 1);
        samples[0] = x;
        samples[1] = y;
        if (n == 2)
        {
            return samples;
        }

        // 2 y - x - r is y + (y - x) - r: the step d = y - x goes down by each residual and the sample up by the step,
        // two running sums whose low 16 bits are the reference's samples (the int sums may wrap; only the low bits are kept).
        var step = y - x - first;
        int value = y + step;
        samples[2] = (short)value;

        // First the residuals (code i - 1 less the bias) in place of samples 3 on, several a step, then the two sums.
        Residuals(high[2..], low[2..], samples.AsSpan(3));
        for (var i = 3; i < samples.Length; i++)
        {
            step -= samples[i];
            value += step;
            samples[i] = (short)value;
        }

        return samples;
    }

    /// <summary>residuals[k] = (high[k] &lt;&lt; 8 | low[k]) - bias, modulo 2^16 (all that the sums keep).</summary>
    private static void Residuals(ReadOnlySpan<byte> high, ReadOnlySpan<byte> low, Span<short> residuals)
    {
        var k = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var bias = new Vector<ushort>(Bias);
            var count = Vector<ushort>.Count;
            for (; k + Vector<byte>.Count <= residuals.Length; k += Vector<byte>.Count)
            {
                Vector.Widen(new Vector<byte>(high[k..]), out var highFirst, out var highSecond);
                Vector.Widen(new Vector<byte>(low[k..]), out var lowFirst, out var lowSecond);
                Vector.AsVectorInt16(((highFirst << 8) | lowFirst) - bias).CopyTo(residuals[k..]);
                Vector.AsVectorInt16(((highSecond << 8) | lowSecond) - bias).CopyTo(residuals[(k + count)..]);
            }
        }

        for (; k < residuals.Length; k++)
        {
            residuals[k] = (short)(((high[k] << 8) | low[k]) - Bias);
        }
    }

    /// <summary>Code <paramref name="i"/> of <paramref name="n"/>: its high byte from the first half, its low byte from the second.</summary>
    private static short Code(ReadOnlySpan<byte> bytes, int n, int i) => (short)((bytes[i] << 8) | (n + i < bytes.Length ? bytes[n + i] : 0));

    /// <summary>
    /// LZW-decompresses one lead into <paramref name="output"/> (whose first <paramref name="capacity"/> bytes may be
    /// filled; it has <see cref="Slack"/> bytes more); returns the byte count. Every string code's bytes already
    /// stand in the output (where its prefix was written, followed by the next string's first byte), so a code is
    /// copied from there rather than rebuilt link by link, eight bytes a step: a step may write up to seven bytes past
    /// the string, which the next string overwrites (or the slack takes), and reads only bytes before where it writes.
    /// </summary>
    private static int Decompress(ReadOnlySpan<byte> input, byte[] output, int capacity, LzwDictionary dictionary, string recordId, int lead)
    {
        if (output.Length < capacity + Slack)
        {
            throw new ArgumentException("the output buffer has no slack", nameof(output));
        }

        var start = dictionary.Start;
        var lengths = dictionary.Length;
        ref var target = ref MemoryMarshal.GetArrayDataReference(output);
        var next = 256;
        var written = 0;
        var previous = -1;
        var previousStart = 0;
        ulong bits = 0;
        var bitCount = 0;
        var position = 0;
        while (true)
        {
            if (bitCount < CodeBits)
            {
                while (bitCount <= 56 && position < input.Length)
                {
                    bits |= (ulong)input[position++] << (56 - bitCount);
                    bitCount += 8;
                }

                if (bitCount < CodeBits)
                {
                    break;
                }
            }

            var code = (int)(bits >> (64 - CodeBits));
            bits <<= CodeBits;
            bitCount -= CodeBits;
            if (code > MaxCode)
            {
                break;
            }

            int length;
            if (code < 256)
            {
                length = 1;
                if (written >= capacity)
                {
                    throw TooLong(recordId, lead, (capacity - 2) / 2);
                }

                Unsafe.Add(ref target, written) = (byte)code;
            }
            else if (code < next)
            {
                // Defined for this lead (next starts at 256 for each), so start + length <= written.
                length = lengths[code];
                if (written + length > capacity)
                {
                    throw TooLong(recordId, lead, (capacity - 2) / 2);
                }

                CopyForward(ref target, start[code], written, length);
            }
            else if (code == next && previous >= 0)
            {
                // The string being defined: the previous string and its own first byte.
                var previousLength = written - previousStart;
                length = previousLength + 1;
                if (written + length > capacity)
                {
                    throw TooLong(recordId, lead, (capacity - 2) / 2);
                }

                CopyForward(ref target, previousStart, written, previousLength);
                Unsafe.Add(ref target, written + previousLength) = Unsafe.Add(ref target, previousStart);
            }
            else
            {
                throw new EcgFormatException(recordId, $"XLI lead {lead}: LZW code {code} is not defined yet (next is {next})");
            }

            if (previous >= 0 && next <= MaxCode)
            {
                // The previous string and this one's first byte: contiguous in the output from the previous string's start.
                start[next] = previousStart;
                lengths[next] = written - previousStart + 1;
                next++;
            }

            previousStart = written;
            written += length;
            previous = code;
        }

        return written;
    }

    /// <summary>
    /// Copies <paramref name="length"/> bytes from <paramref name="from"/> to <paramref name="to"/> (from + length &lt;= to,
    /// to + length + 7 within the buffer) in eight-byte steps; bytes past to + length are left undefined.
    /// </summary>
    private static void CopyForward(ref byte buffer, int from, int to, int length)
    {
        var k = 0;
        do
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref buffer, to + k), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref buffer, from + k)));
            k += 8;
        }
        while (k < length);
    }

    private static EcgFormatException TooLong(string recordId, int lead, int maxSamples) =>
        new(recordId, $"XLI lead {lead} decompresses to more than {maxSamples} samples, beyond the declared duration");

    /// <summary>LZW-compresses <paramref name="bytes"/> with 10-bit codes as <see cref="Decompress"/> reads them.</summary>
    private static byte[] Compress(ReadOnlySpan<byte> bytes)
    {
        // (prefix code, next byte) -> code of the longer string.
        var table = new Dictionary<int, int>();
        var next = 256;
        var codes = new List<int>(bytes.Length);
        var current = -1;
        foreach (var b in bytes)
        {
            if (current < 0)
            {
                current = b;
                continue;
            }

            var key = (current << 8) | b;
            if (table.TryGetValue(key, out var longer))
            {
                current = longer;
                continue;
            }

            codes.Add(current);
            if (next <= MaxCode)
            {
                table[key] = next++;
            }

            current = b;
        }

        if (current >= 0)
        {
            codes.Add(current);
        }

        // Most significant bit first; the last byte's unused bits stay zero (fewer than a code, so never read).
        var packed = new byte[((codes.Count * CodeBits) + 7) / 8];
        var bit = 0;
        foreach (var code in codes)
        {
            for (var k = CodeBits - 1; k >= 0; k--, bit++)
            {
                if (((code >> k) & 1) != 0)
                {
                    packed[bit >> 3] |= (byte)(0x80 >> (bit & 7));
                }
            }
        }

        return packed;
    }

    /// <summary>The string codes of the LZW decoder: where each stands in the lead's output, and its length.</summary>
    private sealed class LzwDictionary
    {
        public int[] Start { get; } = new int[MaxCode + 1];

        public int[] Length { get; } = new int[MaxCode + 1];
    }
}
