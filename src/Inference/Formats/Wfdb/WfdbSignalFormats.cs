using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Wfdb;

/// <summary>
/// The WFDB signal formats: how many bytes a run of samples takes, which raw value marks an invalid sample, and
/// span-based decoders that turn a byte run into ADC values (invalid samples become <see cref="InvalidSample"/>).
/// </summary>
public static class WfdbSignalFormats
{
    /// <summary>The value a decoded digital sample holds when the file marks it invalid.</summary>
    public const int InvalidSample = int.MinValue;

    public static bool IsSupported(int format) => format is 0 or 8 or 16 or 24 or 32 or 61 or 80 or 160 or 212 or 310 or 311;

    internal static bool IsKnownUnsupported(int format) => format is 508 or 516 or 524;

    /// <summary>ADC resolution (bits) when the header omits it, as the WFDB library assigns it (12 unless the format implies another).</summary>
    public static int DefaultResolution(int format) => format switch
    {
        80 => 8,
        160 => 16,
        310 or 311 => 10,
        _ => 12,
    };

    /// <summary>The raw ADC value that marks an invalid sample in this format, or null (format 8 has none).</summary>
    public static int? RawInvalidValue(int format) => format switch
    {
        16 or 61 or 160 => -32768,
        80 => -128,
        212 => -2048,
        310 or 311 => -512,
        24 => -8388608,
        32 => int.MinValue,
        _ => null,
    };

