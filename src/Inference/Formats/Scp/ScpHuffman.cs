using System.Buffers.Binary;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Scp;

/// <summary>
/// One code of an SCP-ECG Huffman table (section 2, 9 bytes each, EN 1064 5.5): its prefix length and total length in
/// bits, its table mode switch (1: the code stands for a value; 0: the code switches to table <see cref="BaseValue"/>,
/// counted from 1), its base value and its prefix bits. <see cref="Code"/> holds the prefix in the order the bits
/// occur in the data stream, most significant bit first; the file stores it bit-reversed (the stream's first bit in
/// the least significant bit), as both ECG Toolkit's SCPSection2 and BioSig read it. When the total length exceeds
/// the prefix length, the remaining bits that follow the prefix are the value itself, a two's complement number
/// (BioSig's SCP-DECODE <c>Input_Bits</c>; every such code of the default table has base value 0).
/// </summary>
public sealed record ScpHuffmanCode(int PrefixBits, int TotalBits, bool IsValue, short BaseValue, uint Code)
{
    /// <summary>Bits of the value following the prefix (0 for a code standing for its base value).</summary>
    public int ValueBits => TotalBits - PrefixBits;
}

/// <summary>
/// SCP-ECG Huffman tables (section 2): the default table (stored as the table count 19999, EN 1064 annex C) or the
/// file's own tables, among which codes of table mode 0 switch. Decoding starts every lead in the first table (as
/// BioSig's SCP-DECODE means to; ECG Toolkit resets the table once per section and carries it from lead to lead, so
/// the encoder ends every lead in the first table, which both read alike).
/// </summary>
public sealed class ScpHuffmanTables
{
    /// <summary>The table count that stands for the default table.</summary>
    public const ushort DefaultTableMarker = 19999;

    private const int MaxCodes = 4096;
    private readonly Dictionary<long, ScpHuffmanCode>[] _byPrefix;
    private readonly int[] _maxPrefix;

    public ScpHuffmanTables(IReadOnlyList<IReadOnlyList<ScpHuffmanCode>> tables, bool isDefault = false)
    {
        ArgumentNullException.ThrowIfNull(tables);
        Tables = tables;
        IsDefault = isDefault;
        _byPrefix = new Dictionary<long, ScpHuffmanCode>[tables.Count];
        _maxPrefix = new int[tables.Count];
        for (var t = 0; t < tables.Count; t++)
        {
            _byPrefix[t] = [];
            foreach (var code in tables[t])
            {
                // The first of two equal prefixes wins, as a reader searching the table in order finds it.
                _byPrefix[t].TryAdd(Key(code.PrefixBits, code.Code), code);
                _maxPrefix[t] = Math.Max(_maxPrefix[t], code.PrefixBits);
            }
        }
    }

    /// <summary>
    /// The default table of EN 1064 annex C: 0 as <c>0</c>; ±1..±8 as n ones, a zero and a sign bit (1 negative); nine
    /// ones and a zero followed by an 8-bit value; ten ones followed by a 16-bit value.
    /// </summary>
    public static ScpHuffmanTables Default { get; } = new([DefaultCodes()], isDefault: true);

    /// <summary>The tables; table numbers in switch codes count from 1.</summary>
    public IReadOnlyList<IReadOnlyList<ScpHuffmanCode>> Tables { get; }

    /// <summary>True for the default table (written as the count 19999 without codes).</summary>
    public bool IsDefault { get; }

