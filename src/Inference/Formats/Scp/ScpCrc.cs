namespace HubertEcg.Inference.Formats.Scp;

/// <summary>
/// The CRC of SCP-ECG (EN 1064 5.3.2): CRC-CCITT, polynomial x^16 + x^12 + x^5 + 1 (0x1021), initial value 0xFFFF,
/// bits taken most significant first, no final inversion. The record's CRC (bytes 0-1) covers bytes 2 to the end of
/// the record; each section's CRC (its bytes 0-1) covers the rest of the section.
/// </summary>
public static class ScpCrc
{
    private static readonly ushort[] Table = BuildTable();

    public static ushort Compute(ReadOnlySpan<byte> data)
    {
        ushort crc = 0xFFFF;
        foreach (var b in data)
        {
            crc = (ushort)((crc << 8) ^ Table[((crc >> 8) ^ b) & 0xFF]);
        }

        return crc;
    }

    private static ushort[] BuildTable()
    {
        var table = new ushort[256];
        for (var i = 0; i < 256; i++)
        {
            var crc = (ushort)(i << 8);
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }

            table[i] = crc;
        }

        return table;
    }
}
