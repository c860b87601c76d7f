using System.Buffers.Binary;
using PureHDF;

namespace HubertEcg.Testing;

/// <summary>
/// HDF5 shards in the CODE-15% layout whose headers claim far more than the file holds: a small shard is written
/// with distinctive dimensions, and those dimensions (8-byte little-endian fields of the dataspace messages) are then
/// rewritten to the claimed ones, as an attacker would edit a header.
/// </summary>
public static class HostileHdf5
{
    private const ulong BaseExams = 0x0102;
    private const ulong BaseSamples = 0x0104;

    /// <summary>A shard whose <c>tracings</c> claim <paramref name="exams"/> x <paramref name="samples"/> x 12 float32 values, with as many exam ids.</summary>
    public static byte[] Claiming(ulong exams, ulong samples)
    {
        var file = new H5File
        {
            ["tracings"] = new float[BaseExams, BaseSamples, 12],
            ["exam_id"] = Enumerable.Range(0, (int)BaseExams).Select(i => (long)i).ToArray(),
        };
        var path = Path.Combine(Path.GetTempPath(), $"hostile-{Guid.NewGuid():N}.hdf5");
        byte[] bytes;
        try
        {
            file.Write(path);
            bytes = File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }

        // Exams: the tracings' first dimension and the ids' only one; samples: the tracings' second.
        Patch(bytes, BaseExams, exams, atLeast: 2);
        Patch(bytes, BaseSamples, samples, atLeast: 1);
        return bytes;
    }

    private static void Patch(byte[] bytes, ulong from, ulong to, int atLeast)
    {
        Span<byte> pattern = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(pattern, from);
        var found = 0;
        for (var i = 0; i + 8 <= bytes.Length; i++)
        {
            if (bytes.AsSpan(i, 8).SequenceEqual(pattern))
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(i, 8), to);
                found++;
                i += 7;
            }
        }

        if (found < atLeast)
        {
            throw new InvalidOperationException($"dimension {from} found {found} times in the written shard, expected at least {atLeast}");
        }
    }
}