    /// <summary>
    /// Reads section 2's data (after the section header): the table count, then per table its code count and codes.
    /// Every count is checked against the bytes left before anything is allocated.
    /// </summary>
    public static ScpHuffmanTables Parse(ReadOnlySpan<byte> data, string recordId)
    {
        if (data.Length < 2)
        {
            throw new EcgFormatException(recordId, "section 2 holds no table count");
        }

        var count = BinaryPrimitives.ReadUInt16LittleEndian(data);
        if (count == DefaultTableMarker)
        {
            return Default;
        }

        if (count == 0)
        {
            throw new EcgFormatException(recordId, "section 2 declares no Huffman table");
        }

        var position = 2;
        var tables = new List<IReadOnlyList<ScpHuffmanCode>>();
        for (var t = 0; t < count; t++)
        {
            if (position + 2 > data.Length)
            {
                throw new EcgFormatException(recordId, $"section 2 ends before Huffman table {t + 1} of {count}");
            }

            var codes = BinaryPrimitives.ReadUInt16LittleEndian(data[position..]);
            position += 2;
            if (codes == 0 || codes > MaxCodes || position + (codes * 9L) > data.Length)
            {
                throw new EcgFormatException(recordId, $"section 2: Huffman table {t + 1} declares {codes} codes, which its {data.Length - position} remaining bytes do not hold");
            }

            var table = new List<ScpHuffmanCode>(codes);
            for (var c = 0; c < codes; c++)
            {
                var entry = data.Slice(position, 9);
                position += 9;
                int prefix = entry[0], total = entry[1], mode = entry[2];
                var baseValue = BinaryPrimitives.ReadInt16LittleEndian(entry[3..]);
                var stored = BinaryPrimitives.ReadUInt32LittleEndian(entry[5..]);
                if (prefix is < 1 or > 32 || total < prefix || total - prefix > 32)
                {
                    throw new EcgFormatException(recordId, $"section 2: Huffman table {t + 1} code {c + 1} has {prefix} prefix bits of {total}");
                }

                if (mode == 0 && (baseValue < 1 || baseValue > count))
                {
                    throw new EcgFormatException(recordId, $"section 2: Huffman table {t + 1} code {c + 1} switches to table {baseValue} of {count}");
                }

                table.Add(new ScpHuffmanCode(prefix, total, mode != 0, baseValue, Reverse(stored, prefix)));
            }

            tables.Add(table);
        }

        return new ScpHuffmanTables(tables);
    }

    /// <summary>Section 2's data for these tables (count 19999 alone for the default table).</summary>
    public byte[] Serialise()
    {
        if (IsDefault)
        {
            return [(byte)(DefaultTableMarker & 0xFF), (byte)(DefaultTableMarker >> 8)];
        }

        var bytes = new List<byte>();
        Add16(bytes, (ushort)Tables.Count);
        foreach (var table in Tables)
        {
            Add16(bytes, (ushort)table.Count);
            foreach (var code in table)
            {
                bytes.Add((byte)code.PrefixBits);
                bytes.Add((byte)code.TotalBits);
                bytes.Add(code.IsValue ? (byte)1 : (byte)0);
                Add16(bytes, (ushort)code.BaseValue);
                var stored = Reverse(code.Code, code.PrefixBits);
                for (var b = 0; b < 4; b++)
                {
                    bytes.Add((byte)(stored >> (8 * b)));
                }
            }
        }

        return bytes.ToArray();
    }

    /// <summary>
    /// Decodes exactly <paramref name="values"/>.Length values from <paramref name="data"/> (one lead's bytes),
    /// starting in the first table; bits left over after the last value are padding.
    /// </summary>
    public void Decode(ReadOnlySpan<byte> data, Span<int> values, string recordId, string what)
    {
        if (IsDefault)
        {
            DecodeDefault(data, values, recordId, what);
            return;
        }

        long bit = 0;
        long bits = data.Length * 8L;
        var table = 0;
        var switches = 0;
        for (var i = 0; i < values.Length;)
        {
            ScpHuffmanCode? found = null;
            uint prefix = 0;
            for (var length = 1; length <= _maxPrefix[table]; length++)
            {
                if (bit >= bits)
                {
                    throw Short(recordId, what, i, values.Length);
                }

                prefix = (prefix << 1) | (uint)((data[(int)(bit >> 3)] >> (7 - (int)(bit & 7))) & 1);
                bit++;
                if (_byPrefix[table].TryGetValue(Key(length, prefix), out var code))
                {
                    found = code;
                    break;
                }
            }

            if (found is null)
            {
                throw new EcgFormatException(recordId, $"{what}: bits at sample {i} match no code of Huffman table {table + 1}");
            }

            if (!found.IsValue)
            {
                // A file of nothing but switches would never end: a switch must be followed by a value.
                if (++switches > values.Length + 1)
                {
                    throw new EcgFormatException(recordId, $"{what}: more Huffman table switches than samples");
                }

                table = found.BaseValue - 1;
                continue;
            }

            if (found.ValueBits == 0)
            {
                values[i++] = found.BaseValue;
                continue;
            }

            if (bit + found.ValueBits > bits)
            {
                throw Short(recordId, what, i, values.Length);
            }

            values[i++] = (int)ReadSigned(data, ref bit, found.ValueBits);
        }
    }

