using HubertEcg.Inference.Ecg;
using PureHDF;

namespace HubertEcg.Inference.Formats.Hdf5;

/// <summary>Writes HDF5 shards in the CODE-15% layout.</summary>
public static class Code15ShardWriter
{
    /// <summary>The file name a shard called <paramref name="shardName"/> is stored under.</summary>
    public static string FileName(string shardName) => shardName + ".hdf5";

    /// <summary>
    /// A CODE-15%-layout HDF5 shard: <c>tracings</c> (exams x samples x 12, float32, mV) and <c>exam_id</c> (int64).
    /// All signals must have the same length.
    /// </summary>
    public static byte[] Write(IReadOnlyList<EcgSignal> exams, IReadOnlyList<long> examIds)
    {
        ArgumentNullException.ThrowIfNull(exams);
        ArgumentNullException.ThrowIfNull(examIds);
        if (exams.Count == 0 || exams.Count != examIds.Count)
        {
            throw new ArgumentException($"{exams.Count} exams for {examIds.Count} ids");
        }

        var samples = exams[0].SampleCount;
        var tracings = new float[exams.Count, samples, 12];
        for (var e = 0; e < exams.Count; e++)
        {
            if (exams[e].SampleCount != samples || exams[e].Leads.Length != 12)
            {
                throw new ArgumentException($"exam {e} is not 12 x {samples}");
            }

            for (var t = 0; t < samples; t++)
            {
                for (var l = 0; l < 12; l++)
                {
                    tracings[e, t, l] = (float)exams[e].Leads[l][t];
                }
            }
        }

        var file = new H5File
        {
            ["tracings"] = tracings,
            ["exam_id"] = examIds.ToArray(),
        };
        var path = Path.Combine(Path.GetTempPath(), $"hubert-ecg-{Guid.NewGuid():N}.hdf5");
        try
        {
            file.Write(path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