    /// <summary>Samples per packed group and bytes per group.</summary>
    internal static (int Samples, int Bytes) Group(int format) => format switch
    {
        8 or 80 => (1, 1),
        16 or 61 or 160 => (1, 2),
        24 => (1, 3),
        32 => (1, 4),
        212 => (2, 3),
        310 or 311 => (3, 4),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "not a stored format"),
    };

    /// <summary>How many whole samples a run of <paramref name="bytes"/> bytes holds (a trailing partial group counts its complete samples).</summary>
    public static long SampleCapacity(int format, long bytes)
    {
        if (bytes <= 0)
        {
            return 0;
        }

        var (samples, groupBytes) = Group(format);
        var groups = bytes / groupBytes;
        var rest = bytes % groupBytes;
        long extra = format switch
        {
            212 => rest >= 2 ? 1 : 0,
            310 => rest >= 2 ? 1 : 0,
            311 => rest >= 3 ? 2 : rest >= 2 ? 1 : 0,
            _ => 0,
        };
        return (groups * samples) + extra;
    }

    /// <summary>Byte position of the group holding sample <paramref name="sample"/>, and that group's first sample.</summary>
    internal static (long Byte, long FirstSample) GroupStart(int format, long sample)
    {
        var (samples, groupBytes) = Group(format);
        var group = sample / samples;
        return (group * groupBytes, group * samples);
    }

    /// <summary>Bytes needed to hold samples [0, <paramref name="sampleEnd"/>) rounded up to whole groups.</summary>
    internal static long BytesThrough(int format, long sampleEnd)
    {
        var (samples, groupBytes) = Group(format);
        return (sampleEnd + samples - 1) / samples * groupBytes;
    }

    /// <summary>
    /// Decodes <paramref name="dest"/>.Length samples from <paramref name="bytes"/>, which starts at a group boundary;
    /// the first <paramref name="skip"/> decoded samples are discarded. Missing trailing bytes read as zero.
    /// Format 8 is not handled here (its values depend on every earlier sample).
    /// </summary>
    internal static void Decode(int format, ReadOnlySpan<byte> bytes, int skip, Span<int> dest)
    {
        var (groupSamples, groupBytes) = Group(format);
        var produced = 0;
        var groupIndex = 0;
        if (skip > 0)
        {
            produced = DecodeOneGroup(format, bytes, groupIndex++, skip, dest);
        }

        var remaining = dest.Length - produced;
        var availableGroups = Math.Max(0, (bytes.Length - (groupIndex * groupBytes)) / groupBytes);
        var n = Math.Min(availableGroups, remaining / groupSamples);
        if (n > 0)
        {
            DecodeGroups(format, bytes.Slice(groupIndex * groupBytes, n * groupBytes), dest.Slice(produced, n * groupSamples));
            produced += n * groupSamples;
            groupIndex += n;
        }

        while (produced < dest.Length)
        {
            produced += DecodeOneGroup(format, bytes, groupIndex++, 0, dest[produced..]);
        }
    }

    /// <summary>Decodes one group (zero-padded where bytes are missing) and copies its samples from <paramref name="skip"/> on.</summary>
    private static int DecodeOneGroup(int format, ReadOnlySpan<byte> bytes, int groupIndex, int skip, Span<int> dest)
    {
        var (groupSamples, groupBytes) = Group(format);
        Span<byte> buffer = stackalloc byte[4];
        Span<int> values = stackalloc int[3];
        buffer.Clear();
        var offset = (long)groupIndex * groupBytes;
        if (offset < bytes.Length)
        {
            bytes.Slice((int)offset, (int)Math.Min(groupBytes, bytes.Length - offset)).CopyTo(buffer);
        }

        DecodeGroups(format, buffer[..groupBytes], values[..groupSamples]);
        var count = Math.Min(groupSamples - skip, dest.Length);
        values.Slice(skip, count).CopyTo(dest);
        return count;
    }

    /// <summary>Decodes whole groups: <paramref name="dest"/>.Length is a multiple of the group's sample count.</summary>
    private static void DecodeGroups(int format, ReadOnlySpan<byte> src, Span<int> dest)
    {
        switch (format)
        {
            case 16 when BitConverter.IsLittleEndian:
            {
                var shorts = MemoryMarshal.Cast<byte, short>(src[..(2 * dest.Length)]);
                var i = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    // Sixteen samples at a time: sign-extend, then the invalid value's sentinel where the raw value is -32768.
                    var rawInvalid = Vector256.Create(-32768);
                    var invalid = Vector256.Create(InvalidSample);
                    ref var from = ref MemoryMarshal.GetReference(shorts);
                    ref var to = ref MemoryMarshal.GetReference(dest);
                    for (; i <= shorts.Length - Vector256<short>.Count; i += Vector256<short>.Count)
                    {
                        var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref from, (nuint)i));
                        Vector256.ConditionalSelect(Vector256.Equals(lower, rawInvalid), invalid, lower).StoreUnsafe(ref to, (nuint)i);
                        Vector256.ConditionalSelect(Vector256.Equals(upper, rawInvalid), invalid, upper).StoreUnsafe(ref to, (nuint)(i + Vector256<int>.Count));
                    }
                }

                for (; i < shorts.Length; i++)
                {
                    int v = shorts[i];
                    dest[i] = v == -32768 ? InvalidSample : v;
                }

                break;
            }

            case 16:
                for (var i = 0; i < dest.Length; i++)
                {
                    int v = BinaryPrimitives.ReadInt16LittleEndian(src.Slice(2 * i, 2));
                    dest[i] = v == -32768 ? InvalidSample : v;
                }

                break;
            case 61:
                for (var i = 0; i < dest.Length; i++)
                {
                    int v = BinaryPrimitives.ReadInt16BigEndian(src.Slice(2 * i, 2));
                    dest[i] = v == -32768 ? InvalidSample : v;
                }

                break;
            case 80:
                for (var i = 0; i < dest.Length; i++)
                {
                    var v = src[i] - 128;
                    dest[i] = v == -128 ? InvalidSample : v;
                }

                break;
            case 160:
                for (var i = 0; i < dest.Length; i++)
                {
                    var v = BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i, 2)) - 32768;
                    dest[i] = v == -32768 ? InvalidSample : v;
                }

                break;
            case 24:
                for (var i = 0; i < dest.Length; i++)
                {
                    var o = 3 * i;
                    var v = src[o] | (src[o + 1] << 8) | ((sbyte)src[o + 2] << 16);
                    dest[i] = v == -8388608 ? InvalidSample : v;
                }

                break;
            case 32:
                for (var i = 0; i < dest.Length; i++)
                {
                    dest[i] = BinaryPrimitives.ReadInt32LittleEndian(src.Slice(4 * i, 4));
                }

                break;
            case 212:
                for (int i = 0, o = 0; i < dest.Length; i += 2, o += 3)
                {
                    int b0 = src[o], b1 = src[o + 1], b2 = src[o + 2];
                    dest[i] = Extend12(b0 | ((b1 & 0x0F) << 8));
                    dest[i + 1] = Extend12(b2 | ((b1 & 0xF0) << 4));
                }

                break;
            case 310:
                for (int i = 0, o = 0; i < dest.Length; i += 3, o += 4)
                {
                    int w0 = BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(o, 2));
                    int w1 = BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(o + 2, 2));
                    dest[i] = Extend10((w0 >> 1) & 0x3FF);
                    dest[i + 1] = Extend10((w1 >> 1) & 0x3FF);
                    dest[i + 2] = Extend10(((w0 >> 11) & 0x1F) | (((w1 >> 11) & 0x1F) << 5));
                }

                break;
            case 311:
                for (int i = 0, o = 0; i < dest.Length; i += 3, o += 4)
                {
                    var w = BinaryPrimitives.ReadUInt32LittleEndian(src.Slice(o, 4));
                    dest[i] = Extend10((int)(w & 0x3FF));
                    dest[i + 1] = Extend10((int)((w >> 10) & 0x3FF));
                    dest[i + 2] = Extend10((int)((w >> 20) & 0x3FF));
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "not a block-decodable format");
        }
    }

    private static int Extend12(int v)
    {
        var x = (v ^ 0x800) - 0x800;
        return x == -2048 ? InvalidSample : x;
    }

    private static int Extend10(int v)
    {
        var x = (v ^ 0x200) - 0x200;
        return x == -512 ? InvalidSample : x;
    }
}