    /// <summary>
    /// Appends the codes of <paramref name="values"/> (one lead) to <paramref name="writer"/>, starting in the first
    /// table: each value in the current table, unless a switch code to another table plus the value's code there is
    /// shorter (or the current table has no code for it).
    /// </summary>
    public void Encode(ReadOnlySpan<int> values, ScpBitWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var table = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var value = values[i];
            if (i == values.Length - 1 && table != 0
                && Tables[table].FirstOrDefault(c => !c.IsValue && c.BaseValue == 1) is { } back
                && Cheapest(0, value) is { } last)
            {
                // End every lead in the first table: readers that start each lead there (SCP-DECODE) and readers
                // that carry the table over from the previous lead (ECG Toolkit resets it once per section) agree.
                writer.Write(back.Code, back.PrefixBits);
                writer.Write(last.Code, last.PrefixBits);
                if (last.ValueBits > 0)
                {
                    writer.Write((uint)value & (last.ValueBits == 32 ? uint.MaxValue : (1u << last.ValueBits) - 1), last.ValueBits);
                }

                table = 0;
                continue;
            }

            var code = Cheapest(table, value);
            var cost = code?.TotalBits ?? int.MaxValue;
            foreach (var jump in Tables[table].Where(c => !c.IsValue && c.BaseValue - 1 != table))
            {
                var there = Cheapest(jump.BaseValue - 1, value);
                if (there is not null && jump.TotalBits + there.TotalBits < cost)
                {
                    writer.Write(jump.Code, jump.PrefixBits);
                    table = jump.BaseValue - 1;
                    code = there;
                    break;
                }
            }

            if (code is null)
            {
                throw new ArgumentException($"value {value} has no code in Huffman table {table + 1} nor behind one of its switches", nameof(values));
            }

            writer.Write(code.Code, code.PrefixBits);
            if (code.ValueBits > 0)
            {
                writer.Write((uint)value & (code.ValueBits == 32 ? uint.MaxValue : (1u << code.ValueBits) - 1), code.ValueBits);
            }
        }
    }

    private ScpHuffmanCode? Cheapest(int table, int value)
    {
        ScpHuffmanCode? best = null;
        foreach (var code in Tables[table])
        {
            var fits = code.IsValue && (code.ValueBits == 0
                ? code.BaseValue == value
                : value >= -(1L << (code.ValueBits - 1)) && value < (1L << (code.ValueBits - 1)));
            if (fits && (best is null || code.TotalBits < best.TotalBits))
            {
                best = code;
            }
        }

        return best;
    }

    /// <summary>
    /// Decodes two leads of the same length at once with the default table (<see cref="IsDefault"/> must hold): the
    /// same values as <see cref="Decode"/> on each, but the two bit streams are independent, so the processor works on
    /// both while each code waits for the one before it. As in <see cref="DecodeDefault"/>, each load of 57 or more
    /// bits serves codes until fewer than 26 of its bits are left, in both leads.
    /// </summary>
    public void DecodeDefaultPair(
        ReadOnlySpan<byte> first, Span<int> firstValues, string firstWhat,
        ReadOnlySpan<byte> second, Span<int> secondValues, string secondWhat,
        string recordId)
    {
        if (!IsDefault || firstValues.Length != secondValues.Length)
        {
            throw new InvalidOperationException("two leads of one length in the default table are decoded together");
        }

        const int Longest = 26;
        const int Valid = 57;
        long bitA = 0, bitB = 0;
        long bitsA = first.Length * 8L, bitsB = second.Length * 8L;
        var n = firstValues.Length;
        var i = 0;
        while (i < n)
        {
            var windowA = Peek(first, bitA);
            var windowB = Peek(second, bitB);
            int usedA = 0, usedB = 0;
            do
            {
                firstValues[i] = DefaultCode(windowA << usedA, out var lengthA);
                secondValues[i] = DefaultCode(windowB << usedB, out var lengthB);
                usedA += lengthA;
                usedB += lengthB;
                i++;
            }
            while (usedA <= Valid - Longest && usedB <= Valid - Longest && i < n);

            bitA += usedA;
            bitB += usedB;
            if (bitA > bitsA || bitB > bitsB)
            {
                // Past the end of a lead's bytes: the sample where each ran out, and the first of the two is reported
                // (the first lead on a tie), as a code-by-code check would.
                var shortA = bitA > bitsA ? DefaultShortAt(first, n) : int.MaxValue;
                var shortB = bitB > bitsB ? DefaultShortAt(second, n) : int.MaxValue;
                throw shortA <= shortB ? Short(recordId, firstWhat, shortA, n) : Short(recordId, secondWhat, shortB, n);
            }
        }
    }

    /// <summary>The sample at which <paramref name="count"/> default-table codes run past the end of <paramref name="data"/>, or int.MaxValue.</summary>
    private static int DefaultShortAt(ReadOnlySpan<byte> data, int count)
    {
        long bit = 0;
        var bits = data.Length * 8L;
        for (var i = 0; i < count; i++)
        {
            DefaultCode(Peek(data, bit), out var length);
            bit += length;
            if (bit > bits)
            {
                return i;
            }
        }

        return int.MaxValue;
    }

    /// <summary>
    /// The value and length of the default-table code at the top of <paramref name="window"/> (at least 26 valid bits).
    /// 0 is a single zero bit; n ones (n 1 to 8), a zero, then the sign bit (1: negative); nine ones and a zero, then
    /// an 8-bit two's complement value; ten ones, then a 16-bit one. The first ten bits tell the code (see
    /// <see cref="DefaultEntries"/>); one lookup and a few operations without branches, as the kinds of code come in
    /// the signal's order, which no predictor guesses (a 1 µV export has a quarter or more of its second differences
    /// beyond ±8).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int DefaultCode(ulong window, out int length)
    {
        ref readonly var entry = ref System.Runtime.CompilerServices.Unsafe.Add(
            ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(DefaultEntries), (nint)(window >> 54));
        length = entry.Length;
        return (int)(((long)(window << 10) >> entry.Shift) & entry.Keep) + entry.Value;
    }

    /// <summary>
    /// The default table by the first ten bits of a code: a short code's length and value; for the two long codes
    /// their length and how their 8 or 16 value bits after the ten-bit prefix are taken (sign-extended).
    /// </summary>
    private static readonly DefaultEntry[] DefaultEntries = BuildDefaultEntries();

    private static DefaultEntry[] BuildDefaultEntries()
    {
        var entries = new DefaultEntry[1024];
        for (var top = 0; top < entries.Length; top++)
        {
            var ones = 0;
            while (ones < 10 && ((top >> (9 - ones)) & 1) == 1)
            {
                ones++;
            }

            entries[top] = ones switch
            {
                0 => new DefaultEntry(0, 0, 1, 0),
                <= 8 => new DefaultEntry(0, ((top >> (8 - ones)) & 1) == 1 ? -ones : ones, (byte)(ones + 2), 0),
                9 => new DefaultEntry(-1, 0, 18, 56),
                _ => new DefaultEntry(-1, 0, 26, 48),
            };
        }

        return entries;
    }

    /// <summary>One default-table entry: value = ((window &lt;&lt; 10) >> Shift, arithmetic) &amp; Keep + Value; Length bits.</summary>
    private readonly record struct DefaultEntry(long Keep, int Value, byte Length, byte Shift);

    /// <summary>
    /// The default table decoded directly (the same codes as <see cref="DefaultCodes"/>, without lookups): the next
    /// 57 or more bits are loaded at once and the run of leading ones tells the code.
    /// </summary>
    private static void DecodeDefault(ReadOnlySpan<byte> data, Span<int> values, string recordId, string what)
    {
        // Codes are at most 26 bits and a window holds at least 57: each window serves codes until fewer than 26 of
        // its bits are left unread (at least two codes, often six or more).
        const int Longest = 26;
        const int Valid = 57;
        long bit = 0;
        var bits = data.Length * 8L;
        var i = 0;
        while (i < values.Length)
        {
            var window = Peek(data, bit);
            var used = 0;
            do
            {
                values[i] = DefaultCode(window << used, out var length);
                used += length;
                if (bit + used > bits)
                {
                    throw Short(recordId, what, i, values.Length);
                }

                i++;
            }
            while (used <= Valid - Longest && i < values.Length);

            bit += used;
        }
    }

    /// <summary>The bits from <paramref name="bit"/> on, most significant first (at least 57 of them; zeros past the end).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong Peek(ReadOnlySpan<byte> data, long bit)
    {
        var index = (int)(bit >> 3);
        ulong window;
        if (index + 8 <= data.Length)
        {
            window = BinaryPrimitives.ReadUInt64BigEndian(data[index..]);
        }
        else
        {
            window = 0;
            for (var k = 0; k < 8; k++)
            {
                window = (window << 8) | (index + k < data.Length ? data[index + k] : 0u);
            }
        }

        return window << (int)(bit & 7);
    }

    private static long ReadSigned(ReadOnlySpan<byte> data, ref long bit, int width)
    {
        long value = 0;
        for (var k = 0; k < width; k++)
        {
            value = (value << 1) | (long)((data[(int)(bit >> 3)] >> (7 - (int)(bit & 7))) & 1);
            bit++;
        }

        // Two's complement of width bits.
        return (value & (1L << (width - 1))) != 0 ? value - (1L << width) : value;
    }

    private static EcgFormatException Short(string recordId, string what, int decoded, int expected) =>
        new(recordId, $"{what}: Huffman data end after {decoded} of {expected} samples");

    private static List<ScpHuffmanCode> DefaultCodes()
    {
        var codes = new List<ScpHuffmanCode> { new(1, 1, true, 0, 0b0) };
        for (var n = 1; n <= 8; n++)
        {
            // n ones, a zero, then the sign: 1 for negative.
            var ones = (1u << n) - 1;
            codes.Add(new ScpHuffmanCode(n + 2, n + 2, true, (short)n, ones << 2));
            codes.Add(new ScpHuffmanCode(n + 2, n + 2, true, (short)-n, (ones << 2) | 1));
        }

        codes.Add(new ScpHuffmanCode(10, 18, true, 0, 0b1111111110));
        codes.Add(new ScpHuffmanCode(10, 26, true, 0, 0b1111111111));
        return codes;
    }

    private static uint Reverse(uint value, int bits)
    {
        uint result = 0;
        for (var k = 0; k < bits; k++)
        {
            result = (result << 1) | ((value >> k) & 1);
        }

        return result;
    }

    private static long Key(int length, uint code) => ((long)length << 32) | code;

    private static void Add16(List<byte> bytes, ushort value)
    {
        bytes.Add((byte)value);
        bytes.Add((byte)(value >> 8));
    }
}

/// <summary>Writes bits most significant first into bytes, as SCP-ECG's Huffman-coded data are laid out.</summary>
public sealed class ScpBitWriter
{
    private readonly List<byte> _bytes = [];
    private int _used = 8;

    /// <summary>Appends the low <paramref name="count"/> bits of <paramref name="bits"/>, most significant first.</summary>
    public void Write(uint bits, int count)
    {
        for (var k = count - 1; k >= 0; k--)
        {
            if (_used == 8)
            {
                _bytes.Add(0);
                _used = 0;
            }

            if (((bits >> k) & 1) != 0)
            {
                _bytes[^1] |= (byte)(0x80 >> _used);
            }

            _used++;
        }
    }

    /// <summary>The bytes written, the last one padded with zero bits.</summary>
    public byte[] ToArray() => _bytes.ToArray();
}
