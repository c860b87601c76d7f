using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.IO;
using HubertEcg.Inference.Formats.Wfdb;

namespace HubertEcg.Testing;

/// <summary>Builds tar and zip archives of synthetic records for the archive shard tests.</summary>
public static class ArchiveBuilder
{
    /// <summary>
    /// Members of a small cohort: WFDB 500 Hz (<c>wfdb/p1</c>, format 16), WFDB 100 Hz (<c>wfdb/p2</c>, format 212),
    /// a Challenge record (<c>challenge/A0001</c>), an .npy record (<c>npy/r1</c>) and a README that is no record.
    /// Returns the members in order and the record paths (without extension).
    /// </summary>
    public static (List<KeyValuePair<string, byte[]>> Members, List<string> Records) Cohort(int seed)
    {
        var members = new List<KeyValuePair<string, byte[]>>();
        void Add(string folder, IReadOnlyDictionary<string, byte[]> files)
        {
            foreach (var (name, bytes) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
            {
                members.Add(new(folder + name, bytes));
            }
        }

        Add("wfdb/", WfdbWriter.Write(SyntheticEcg.Generate("p1", seed, 500, 10), "p1"));
        Add("wfdb/", WfdbWriter.Write(SyntheticEcg.Generate("p2", seed + 1, 100, 10), "p2", format: 212));
        Add("challenge/", WfdbWriter.WriteChallengeMat(SyntheticEcg.Generate("A0001", seed + 2, 500, 10), "A0001"));
        var npy = SyntheticEcg.Generate("r1", seed + 3, 500, 10);
        var data = new float[12 * npy.SampleCount];
        for (var lead = 0; lead < 12; lead++)
        {
            for (var i = 0; i < npy.SampleCount; i++)
            {
                data[(lead * npy.SampleCount) + i] = (float)npy.Leads[lead][i];
            }
        }

        members.Add(new("npy/r1.npy", NpyBytes(data, 12, npy.SampleCount)));
        members.Add(new("README.txt", Encoding.ASCII.GetBytes("synthetic archive")));
        return (members, ["wfdb/p1", "wfdb/p2", "challenge/A0001", "npy/r1"]);
    }

    /// <summary>A float32 <c>.npy</c> file's bytes.</summary>
    public static byte[] NpyBytes(float[] data, params int[] shape)
    {
        var path = Path.Combine(Path.GetTempPath(), $"archive-{Guid.NewGuid():N}.npy");
        try
        {
            Npy.WriteFloat32(path, data, shape);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static byte[] Tar(IEnumerable<KeyValuePair<string, byte[]>> members, bool gzip = false)
    {
        using var output = new MemoryStream();
        using (Stream target = gzip ? new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true) : new BufferedStream(output))
        using (var writer = new TarWriter(target, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var (name, bytes) in members)
            {
                writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });
            }
        }

        return output.ToArray();
    }

    public static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(bytes);
        }

        return output.ToArray();
    }

    public static byte[] Zip(IEnumerable<KeyValuePair<string, byte[]>> members)
    {
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in members)
            {
                using var entry = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
                entry.Write(bytes);
            }
        }

        return output.ToArray();
    }

    /// <summary>Offset of member <paramref name="index"/>'s 512-byte header in an uncompressed ustar archive.</summary>
    public static int TarHeaderOffset(IReadOnlyList<KeyValuePair<string, byte[]>> members, int index) =>
        members.Take(index).Sum(m => 512 + ((m.Value.Length + 511) / 512 * 512));

    /// <summary>Rewrites the size field (and checksum) of the tar header at <paramref name="offset"/>.</summary>
    public static void PatchTarSize(byte[] tar, int offset, long size)
    {
        var field = Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0");
        field.CopyTo(tar, offset + 124);
        Array.Fill(tar, (byte)' ', offset + 148, 8);
        var sum = 0;
        for (var i = 0; i < 512; i++)
        {
            sum += tar[offset + i];
        }

        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(tar, offset + 148);
    }
}
