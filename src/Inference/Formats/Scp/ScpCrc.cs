using System.IO.Hashing;

namespace HubertEcg.Inference.Formats.Scp;

/// <summary>
/// The CRC of SCP-ECG (EN 1064 5.3.2): CRC-CCITT, polynomial x^16 + x^12 + x^5 + 1 (0x1021), initial value 0xFFFF,
/// bits taken most significant first, no final inversion. The record's CRC (bytes 0-1) covers bytes 2 to the end of
/// the record; each section's CRC (its bytes 0-1) covers the rest of the section. A 16-bit CRC taken most significant
/// bit first is the top half of the 32-bit CRC whose polynomial and initial value are its own moved up 16 bits: that
/// one System.IO.Hashing computes many bytes a step (carry-less multiplication where the processor has it).
/// </summary>
public static class ScpCrc
{
    private static readonly Crc32ParameterSet Parameters = Crc32ParameterSet.Create(0x1021u << 16, 0xFFFFu << 16, 0u, reflectValues: false);

    public static ushort Compute(ReadOnlySpan<byte> data)
    {
        var crc = new Crc32(Parameters);
        crc.Append(data);
        return (ushort)(crc.GetCurrentHashAsUInt32() >> 16);
    }
}
