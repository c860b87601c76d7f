using Azure.Storage.Blobs;
using HubertEcg.Inference.IO;

namespace HubertEcg.Integration.Tests.Scoring;

/// <summary>What a synthetic cohort holds: the record ids that must be scored and those that must be quarantined.</summary>
public sealed record CohortManifest(IReadOnlyList<string> GoodRecords, IReadOnlyList<string> CorruptRecords);

/// <summary>Uploads synthetic 12-lead .npy records (and deliberately corrupt ones) to a blob container.</summary>
public static class SyntheticCohort
{
    public static async Task<CohortManifest> UploadAsync(BlobContainerClient container, string prefix, int goodRecords, int samples = 5000)
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
            uploads.Add(() => container.GetBlobClient(id + ".npy").UploadAsync(new BinaryData(bytes), overwrite: true));
        }

        var corrupt = new List<string>
        {
            $"{prefix}corrupt-magic",
            $"{prefix}corrupt-shape",
            $"{prefix}corrupt-short",
            $"{prefix}corrupt-orphan",
        };
        uploads.Add(() => container.GetBlobClient(corrupt[0] + ".npy").UploadAsync(new BinaryData("this is not a numpy file"u8.ToArray()), overwrite: true));
        uploads.Add(() => container.GetBlobClient(corrupt[1] + ".npy").UploadAsync(new BinaryData(NpyBytes(new float[300], 3, 100)), overwrite: true));
        uploads.Add(() => container.GetBlobClient(corrupt[2] + ".npy").UploadAsync(new BinaryData(NpyBytes(new float[12 * 100], 12, 100)), overwrite: true));
        uploads.Add(() => container.GetBlobClient(corrupt[3] + ".dat").UploadAsync(new BinaryData(new byte[64]), overwrite: true));

        // A file that is no record at all: the planner ignores it.
        uploads.Add(() => container.GetBlobClient(prefix + "README.txt").UploadAsync(new BinaryData("synthetic cohort"u8.ToArray()), overwrite: true));

        await Parallel.ForEachAsync(uploads, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (upload, _) => await upload());
        return new CohortManifest(good, corrupt);
    }

    public static byte[] NpyBytes(float[] data, params int[] shape)
    {
        var path = Path.Combine(Path.GetTempPath(), $"cohort-{Guid.NewGuid():N}.npy");
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
}
