using Azure.Storage.Blobs;
using HubertEcg.Inference.Ecg.Synthetic;
using HubertEcg.Inference.Formats;
using HubertEcg.Inference.IO;
using HubertEcg.Testing;
using PureHDF;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>What a synthetic cohort holds: the record ids that must be scored and those that must be quarantined.</summary>
public sealed record CohortManifest(IReadOnlyList<string> GoodRecords, IReadOnlyList<string> CorruptRecords);

/// <summary>
/// Uploads a cohort to a blob container (or writes it to a folder): synthetic 12-lead .npy records at 500 Hz, and deliberately corrupt ones;
/// with <c>mixed</c>, also a real PTB-XL WFDB record (100 Hz), a real 2-lead MIT-BIH record (which cannot give the
/// 12 leads and is quarantined), a CODE-15%-layout HDF5 shard of synthetic exams at 400 Hz, and one record of each
/// clinical format the project writes (GE MUSE, Philips, DICOM, HL7 aECG, SCP-ECG).
/// </summary>
public static class SyntheticCohort
{
    public const int Hdf5Exams = 12;

    public static Task<CohortManifest> UploadAsync(BlobContainerClient container, string prefix, int goodRecords, int samples = 5000, bool mixed = false) =>
        WriteAsync((name, bytes) => container.GetBlobClient(name).UploadAsync(new BinaryData(bytes), overwrite: true), prefix, goodRecords, samples, mixed);

    /// <summary>Writes the same cohort as <see cref="UploadAsync"/> into a folder: each blob name a path relative to <paramref name="root"/>.</summary>
    public static Task<CohortManifest> WriteToFolderAsync(string root, string prefix, int goodRecords, int samples = 5000, bool mixed = false) =>
        WriteAsync(
            async (name, bytes) =>
            {
                var path = Path.Combine(root, name);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllBytesAsync(path, bytes);
            },
            prefix,
            goodRecords,
            samples,
            mixed);

    private static async Task<CohortManifest> WriteAsync(Func<string, byte[], Task> put, string prefix, int goodRecords, int samples, bool mixed)
    {
        var good = new List<string>();
        var uploads = new List<Func<Task>>();
        var random = new Random(1234);
        for (var r = 0; r < goodRecords; r++)
        {
            var id = $"{prefix}rec{r:D5}";
            var data = new float[12 * samples];
            var phase = random.NextDouble() * Math.PI;
            for (var lead = 0; lead < 12; lead++)
            {
                for (var i = 0; i < samples; i++)
                {
                    data[(lead * samples) + i] = (float)(0.5 * Math.Sin((2 * Math.PI * 1.2 * i / 500.0) + phase + lead) + (0.001 * r));
                }
            }

            var bytes = NpyBytes(data, 12, samples);
            good.Add(id);
            uploads.Add(() => put(id + ".npy", bytes));
        }

        var corrupt = new List<string>
        {
            $"{prefix}corrupt-magic",
            $"{prefix}corrupt-shape",
            $"{prefix}corrupt-short",
            $"{prefix}corrupt-orphan",
        };
        uploads.Add(() => put(corrupt[0] + ".npy", "this is not a numpy file"u8.ToArray()));
        uploads.Add(() => put(corrupt[1] + ".npy", NpyBytes(new float[300], 3, 100)));
        uploads.Add(() => put(corrupt[2] + ".npy", NpyBytes(new float[12 * 100], 12, 100)));
        uploads.Add(() => put(corrupt[3] + ".dat", new byte[64]));

        if (mixed)
        {
            foreach (var file in new[] { "00001_lr.hea", "00001_lr.dat" })
            {
                var bytes = await File.ReadAllBytesAsync(RepoPaths.SharedFile("ecg-samples", "ptb-xl", file));
                uploads.Add(() => put($"{prefix}ptbxl/{file}", bytes));
            }

            good.Add($"{prefix}ptbxl/00001_lr");
            foreach (var file in new[] { "100.hea", "100.dat" })
            {
                var bytes = await File.ReadAllBytesAsync(RepoPaths.SharedFile("ecg-samples", "wfdb", file));
                uploads.Add(() => put($"{prefix}mitdb/{file}", bytes));
            }

            corrupt.Add($"{prefix}mitdb/100");

            // One record of every clinical format, written by the project's own writers (GE MUSE, Philips, DICOM,
            // HL7 aECG, SCP-ECG), each in a folder of its own.
            foreach (var writer in FormatRegistry.Writers.Where(w => w.Name != "wfdb"))
            {
                var name = $"{writer.Name}-0001";
                var signal = SyntheticEcg.Generate(name, 700 + good.Count, 500, 10);
                foreach (var (file, bytes) in writer.Write(signal, name))
                {
                    uploads.Add(() => put($"{prefix}{writer.Name}/{file}", bytes));
                }

                good.Add($"{prefix}{writer.Name}/{name}");
            }
            var shardName = $"{prefix}code15/exams_part0.hdf5";
            var hdf5 = Hdf5Bytes(Hdf5Exams, out var examIds);
            uploads.Add(() => put(shardName, hdf5));
            good.AddRange(examIds.Select(id => $"{shardName}#{id}"));
        }

        // A file that is no record at all: the planner ignores it.
        uploads.Add(() => put(prefix + "README.txt", "synthetic cohort"u8.ToArray()));

        await Parallel.ForEachAsync(uploads, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (upload, _) => await upload());
        return new CohortManifest(good, corrupt);
    }

    /// <summary>A CODE-15%-layout shard: <c>tracings</c> (exams x 4096 x 12, 400 Hz, mV) and <c>exam_id</c>.</summary>
    public static byte[] Hdf5Bytes(int exams, out long[] examIds)
    {
        const int samples = 4096;
        var tracings = new float[exams, samples, 12];
        for (var e = 0; e < exams; e++)
        {
            for (var t = 0; t < samples; t++)
            {
                for (var l = 0; l < 12; l++)
                {
                    tracings[e, t, l] = (float)(0.4 * Math.Sin((2 * Math.PI * 1.1 * t / 400.0) + e + (0.3 * l)));
                }
            }
        }

        examIds = Enumerable.Range(0, exams).Select(e => 1_000_000L + (e * 7919L)).ToArray();
        var path = Path.Combine(Path.GetTempPath(), $"cohort-{Guid.NewGuid():N}.hdf5");
        try
        {
            new H5File { ["tracings"] = tracings, ["exam_id"] = examIds }.Write(path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static byte[] NpyBytes(float[] data, params int[] shape) => ArchiveBuilder.NpyBytes(data, shape);
}
