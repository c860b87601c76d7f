using System.Globalization;
using HubertEcg.Inference.Ecg;

namespace HubertEcg.Inference.Formats.Hdf5;

/// <summary>
/// HDF5 shards in the CODE-15% layout (<c>tracings</c>, optional <c>exam_id</c>); dataset names, rate and scale come
/// from <paramref name="options"/> (<c>Workers:Hdf5</c>). Each exam is a record <c>blob#examId</c> (<c>blob#indexN</c>
/// without exam ids). The file stays open until the caller disposes it; exams are read one at a time.
/// </summary>
public sealed class Hdf5Format(Hdf5ShardOptions? options = null) : IContainerFormat
{
    private readonly Hdf5ShardOptions _options = options ?? new Hdf5ShardOptions();

    public string Name => "hdf5";

    public IReadOnlyList<string> Suffixes { get; } = [".h5", ".hdf5", ".hdf", ".he5"];

    public IEnumerable<ContainedRecord> Open(string localPath, string blobName, FormatRegistry registry, ICollection<IDisposable> resources)
    {
        ArgumentNullException.ThrowIfNull(resources);

        // Opened under the blob's name, so that every reason names the blob and never the worker's temporary path.
        var stream = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        Hdf5ShardReader reader;
        try
        {
            reader = Hdf5ShardReader.Open(stream, blobName, _options, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        resources.Add(reader);
        var ids = reader.ExamIds();
        var exams = new List<ContainedRecord>(reader.ExamCount);
        for (var i = 0; i < reader.ExamCount; i++)
        {
            var index = i;
            var examId = ids is null ? "index" + index.ToString(CultureInfo.InvariantCulture) : ids[i].ToString(CultureInfo.InvariantCulture);
            exams.Add(new ContainedRecord($"{blobName}#{examId}", () =>
            {
                lock (reader)
                {
                    return LoadExam(reader, index, blobName);
                }
            }));
        }

        return exams;
    }

    /// <summary>Exam <paramref name="member"/> (its index) of the shard at <paramref name="path"/>.</summary>
    public EcgRecord ReadMember(string path, string member, double? samplingRate)
    {
        if (!int.TryParse(member, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            throw new EcgFormatException($"{path}#{member}", $"exam index '{member}' is not a non-negative integer");
        }

        var options = samplingRate is { } rate ? _options with { SamplingRate = rate } : _options;
        using var shard = Hdf5ShardReader.Open(path, options);
        return LoadExam(shard, index, Path.GetFileName(path));
    }

    /// <summary>Loads exam <paramref name="index"/> of an open shard.</summary>
    public static EcgRecord LoadExam(Hdf5ShardReader shard, int index, string shardName)
    {
        ArgumentNullException.ThrowIfNull(shard);
        return EcgRecord.InMillivolts("hdf5", $"{shardName} exam {index} of {shard.ExamCount}", shard.ReadExam(index));
    }
}
