using System.Buffers.Binary;

namespace HubertEcg.Inference.Formats.Scp;

/// <summary>
/// The CRC of SCP-ECG (EN 1064 5.3.2): CRC-CCITT, polynomial x^16 + x^12 + x^5 + 1 (0x1021), initial value 0xFFFF,
/// bits taken most significant first, no final inversion. The record's CRC (bytes 0-1) covers bytes 2 to the end of
/// the record; each section's CRC (its bytes 0-1) covers the rest of the section. Computed eight bytes a step with
/// eight tables (slicing-by-8), the same value as the byte-at-a-time table.
/// </summary>
public static class ScpCrc
{
    // Tables[k][x]: the CRC contribution of byte value x followed by k zero bytes.
    private static readonly ushort[][] Tables = BuildTables();

    public static ushort Compute(ReadOnlySpan<byte> data)
    {
        ushort[] t0 = Tables[0], t1 = Tables[1], t2 = Tables[2], t3 = Tables[3], t4 = Tables[4], t5 = Tables[5], t6 = Tables[6], t7 = Tables[7];
        uint crc = 0xFFFF;
        var i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            // The register folds into the first two bytes of the block (most significant bit first).
            var block = BinaryPrimitives.ReadUInt64BigEndian(data[i..]) ^ ((ulong)crc << 48);
            crc = (uint)(t7[(int)(block >> 56)] ^ t6[(int)(block >> 48) & 0xFF] ^ t5[(int)(block >> 40) & 0xFF] ^ t4[(int)(block >> 32) & 0xFF]
                ^ t3[(int)(block >> 24) & 0xFF] ^ t2[(int)(block >> 16) & 0xFF] ^ t1[(int)(block >> 8) & 0xFF] ^ t0[(int)block & 0xFF]);
        }

        for (; i < data.Length; i++)
        {
            crc = ((crc << 8) ^ t0[(int)(((crc >> 8) ^ data[i]) & 0xFF)]) & 0xFFFF;
        }

        return (ushort)crc;
    }

    private static ushort[][] BuildTables()
    {
        var tables = new ushort[8][];
        for (var k = 0; k < 8; k++)
        {
            tables[k] = new ushort[256];
        }

        for (var i = 0; i < 256; i++)
        {
            var crc = (ushort)(i << 8);
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }

            tables[0][i] = crc;
        }

        for (var i = 0; i < 256; i++)
        {
            for (var k = 1; k < 8; k++)
            {
                var previous = tables[k - 1][i];
                tables[k][i] = (ushort)((previous << 8) ^ tables[0][previous >> 8]);
            }
        }

        return tables;
    }
}
